// The kernels of the matrix and how to get each one ready to boot, without installing anything:
// the newest Debian package of each series is found with apt-cache, fetched with
// `apt-get download`, unpacked with `dpkg -x` into .kernels/<package>/root, and given an initramfs
// (initramfs.mjs). .kernels/ is a cache (gitignored): a kernel already unpacked there is reused, and
// .kernels/<name>.json describes the one the matrix boots. Works from scratch on a fresh Debian
// machine with the deb.debian.org sources (bookworm + bookworm-security carry both series).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildInitramfs } from './initramfs.mjs';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const CACHE = join(ROOT, '.kernels');

/**
 * The Debian kernels of the matrix. The 6.12 series is a bookworm backport whose plain package is
 * the signed one; the -unsigned package holds the same image and needs no shim: fetch that one.
 * Both are "cloud" flavours: small, virtio drivers, virtiofs (module on 6.1, built in on 6.12).
 */
export const KERNELS = [
  { name: '6.1', pattern: /^linux-image-(6\.1\.0-\d+-cloud-amd64)-unsigned$/ },
  { name: '6.12', pattern: /^linux-image-(6\.12\.\d+\+deb12-cloud-amd64)-unsigned$/ },
];

const log = (msg) => process.stderr.write(`tcp-repair kernels: ${msg}\n`);

const versionKey = (s) => s.split(/[^0-9]+/).filter(Boolean).map(Number);
function newer(a, b) {
  const x = versionKey(a);
  const y = versionKey(b);
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    if ((x[i] ?? -1) !== (y[i] ?? -1)) return (x[i] ?? -1) > (y[i] ?? -1);
  }
  return false;
}

/** The newest package of a series that apt knows about (apt-get update first on a fresh machine). */
export function newestPackage(spec) {
  const out = execFileSync('apt-cache', ['search', '--names-only', '^linux-image-6\\.'], { encoding: 'utf8' });
  let best = null;
  for (const line of out.split('\n')) {
    const pkg = line.split(' ')[0];
    const m = spec.pattern.exec(pkg ?? '');
    if (m && (!best || newer(m[1], best.release))) best = { package: pkg, release: m[1] };
  }
  return best;
}

/** The release already unpacked in the cache for this series, if any (newest first). */
function cachedRelease(spec) {
  if (!existsSync(CACHE)) return null;
  let best = null;
  for (const entry of readdirSync(CACHE)) {
    const m = spec.pattern.exec(`${entry}-unsigned`);
    if (!m || !existsSync(join(CACHE, entry, 'root', 'boot', `vmlinuz-${m[1]}`))) continue;
    if (!best || newer(m[1], best)) best = m[1];
  }
  return best;
}

/** Downloads and unpacks one package into .kernels/linux-image-<release>/root. */
function fetchPackage(pkg, release) {
  const dir = join(CACHE, `linux-image-${release}`);
  const work = join(CACHE, `download-${release}`); // per release: parallel columns fetch side by side
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  log(`downloading ${pkg} (apt-get download, not installed)`);
  execFileSync('apt-get', ['download', '-q', pkg], { cwd: work, stdio: ['ignore', 'ignore', 'inherit'] });
  const deb = readdirSync(work).find((f) => f.endsWith('.deb'));
  if (!deb) throw new Error(`apt-get download ${pkg} produced no .deb`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  execFileSync('dpkg', ['-x', join(work, deb), join(dir, 'root')]);
  // The package carries no modules.dep/modules.alias (depmod runs at install time): busybox's
  // depmod writes them, for the initramfs's dependency order and the guest's auto-loading.
  execFileSync('busybox', ['depmod', '-b', join(dir, 'root'), release]);
  rmSync(work, { recursive: true, force: true });
  return dir;
}

/**
 * A bootable kernel descriptor for a matrix name ('6.1', '6.12'), fetching and building what is
 * missing: the newest package apt knows of each series. The descriptor is also written to .kernels/<name>.json.
 */
export function ensureKernel(name) {
  const spec = KERNELS.find((k) => k.name === name);
  if (!spec) throw new Error(`unknown kernel ${name} (known: ${KERNELS.map((k) => k.name).join(', ')})`);
  // Test files run side by side (tap jobs) and each may fetch into the same cache: one at a time,
  // or one reads a kernel another is still unpacking (seen: no modules.dep yet).
  return withCacheLock(name, () => ensureKernelLocked(name, spec));
}

const LOCK_WAIT_MS = 15 * 60_000;

/** Runs `fn` holding .kernels/<name>.lock (a directory: mkdir is atomic); a dead holder's lock is taken over. */
function withCacheLock(name, fn) {
  mkdirSync(CACHE, { recursive: true });
  const lock = join(CACHE, `${name}.lock`);
  const deadline = Date.now() + LOCK_WAIT_MS;
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (;;) {
    try {
      mkdirSync(lock);
      writeFileSync(join(lock, 'pid'), String(process.pid));
      break;
    } catch (error) {
      if (error.code !== 'EEXIST') throw error;
      if (!holderAlive(lock)) rmSync(lock, { recursive: true, force: true });
      else if (Date.now() > deadline) throw new Error(`${lock} still held after ${LOCK_WAIT_MS / 60_000} min`);
      else Atomics.wait(pause, 0, 0, 200);
    }
  }
  try {
    return fn();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

function holderAlive(lock) {
  let pid;
  try {
    pid = Number(readFileSync(join(lock, 'pid'), 'utf8'));
  } catch {
    return true; // just created, pid not written yet
  }
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return error.code === 'EPERM';
  }
}

function ensureKernelLocked(name, spec) {
  // Newest known to apt (a cheap local lookup); without apt lists, what the cache holds; with
  // neither, refresh the lists once.
  let found = newestPackage(spec);
  if (!found) {
    const cached = cachedRelease(spec);
    if (cached) found = { package: `linux-image-${cached}-unsigned`, release: cached };
  }
  if (!found) {
    log('no matching kernel package in apt lists: running apt-get update');
    execFileSync('apt-get', ['update', '-qq'], { stdio: ['ignore', 'ignore', 'inherit'] });
    found = newestPackage(spec);
  }
  if (!found) throw new Error(`no Debian package matches ${spec.pattern} (sources need bookworm and bookworm-security)`);
  const { package: pkg, release } = found;
  const dir = join(CACHE, `linux-image-${release}`);
  const vmlinuz = join(dir, 'root', 'boot', `vmlinuz-${release}`);
  const modulesDir = join(dir, 'root', 'lib', 'modules', release);
  // modules.dep is written last: without it an earlier fetch was cut short.
  if (!existsSync(vmlinuz) || !existsSync(join(modulesDir, 'modules.dep'))) fetchPackage(pkg, release);
  // The initramfs is rebuilt when this directory's scripts are newer (its init changed).
  const initramfs = join(dir, 'initramfs.cpio');
  const scripts = ['initramfs.mjs'].map((f) => statSync(join(dirname(fileURLToPath(import.meta.url)), f)).mtimeMs);
  if (!existsSync(initramfs) || statSync(initramfs).mtimeMs < Math.max(...scripts)) {
    log(`building initramfs for ${release}`);
    buildInitramfs(modulesDir, initramfs);
  }
  const descriptor = { format: 1, name, package: pkg, release, vmlinuz, modulesDir, initramfs };
  writeFileSync(join(CACHE, `${name}.json`), `${JSON.stringify(descriptor, null, 2)}\n`);
  return descriptor;
}

/** Reads a descriptor ensureKernel wrote before (no network, no building). */
export function readKernel(name) {
  return JSON.parse(readFileSync(join(CACHE, `${name}.json`), 'utf8'));
}
