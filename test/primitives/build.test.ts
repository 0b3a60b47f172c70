// The cmake-js build (CMakeLists.txt) produces the same addon as node-gyp (binding.gyp, built
// by npm ci): same exported functions, same constants.
import t from 'tap';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { addonExports } from '../helpers/addon.js';
import { scaled } from '../helpers/time-scale.js';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../..', import.meta.url));

t.test('cmake-js builds an addon exporting what the node-gyp build exports', async (t) => {
  const gyp = `${root}/build/Release/tcp_repair.node`;
  t.ok(existsSync(gyp), 'node-gyp build present (npm ci)');
  await run('npx', ['cmake-js', 'compile', '--out', 'build-cmake'], { cwd: root, timeout: scaled(180_000) });
  const cmake = `${root}/build-cmake/Release/tcp_repair.node`;
  t.ok(existsSync(cmake), 'build-cmake/Release/tcp_repair.node built');
  const [a, b] = await Promise.all([addonExports(gyp), addonExports(cmake)]);
  t.ok(a.functions.length >= 30, `${a.functions.length} functions`);
  t.same(b.functions, a.functions, 'same function names');
  t.same(b.constants, a.constants, 'same constants');
  t.ok(a.functions.includes('setRepair') && a.functions.includes('refillQueue'));
});
