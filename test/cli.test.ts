// The command line: probe, inspect (image file and a live socket of another process), errors.
import t from 'tap';
import net from 'node:net';
import { execFileSync, spawnSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkpoint, resume, writeImageFile, probe } from 'tcp-repair';

const CLI = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '..', 'dist', 'esm', 'cli.js');
const run = (args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });

t.test('probe finds every feature on this kernel, as root', async (t) => {
  const report = await probe();
  for (const f of report.features) t.ok(f.available, `${f.name} available${f.detail ? `: ${f.detail}` : ''}`);
  const json = JSON.parse(run(['probe', '--json']).stdout);
  t.equal(json.features.length, report.features.length);
  t.match(run(['probe']).stdout, /tcpRepair\s+yes/);
});

t.test('probe without CAP_NET_ADMIN reports EPERM, by trying', async (t) => {
  const out = execFileSync('setpriv', ['--bounding-set=-all', '--inh-caps=-all', process.execPath, CLI, 'probe', '--json'], { encoding: 'utf8' });
  const byName = Object.fromEntries(JSON.parse(out).features.map((f: { name: string }) => [f.name, f]));
  t.equal(byName.tcpRepair.available, false);
  t.equal(byName.tcpRepair.code, 'EPERM');
  t.equal(byName.ipv6.available, false, 'features needing repair mode are unavailable too');
});

t.test('inspect an image file (written 0600), human and JSON', async (t) => {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
  const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  const socket = await accepted;
  client.write('unread by the server');
  await new Promise((r) => setTimeout(r, 50));
  const image = await checkpoint(socket);
  const dir = mkdtempSync(join(tmpdir(), 'tcp-repair-'));
  t.teardown(() => { rmSync(dir, { recursive: true }); resume(image); client.destroy(); socket.destroy(); server.close(); });
  const file = join(dir, 'socket.img');
  writeImageFile(file, image);
  t.equal(statSync(file).mode & 0o777, 0o600, 'image is owner-only');
  t.throws(() => writeImageFile(file, image), { code: 'EEXIST' }, 'never overwrites');
  const human = run(['inspect', file]);
  t.equal(human.status, 0);
  t.match(human.stdout, /state\s+ESTABLISHED/);
  t.match(human.stdout, new RegExp(`recv seq\\s+${image.recvSeq} .*20 bytes`));
  const json = JSON.parse(run(['inspect', file, '--json']).stdout);
  t.equal(json.sendSeq, image.sendSeq);
  t.equal(json.lengths.recvQueue, 20);
});

t.test('inspect --pid --fd reads a live socket of another process', async (t) => {
  const server = net.createServer((s) => s.on('data', () => {}));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  const child = spawn(process.execPath, ['-e', `const s=require('net').connect(${port},'127.0.0.1',()=>{s.write(Buffer.alloc(1000));console.log(s._handle.fd)});setInterval(()=>{},1000)`], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => { child.kill(); server.close(); });
  const fd = Number(await new Promise<string>((r) => child.stdout!.once('data', (d) => r(String(d).trim()))));
  await new Promise((r) => setTimeout(r, 50));
  const state = JSON.parse(run(['inspect', '--pid', String(child.pid), '--fd', String(fd), '--json']).stdout);
  t.equal(state.state, 'ESTABLISHED');
  t.equal(state.peer.port, port);
  t.equal(state.info.bytesAcked, 1001, 'the 1000 bytes written (+SYN) were acked');
  const withSeq = JSON.parse(run(['inspect', '--pid', String(child.pid), '--fd', String(fd), '--repair', '--json']).stdout);
  t.type(withSeq.sequences.send, 'number');
});

t.test('errors: one line, non-zero exit', async (t) => {
  for (const args of [['bogus'], ['inspect'], ['inspect', '/nonexistent/file'], ['inspect', '--pid', 'x', '--fd', '1']]) {
    const r = run(args);
    t.not(r.status, 0, `${args.join(' ')} fails`);
    t.match(r.stderr, /^tcp-repair: .+\n$/, `${args.join(' ')}: one-line reason`);
  }
  for (const cmd of ['probe', 'inspect', 'demo']) t.match(run([cmd, '--help']).stdout, /^Usage: tcp-repair/);
});

t.test('--help on every command, and more errors as one line', async (t) => {
  for (const args of [[], ['--help'], ['-h'], ['help']]) {
    const r = run(args);
    t.equal(r.status, 0, `${args.join(' ') || '(no arguments)'} exits 0`);
    t.match(r.stdout, /^Usage: tcp-repair <command>[\s\S]*probe[\s\S]*inspect[\s\S]*demo/, 'lists the commands');
  }
  for (const cmd of ['probe', 'inspect', 'demo']) t.equal(run([cmd, '-h']).status, 0, `${cmd} -h`);
  for (const args of [['demo', '--bogus'], ['demo', '--connections', '0'], ['probe', '--bogus'], ['inspect', '--pid', '999999999', '--fd', '1']]) {
    const r = run(args);
    t.equal(r.status, 1, `${args.join(' ')} exits 1`);
    t.match(r.stderr, /^tcp-repair: .+\n$/, `${args.join(' ')}: one-line reason`);
  }
});

t.test('demo: plain output when piped, progress on a terminal', async (t) => {
  const args = ['demo', '--connections', '3', '--streams', '1', '--settle', '200'];
  const piped = run(args);
  t.equal(piped.status, 0, 'demo passes');
  t.match(piped.stdout, /connections moved\s+3 of 3/);
  t.match(piped.stdout, /result\s+PASS/);
  t.notMatch(piped.stdout + piped.stderr, /\x1b|\r/, 'no escape codes or carriage returns when piped');
  // script(1) gives the demo a pseudo-terminal; stdout goes to a file, so the terminal shows stderr only.
  const dir = mkdtempSync(join(tmpdir(), 'tcp-repair-tty-'));
  t.teardown(() => rmSync(dir, { recursive: true }));
  const line = [process.execPath, CLI, ...args].map((a) => `'${a}'`).join(' ') + ` > ${dir}/report`;
  const tty = spawnSync('script', ['-qec', line, '/dev/null'], { encoding: 'utf8' });
  t.equal(tty.status, 0, 'demo passes on a terminal');
  t.match(tty.stdout, /\r\x1b\[2Kconnecting 3 clients/, 'progress lines on the terminal');
  t.match(tty.stdout, /\r\x1b\[2Kmigrating every connection to host-b/);
  t.match(readFileSync(join(dir, 'report'), 'utf8'), /result\s+PASS/, 'the report itself stays plain');
});
