// tsc writes files 0644; the `bin` entry must be executable for `npx tcp-repair` and for npm pack
// to record it 0755 in the tarball (npm links bins on install but keeps the packed mode).
import { chmodSync } from 'node:fs';
chmodSync(new URL('../dist/esm/cli.js', import.meta.url), 0o755);
