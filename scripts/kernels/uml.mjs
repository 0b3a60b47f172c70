// The matrix's quick extra column: Debian's user-mode-linux (6.1um), a Linux kernel that runs as
// an ordinary host process. No emulation, so no TCG cost, and no virtiofs needed: UML's hostfs
// mounts the host's / directly (read-only), under a tmpfs overlay as in the qemu guests. Same
// contract as vm.mjs's bootVm() (options and result), so the suite runner treats it as one more
// kernel. The command's output and exit code come back through a writable hostfs mount of a
// host directory (UML has no spare serial port to spare here).
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { onExit } from 'signal-exit';
import { CACHE } from './kernels.mjs';
import { resolveModules, SUITE_MODULES } from './initramfs.mjs';

const log = (msg) => process.stderr.write(`tcp-repair kernels: ${msg}\n`);

/** Fetches (apt-get download, dpkg -x) Debian's user-mode-linux; returns its descriptor. */
export function ensureUml() {
  const dir = join(CACHE, 'user-mode-linux');
  const linux = join(dir, 'root/usr/bin/linux.uml');
  if (!existsSync(linux)) {
    const work = join(CACHE, 'download-uml');
    rmSync(work, { recursive: true, force: true });
    mkdirSync(work, { recursive: true });
    log('downloading user-mode-linux (apt-get download, not installed)');
    execFileSync('apt-get', ['download', '-q', 'user-mode-linux'], { cwd: work, stdio: ['ignore', 'ignore', 'inherit'] });
    const deb = readdirSync(work).find((f) => f.endsWith('.deb'));
    rmSync(dir, { recursive: true, force: true });
    execFileSync('dpkg', ['-x', join(work, deb), join(dir, 'root')]);
    rmSync(work, { recursive: true, force: true });
  }
  const modulesRoot = join(dir, 'root/usr/lib/uml/modules');
  const release = readdirSync(modulesRoot)[0];
  return { format: 1, name: '6.1um', uml: true, package: 'user-mode-linux', release, linux, modulesDir: join(modulesRoot, release) };
}

const live = new Set();
onExit(() => {
  for (const c of live) {
    try { process.kill(-c.pid, 'SIGKILL'); } catch { /* gone */ }
  }
});

/** bootVm() for a UML kernel descriptor: same options (tap/userNet unsupported), same result. */
export async function bootUml(options) {
  const { kernel, command, cwd = process.cwd(), env = {}, memoryMiB = 2048, timeoutMs = 600_000, onOutput, signal } = options;
  if (options.tap || options.userNet) throw new Error('bootUml: no network devices (tap, userNet) in the UML column');
  // The job directory must be visible to the UML kernel at the same path: not under /tmp, which
  // the guest replaces with its own tmpfs before the job runs.
  const dir = mkdtempSync(join(CACHE, 'uml-job-'));
  const out = join(dir, 'out');
  mkdirSync(out);
  mkdirSync(join(dir, 'upper'));
  mkdirSync(join(dir, 'newroot'));
  const q = (s) => `'${String(s).replaceAll("'", "'\\''")}'`;
  const exports = Object.entries({ HOME: '/root', PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', TERM: 'dumb', NO_COLOR: '1', ...env })
    .map(([k, v]) => `export ${k}=${q(v)}`).join('\n');
  writeFileSync(join(dir, 'job.sh'), `${exports}\ncd ${q(cwd)} || exit 97\n${command}\n`);
  const mods = resolveModules(kernel.modulesDir, ['overlay', 'ipv6', ...SUITE_MODULES]).map((p) => `insmod ${q(join(kernel.modulesDir, p))} 2>/dev/null`);
  const nr = join(dir, 'newroot');
  writeFileSync(join(dir, 'init.sh'), `#!/bin/busybox sh
BB=/bin/busybox
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
$BB mount -t proc proc /proc
$BB mount -t sysfs sysfs /sys
$BB mount -t devtmpfs devtmpfs /dev 2>/dev/null
${mods.map((m) => `$BB ${m}`).join('\n')}
$BB mount -t tmpfs -o mode=0755 tmpfs ${q(join(dir, 'upper'))}
$BB mkdir -p ${q(join(dir, 'upper/u'))} ${q(join(dir, 'upper/w'))}
$BB mount -t overlay overlay -o lowerdir=/,upperdir=${join(dir, 'upper/u')},workdir=${join(dir, 'upper/w')} ${q(nr)} || { echo "uml init: overlay failed"; $BB poweroff -f; }
$BB mount -t tmpfs -o mode=1777 tmpfs ${q(`${nr}/tmp`)}
$BB mount -t tmpfs -o mode=0755 tmpfs ${q(`${nr}/run`)}
$BB mkdir -p ${q(`${nr}/run/netns`)} ${q(`${nr}/run/trvm/out`)} ${q(`${nr}/lib/modules/${kernel.release}`)}
$BB mount -t hostfs none ${q(`${nr}/run/trvm/out`)} -o ${q(out)}
$BB mount --bind ${q(kernel.modulesDir)} ${q(`${nr}/lib/modules/${kernel.release}`)}
$BB cp $BB ${q(`${nr}/run/trvm/busybox`)}
$BB cp ${q(join(dir, 'job.sh'))} ${q(`${nr}/run/trvm/job.sh`)}
$BB mount --rbind /proc ${q(`${nr}/proc`)}
$BB mount --rbind /sys ${q(`${nr}/sys`)}
$BB mount --rbind /dev ${q(`${nr}/dev`)}
cat > ${q(`${nr}/run/trvm/stage2.sh`)} <<'STAGE2'
BB=/run/trvm/busybox
$BB mkdir -p /dev/pts /dev/shm
$BB mount -t devpts -o newinstance,ptmxmode=0666 devpts /dev/pts
$BB mount -t tmpfs -o mode=1777 tmpfs /dev/shm
printf '#!/bin/sh\\nexec /run/trvm/busybox modprobe "$@"\\n' > /run/trvm/modprobe
$BB chmod +x /run/trvm/modprobe
echo /run/trvm/modprobe > /proc/sys/kernel/modprobe
$BB hostname trvm
$BB ip link set lo up
$BB cut -d' ' -f1 /proc/uptime > /run/trvm/out/ready
{ /bin/sh /run/trvm/job.sh < /dev/null; echo $? > /run/trvm/out/rc.tmp; } > /run/trvm/out/output 2>&1
$BB mv /run/trvm/out/rc.tmp /run/trvm/out/rc
$BB sync
STAGE2
$BB chroot ${q(nr)} /run/trvm/busybox sh /run/trvm/stage2.sh
$BB sync
$BB poweroff -f
`, { mode: 0o755 });

  const started = Date.now();
  let consoleText = '';
  let timedOut = false;
  let readyAt = null;
  const child = spawn(kernel.linux, [`mem=${memoryMiB}M`, 'root=/dev/root', 'rootfstype=hostfs', 'rootflags=/', 'ro', `init=${join(dir, 'init.sh')}`, 'con=null', 'con0=fd:0,fd:1', 'quiet'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  live.add(child);
  child.stdout.on('data', (d) => (consoleText += d));
  child.stderr.on('data', (d) => (consoleText += d));
  // UML runs as several host processes that outlive the one spawned here (reparented to init,
  // holding its output pipe open): kill its whole process group (detached: a group of its own).
  const kill = () => { try { process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ } };
  const timer = setTimeout(() => { timedOut = true; kill(); }, timeoutMs);
  signal?.addEventListener('abort', kill, { once: true });
  // Poll the shared output file: boot time from the ready marker, output streamed to onOutput.
  let forwarded = 0;
  const poll = setInterval(() => {
    if (readyAt === null && existsSync(join(out, 'ready'))) readyAt = Date.now();
    if (onOutput && existsSync(join(out, 'output'))) {
      const text = readFileSync(join(out, 'output'), 'utf8');
      const end = text.lastIndexOf('\n') + 1;
      if (end > forwarded) { onOutput(text.slice(forwarded, end)); forwarded = end; }
    }
  }, 500);
  // 'exit', not 'close': UML's other processes may hold the pipes; then take the group down.
  await new Promise((resolve) => child.once('exit', resolve));
  kill();
  live.delete(child);
  clearInterval(poll);
  clearTimeout(timer);
  const end = Date.now();
  const read = (f) => (existsSync(join(out, f)) ? readFileSync(join(out, f), 'utf8') : null);
  const output = read('output') ?? '';
  if (onOutput && output.length > forwarded) onOutput(output.slice(forwarded));
  const rc = read('rc');
  const ready = read('ready');
  if (readyAt === null && ready !== null) readyAt = end;
  rmSync(dir, { recursive: true, force: true });
  return {
    exitCode: rc === null ? null : Number(rc.trim()),
    output,
    console: consoleText,
    bootMs: readyAt === null ? null : readyAt - started,
    commandMs: readyAt === null ? null : end - readyAt,
    totalMs: end - started,
    timedOut,
    guestUptimeAtStart: ready === null ? null : Number(ready.trim()),
  };
}
