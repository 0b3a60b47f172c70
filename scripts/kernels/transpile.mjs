// Transpiles the test suite's TypeScript to JavaScript on the host, for the guests. Under TCG,
// tap's on-the-fly TypeScript (ts-node loading the compiler in every test process) costs tens of
// seconds per test file; transpiled once here (types stripped, nothing else changed: same module
// format, same relative imports), the guest copies the .js files next to the .ts ones in its
// writable overlay and runs those. Type checking stays the host's job (`npm run build`, tsc).
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import ts from 'typescript';
import { ROOT } from './kernels.mjs';

/** Writes out/<path>.js for every test/**\/*.ts; returns the relative .ts paths transpiled. */
export function transpileTests(out) {
  const done = [];
  const walk = (dir) => {
    for (const entry of readdirSync(dir)) {
      const p = join(dir, entry);
      if (statSync(p).isDirectory()) walk(p);
      else if (p.endsWith('.ts') && !p.endsWith('.d.ts')) {
        const rel = relative(ROOT, p);
        const { outputText } = ts.transpileModule(readFileSync(p, 'utf8'), {
          fileName: p,
          compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, esModuleInterop: true, inlineSourceMap: true },
        });
        const target = join(out, rel.replace(/\.ts$/, '.js'));
        mkdirSync(dirname(target), { recursive: true });
        writeFileSync(target, outputText);
        done.push(rel);
      }
    }
  };
  walk(join(ROOT, 'test'));
  return done;
}
