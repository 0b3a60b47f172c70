// Marks dist/cjs as CommonJS: the root package.json says "type": "module".
import { writeFileSync } from 'node:fs';
writeFileSync(new URL('../dist/cjs/package.json', import.meta.url), '{ "type": "commonjs" }\n');
