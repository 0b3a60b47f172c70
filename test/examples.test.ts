// Every program in examples/ runs as a newcomer would run it (`node examples/<name>.mjs`), exits
// 0 and says what it verified. The examples check their own traffic and exit 1 on any mismatch.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { scaled } from './helpers/time-scale.js';

const root = fileURLToPath(new URL('..', import.meta.url));

function runExample(file: string, args: string[] = []) {
  const r = spawnSync(process.execPath, [`examples/${file}`, ...args], { cwd: root, encoding: 'utf8', timeout: scaled(120_000) });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const expectations: Record<string, { args: string[]; lines: RegExp[] }> = {
  'echo-in-place.mjs': {
    args: ['4', '10'],
    lines: [/^4 connections, 40 restores in place/m, /^4 of 4 clients got back exactly what they sent/m],
  },
  'http-keepalive-move.mjs': {
    args: [],
    lines: [/^host-a: 4 connections moved to host-b, 0 stayed/m, /answered by host-b over the same connections: true; counters 6, 6, 6, 6$/m],
  },
  'ws-move.mjs': {
    args: ['8'],
    lines: [/^host-a: 8 WebSockets moved to host-b, 0 stayed/m, ...Array.from({ length: 8 }, (_, i) => new RegExp(`^  ws ${i}: (\\d+) of \\1 messages answered in order \\(host-a [1-9]\\d*, host-b [1-9]\\d*\\), closed 1000$`, 'm'))],
  },
};

t.test('each example has its test', async (t) => {
  t.same(readdirSync(`${root}/examples`).filter((f) => f.endsWith('.mjs')).sort(), Object.keys(expectations).sort());
});

for (const [file, { args, lines }] of Object.entries(expectations)) {
  t.test(`node examples/${file} ${args.join(' ')}`, async (t) => {
    const r = runExample(file, args);
    t.equal(r.status, 0, `exits 0${r.status ? `\n${r.stdout}\n${r.stderr}` : ''}`);
    t.match(r.stdout, /\nok\n$/, 'ends with ok');
    for (const line of lines) t.match(r.stdout, line);
  });
}
