/** What a compiled tcp_repair.node exports, as seen by a given node binary (a child process). */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface AddonExports {
  functions: string[];
  constants: Record<string, number>;
}

export async function addonExports(file: string, node = process.execPath): Promise<AddonExports> {
  const script = `const m = require(${JSON.stringify(file)});
    const functions = Object.keys(m).filter((k) => typeof m[k] === 'function').sort();
    console.log(JSON.stringify({ functions, constants: m.constants }));`;
  const { stdout } = await run(node, ['-e', script]);
  return JSON.parse(stdout) as AddonExports;
}
