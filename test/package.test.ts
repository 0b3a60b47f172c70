// The package as a user gets it: `npm pack` ships only what users need, the tarball installs and
// builds its addon in an empty project, works from `import` and `require`, runs as `npx
// tcp-repair`, and passes publint and arethetypeswrong (both run offline on the tarball).
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { publint } from 'publint';
import { formatMessage } from 'publint/utils';
import { runAsUser as run, userEnv } from './helpers/user-shell.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'tcp-repair-pack-'));
t.teardown(() => rmSync(work, { recursive: true, force: true }));


interface PackResult {
  filename: string;
  files: Array<{ path: string; mode: number }>;
}

// --ignore-scripts: prepack would rebuild dist/ while other test files import it; pretest built it.
const packed = JSON.parse(
  execFileSync('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', work], { cwd: root, encoding: 'utf8', env: userEnv }),
) as PackResult[];
const tarball = join(work, packed[0]!.filename);
const files = new Map(packed[0]!.files.map((f) => [f.path, f.mode]));

t.test('the tarball holds what users need and nothing else', async (t) => {
  const needed = [
    'package.json', 'README.md', 'LICENSE', 'binding.gyp', 'native/addon.cc', 'native/errors.h',
    'dist/esm/index.js', 'dist/esm/index.d.ts', 'dist/esm/load-addon.cjs', 'dist/esm/cli.js', 'dist/esm/demo/command.js',
    'dist/cjs/index.js', 'dist/cjs/index.d.ts', 'dist/cjs/load-addon.cjs', 'dist/cjs/package.json',
    'docs/README.md', 'docs/guide.md',
  ];
  for (const path of needed) t.ok(files.has(path), `ships ${path}`);
  const unwanted = [...files.keys()].filter((path) =>
    /^(test|scratch|bench|build|build-cmake|src|examples|node_modules|\.tap|\.ci)\//.test(path) || /\.(map|tgz|node|o)$/.test(path) || path === 'CMakeLists.txt',
  );
  t.same(unwanted, [], 'no tests, scratch, sources, build outputs or source maps');
  t.ok((files.get('dist/esm/cli.js') ?? 0) & 0o111, 'dist/esm/cli.js is executable');
  t.match(readFileSync(join(root, 'dist/esm/cli.js'), 'utf8'), /^#!\/usr\/bin\/env node\n/, 'and starts with its shebang');
});

t.test('publint finds nothing to report', async (t) => {
  const { messages, pkg } = await publint({ pack: { tarball: readFileSync(tarball).buffer as ArrayBuffer }, level: 'suggestion', strict: true });
  t.same(messages.map((m) => `${m.type}: ${formatMessage(m, pkg!, { color: false })}`), [], 'no error, warning or suggestion');
});

t.test('arethetypeswrong: types resolve for node10, node16 (CJS and ESM) and bundlers', async (t) => {
  const attw = run(join(root, 'node_modules/.bin/attw'), [tarball, '--format', 'json', '--no-definitely-typed'], { cwd: work });
  const report = JSON.parse(attw.stdout) as { problems: Record<string, unknown[]>; analysis: { entrypoints: Record<string, unknown> } };
  const exported = Object.keys(JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).exports).sort();
  t.same(Object.keys(report.analysis.entrypoints).sort(), exported, 'every entry point of package.json exports checked');
  t.same(report.problems, {}, 'no problem');
  t.equal(attw.status, 0);
});

t.test('installs into an empty project, builds its addon, works from import and require', async (t) => {
  const project = join(work, 'consumer');
  execFileSync('mkdir', ['-p', project]);
  // allowScripts: npm 11 warns (and later npm blocks) dependency install scripts not listed here;
  // the addon is built by tcp-repair's install script.
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true, allowScripts: { 'tcp-repair': true } }));
  const install = run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', tarball], { cwd: project });
  t.equal(install.status, 0, `npm install exits 0${install.status ? `: ${install.stderr}` : ''}`);
  const installed = join(project, 'node_modules/tcp-repair');
  t.ok(existsSync(join(installed, 'build/Release/tcp_repair.node')), 'the install script built the addon');
  t.ok(existsSync(join(project, 'node_modules/node-addon-api')) && existsSync(join(project, 'node_modules/bindings')), 'dependencies came from the registry');

  copyFileSync(join(root, 'test/fixtures/consumer-check.mjs'), join(project, 'check.mjs'));
  const check = run(process.execPath, ['check.mjs'], { cwd: project });
  t.equal(check.status, 0, `check exits 0${check.status ? `: ${check.stderr}` : ''}`);
  const result = JSON.parse(check.stdout);
  t.equal(result.cjsPath, join(installed, 'dist/cjs/index.js'), 'require resolves to the CommonJS build');
  for (const kind of ['esm', 'cjs'] as const) {
    t.ok(result[kind].names.includes('checkpoint') && result[kind].names.includes('migrate'), `${kind}: exports the API`);
    t.equal(result[kind].tcpRepair, true, `${kind}: probe() runs the addon (TCP_REPAIR available as root)`);
    t.equal(result[kind].roundTrip, 'ping:pong', `${kind}: a connection survives checkpoint/restore`);
  }
  t.same(result.cjs.names, result.esm.names, 'require and import give the same names');
  t.same(result.topology, { esm: 'function', cjs: 'function' }, 'tcp-repair/topology from import and require');

  const help = run('npx', ['--no-install', 'tcp-repair', '--help'], { cwd: project });
  t.equal(help.status, 0, 'npx tcp-repair --help exits 0');
  t.match(help.stdout, /^Usage: tcp-repair <command>/);
  const probe = run('npx', ['--no-install', 'tcp-repair', 'probe', '--json'], { cwd: project });
  t.equal(JSON.parse(probe.stdout).features.find((f: { name: string }) => f.name === 'tcpRepair')?.available, true, 'npx tcp-repair probe');
});
