// Reads the TAP stream of `tap --reporter=tap` (what the guests print) into counts and failures,
// so a matrix run can say "6.1: 412 pass, 0 fail" and print only the failing parts when not.
// Assertion counts come from tap's closing summary line (`# { total: N, pass: N, fail: N, ... }`);
// per-file results from the top-level test points (`ok 3 - test/x.test.ts`).

/**
 * @param {string} text the TAP output
 * @returns {{ complete: boolean, total: number, pass: number, fail: number, skip: number, todo: number,
 *   files: { name: string, ok: boolean, ms: number | null }[], failures: string[] }}
 */
export function summarizeTap(text) {
  const lines = text.split('\n');
  const out = { complete: false, total: 0, pass: 0, fail: 0, skip: 0, todo: 0, files: [], failures: [] };
  let soFar = null;
  for (const line of lines) {
    const partial = /^# so far \{ (.*) \}\s*$/.exec(line);
    if (partial) soFar = partial[1];
    const summary = /^# \{ (.*) \}\s*$/.exec(line);
    if (summary) {
      out.complete = true;
      for (const part of summary[1].split(',')) {
        const [key, value] = part.split(':').map((s) => s.trim());
        if (key && key in out && typeof out[key] === 'number') out[key] = Number(value);
      }
    }
    const file = /^(not ok|ok) \d+ - (\S+)(?: # time=([0-9.]+)ms)?/.exec(line);
    if (file) out.files.push({ name: file[2], ok: file[1] === 'ok', ms: file[3] ? Number(file[3]) : null });
  }
  // Cut short (no closing summary): the last running totals guest-run.mjs printed.
  if (!out.complete && soFar) {
    for (const part of soFar.split(',')) {
      const [key, value] = part.split(':').map((s) => s.trim());
      if (key && key in out && typeof out[key] === 'number') out[key] = Number(value);
    }
  }
  // Each failing assertion with its indented YAML diagnostics (up to 40 lines), for the report.
  for (let i = 0; i < lines.length; i++) {
    const m = /^(\s*)not ok \d+ - /.exec(lines[i]);
    if (!m) continue;
    const indent = m[1].length;
    const block = [lines[i]];
    for (let j = i + 1; j < lines.length && block.length < 40; j++) {
      const l = lines[j];
      const ind = l.length - l.trimStart().length;
      if (l.trim() === '' || ind > indent || /^\s*(---|\.\.\.)\s*$/.test(l)) block.push(l);
      else break;
    }
    out.failures.push(block.join('\n'));
  }
  // A file that failed without a single failing assertion (crash, timeout) still counts.
  if (out.fail === 0 && out.files.some((f) => !f.ok)) out.fail = out.files.filter((f) => !f.ok).length;
  return out;
}
