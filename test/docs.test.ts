// The documentation a newcomer relies on: every exported name has a doc comment (typedoc's
// validation, warnings as errors), the committed API reference (docs/api, `npm run docs`) has a
// page for each of them, and every relative link in README.md and docs/*.md leads somewhere.
import t from 'tap';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import * as api from 'tcp-repair';
import * as topology from 'tcp-repair/topology';

const run = promisify(execFile);
const root = fileURLToPath(new URL('..', import.meta.url));

t.test('typedoc: every exported name documented, no broken {@link}', async (t) => {
  const out = mkdtempSync(join(tmpdir(), 'tcp-repair-api-'));
  t.teardown(() => rmSync(out, { recursive: true, force: true }));
  // typedoc.json sets treatWarningsAsErrors: an undocumented export fails the run.
  const result = await run(join(root, 'node_modules/.bin/typedoc'), ['--out', out], { cwd: root }).catch((error: { stdout: string; stderr: string }) => error);
  t.notMatch(`${result.stdout}\n${result.stderr}`, /warning|error/i, 'typedoc reports nothing');
  const generated = readdirSync(out).sort();
  t.same(readdirSync(join(root, 'docs/api')).sort(), generated, 'docs/api has the pages typedoc generates now (else run `npm run docs`)');
});

t.test('each runtime export has its page in docs/api', async (t) => {
  const page = (name: string) => readFileSync(join(root, 'docs/api', name), 'utf8');
  const pages = [
    { module: 'tcp-repair', names: Object.keys(api), text: page('tcp-repair.md') },
    { module: 'tcp-repair lowlevel', names: Object.keys(api.lowlevel), text: page('tcp-repair.Namespace.lowlevel.md') },
    { module: 'tcp-repair/topology', names: Object.keys(topology), text: page('tcp-repair.topology.md') },
  ];
  for (const { module, names, text } of pages) {
    for (const name of names) t.match(text, `[${name.replaceAll('_', '\\_')}](`, `${module}: ${name} listed`);
  }
});

t.test('relative links in README.md and docs/*.md resolve', async (t) => {
  const pages = ['README.md', ...readdirSync(join(root, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
  for (const page of pages) {
    const text = readFileSync(join(root, page), 'utf8');
    for (const [, target] of text.matchAll(/\]\(([^)\s#]+)(?:#[^)]*)?\)/g)) {
      if (/^[a-z]+:/.test(target!)) continue; // an absolute URL
      t.ok(existsSync(join(root, dirname(page), target!)), `${page} -> ${target}`);
    }
  }
});

t.test('docs/kernels.md is what scripts/kernels/docs.mjs renders from the committed run records', async (t) => {
  // The page is generated (its records are docs/kernels/*.json): a hand edit, or a change of the
  // generator without regenerating, would make it say something the records do not.
  const { renderDocs, readRecords } = await import(join(root, 'scripts/kernels/docs.mjs'));
  t.equal(readFileSync(join(root, 'docs/kernels.md'), 'utf8'), renderDocs(readRecords()), 'regenerate with `node scripts/kernels/docs.mjs`');
});
