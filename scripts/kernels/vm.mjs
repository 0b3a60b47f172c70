// Boots one Debian kernel under qemu (TCG) with the host's root filesystem shared read-only, runs
// one shell command inside, and hands back its output and exit code. The one place that knows how
// a kernel-matrix guest is started; the matrix runner, the default-suite matrix test and the
// cross-kernel move tests all go through bootVm().
//
// Why it looks like this (measured on the project's machine, see docs/kernels.md):
// - /dev/kvm there is a hypervisor that cannot boot Debian's kernels, so qemu runs with TCG
//   (`-accel tcg`): slow (each node start in the guest costs ~1-1.5 s) but works everywhere.
// - Debian's cloud kernels have virtiofs but no 9p: virtiofsd shares the host's / read-only. It only
//   shares / with `-o sandbox=chroot`, and qemu then needs a shared memfd memory backend.
// - The guest mounts a tmpfs overlay over that root (plus fresh /tmp, /run, /dev, /proc, /sys), so
//   the project, node and its node_modules are at the same paths as on the host and the test suite
//   runs unchanged, while nothing the guest writes reaches the host.
// - The command's stdout+stderr come back over a second serial port (ttyS1, a unix socket on this
//   side), framed by marker lines that carry the boot time and the exit code; the first serial port
//   is the kernel console (kept for diagnostics, streamed to onConsole).
// - Every qemu and virtiofsd started here is killed when the boot ends, times out or is aborted,
//   and when this process exits.
//
// API:
//   bootVm(options) -> Promise<VmResult>
//     options.kernel      a kernel descriptor from scripts/kernels/kernels.mjs (ensureKernel):
//                         { name, release, vmlinuz, initramfs, modulesDir }
//     options.command     shell command run by the host's /bin/sh inside the guest (as root)
//     options.cwd         working directory in the guest (default: process.cwd(); same path as host)
//     options.env         extra environment variables for the command
//     options.memoryMiB   guest memory (default 2048)      options.cpus  vCPUs (default 2)
//     options.timeoutMs   whole-boot deadline; qemu is killed on expiry (default 10 min)
//     options.tap         optional extra network device: { ifname: 'tap0', mac?: '52:54:00:..' }
//                         attaches an existing host tap device as a virtio-net NIC; the guest sees it
//                         as eth0 (down, unconfigured: the command configures it with `ip`)
//     options.userNet     true: also a user-mode (slirp) NIC, configured by the guest's init as
//                         10.0.2.15/24 via 10.0.2.2 (outbound only; before any tap NIC, so with
//                         both it is eth0 and the tap is eth1)
//     options.accel       qemu -accel value (default 'tcg,thread=multi'; 'kvm' where /dev/kvm can
//                         boot Debian kernels, which it cannot on the project's machine)
//     options.qemuArgs    extra raw qemu arguments (appended)
//     options.onConsole   (text) => void, kernel console output as it arrives
//     options.onOutput    (text) => void, the command's output as it arrives
//     options.signal      AbortSignal: kills the guest
//   VmResult: { exitCode (null when the command never finished), output, console, bootMs
//               (qemu start -> command start), commandMs, totalMs, timedOut, guestUptimeAtStart,
//               pids: { qemu, virtiofsd } (both gone when bootVm resolves) }
//   Guest environment: hostname "trvm", loopback up, /run/netns writable, kernel modules of the
//   guest's release at /lib/modules/<release> and auto-loaded (busybox modprobe), busybox at
//   /run/trvm/busybox for tools the host lacks (e.g. `/run/trvm/busybox ping`).
//   Tap example (checked: 6.12 guest pings the host over it):
//     ip tuntap add dev trtap0 mode tap; ip addr add 198.18.231.1/24 dev trtap0; ip link set trtap0 up
//     bootVm({ kernel, tap: { ifname: 'trtap0' }, command: 'ip link set eth0 up &&
//       ip addr add 198.18.231.2/24 dev eth0 && ...' })
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { onExit } from 'signal-exit';

export const QEMU = 'qemu-system-x86_64';
export const VIRTIOFSD = '/usr/lib/qemu/virtiofsd';

const READY = '@@TRVM-READY';
const EXIT = '@@TRVM-EXIT';

/** Every child still running, killed if this process exits first. */
const live = new Set();
let exitHookInstalled = false;
function track(child) {
  live.add(child);
  child.once('exit', () => live.delete(child));
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    // signal-exit: also on SIGTERM/SIGINT (tap's timeout), then lets the signal proceed.
    onExit(() => {
      for (const c of live) {
        try { c.kill('SIGKILL'); } catch { /* already gone */ }
      }
    });
  }
  return child;
}

function shellQuote(s) {
  return `'${String(s).replaceAll("'", "'\\''")}'`;
}

/** Waits until a unix socket path exists (virtiofsd and qemu create theirs asynchronously). */
async function waitForPath(path, child, what, ms = 20_000) {
  const end = Date.now() + ms;
  while (!existsSync(path)) {
    if (child.exitCode !== null || child.signalCode) throw new Error(`${what} exited before creating ${path}`);
    if (Date.now() > end) throw new Error(`${what} did not create ${path} within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function connectUnix(path, child, what, ms = 20_000) {
  await waitForPath(path, child, what, ms);
  const end = Date.now() + ms;
  for (;;) {
    try {
      return await new Promise((resolve, reject) => {
        const s = net.connect(path);
        s.once('connect', () => resolve(s));
        s.once('error', reject);
      });
    } catch (error) {
      if (Date.now() > end || child.exitCode !== null) throw new Error(`${what}: cannot connect to ${path}: ${error.message}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

/**
 * Boots `options.kernel` under qemu/TCG, runs `options.command` in the guest, resolves when the
 * guest is gone. Never rejects because the command failed: look at exitCode. Rejects only when
 * qemu or virtiofsd cannot start at all.
 */
export async function bootVm(options) {
  const {
    kernel,
    command,
    cwd = process.cwd(),
    env = {},
    memoryMiB = 2048,
    cpus = 2,
    timeoutMs = 600_000,
    tap,
    userNet = false,
    accel = 'tcg,thread=multi',
    qemuArgs = [],
    onConsole,
    onOutput,
    signal,
  } = options;
  if (!kernel?.vmlinuz || !kernel?.initramfs) throw new Error('bootVm: kernel descriptor needs vmlinuz and initramfs (scripts/kernels/kernels.mjs ensureKernel)');
  const dir = mkdtempSync(join(tmpdir(), 'tcp-repair-vm-'));
  const fsSock = join(dir, 'fs.sock');
  const resSock = join(dir, 'result.sock');
  // The job: read by the guest's init from the shared root (same path) before it hides /tmp.
  const exports = Object.entries({ HOME: '/root', PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', TERM: 'dumb', NO_COLOR: '1', ...env })
    .map(([k, v]) => `export ${k}=${shellQuote(v)}`)
    .join('\n');
  writeFileSync(join(dir, 'job.sh'), `${exports}\ncd ${shellQuote(cwd)} || exit 97\n${command}\n`);

  const started = Date.now();
  const children = [];
  let timedOut = false;
  let consoleText = '';
  let resultRaw = '';
  let readyAt = null;
  let guestUptimeAtStart = null;

  const kill = () => {
    for (const c of children) {
      if (c.exitCode === null && !c.signalCode) {
        try { c.kill('SIGKILL'); } catch { /* gone */ }
      }
    }
  };
  const onAbort = () => kill();
  signal?.addEventListener('abort', onAbort, { once: true });
  const timer = setTimeout(() => { timedOut = true; kill(); }, timeoutMs);

  try {
    // virtiofsd: the host's / for the guest. cache=always: the lower layer does not change during
    // a run and TCG guests spend much of their time in file lookups (node_modules).
    const virtiofsd = track(spawn(VIRTIOFSD, [`--socket-path=${fsSock}`, '-o', 'source=/', '-o', 'sandbox=chroot', '-o', 'cache=always', '--thread-pool-size=4'], { stdio: ['ignore', 'ignore', 'pipe'] }));
    children.push(virtiofsd);
    let vfsErr = '';
    virtiofsd.stderr.on('data', (d) => (vfsErr += d));
    const vfsGone = new Promise((resolve) => virtiofsd.once('close', resolve));
    virtiofsd.once('error', () => {});
    await waitForPath(fsSock, virtiofsd, `virtiofsd (${vfsErr.trim()})`);

    const append = [
      'console=ttyS0', 'panic=-1', 'oops=panic', 'quiet', 'loglevel=4', 'tsc=reliable', 'no_timer_check',
      'mitigations=off', 'rdinit=/init', `trvm.job=${join(dir, 'job.sh')}`,
      `trvm.modules=${kernel.modulesDir}`, `trvm.release=${kernel.release}`, `trvm.keep=${cwd}`, `trvm.usernet=${userNet ? 1 : 0}`,
    ].join(' ');
    const args = [
      '-accel', accel, '-machine', 'q35', '-cpu', 'max', '-smp', String(cpus), '-m', `${memoryMiB}M`,
      '-object', `memory-backend-memfd,id=mem,size=${memoryMiB}M,share=on`, '-numa', 'node,memdev=mem',
      '-nodefaults', '-no-user-config', '-display', 'none', '-no-reboot',
      '-kernel', kernel.vmlinuz, '-initrd', kernel.initramfs, '-append', append,
      '-chardev', `socket,id=vfs,path=${fsSock}`, '-device', 'vhost-user-fs-pci,chardev=vfs,tag=hostroot,queue-size=1024',
      '-chardev', 'stdio,id=con,signal=off', '-serial', 'chardev:con',
      '-chardev', `socket,id=res,path=${resSock},server=on,wait=on`, '-serial', 'chardev:res',
    ];
    if (userNet) {
      // qemu's user-mode network (slirp): outbound TCP/UDP through the host, e.g. npm's registry.
      args.push('-netdev', 'user,id=unet', '-device', 'virtio-net-pci,netdev=unet');
    }
    if (tap) {
      args.push('-netdev', `tap,id=net0,ifname=${tap.ifname},script=no,downscript=no`, '-device', `virtio-net-pci,netdev=net0${tap.mac ? `,mac=${tap.mac}` : ''}`);
    }
    args.push(...qemuArgs);
    const qemu = track(spawn(QEMU, args, { stdio: ['pipe', 'pipe', 'pipe'] }));
    children.push(qemu);
    let qemuErr = '';
    qemu.once('error', (e) => (qemuErr += `${e.message}\n`));
    // (qemu's "waiting for connection" notice on the result port is expected: not an error)
    qemu.stderr.on('data', (d) => (qemuErr += d));
    qemu.stdout.setEncoding('utf8');
    qemu.stdout.on('data', (d) => { consoleText += d; onConsole?.(d); });
    const qemuGone = new Promise((resolve) => qemu.once('close', (code, sig) => resolve({ code, sig })));

    // qemu waits (wait=on) until this side connects to the result port: no output is lost.
    const res = await connectUnix(resSock, qemu, `qemu (${qemuErr.trim()})`).catch((e) => { kill(); throw e; });
    res.setEncoding('utf8');
    let forwarded = 0;
    let finished = false;
    res.on('data', (d) => {
      resultRaw += d.replaceAll('\r', '');
      if (readyAt === null) {
        const m = new RegExp(`${READY} ([0-9.]+)@@\\n`).exec(resultRaw);
        if (m) {
          readyAt = Date.now();
          guestUptimeAtStart = Number(m[1]);
          forwarded = m.index + m[0].length;
        }
      }
      // Forward whole lines only, stopping at the exit marker.
      if (readyAt !== null && onOutput && !finished) {
        const lastNl = resultRaw.lastIndexOf('\n');
        if (lastNl + 1 > forwarded) {
          let chunk = resultRaw.slice(forwarded, lastNl + 1);
          const exitAt = chunk.indexOf(`${EXIT} `);
          if (exitAt !== -1) { chunk = chunk.slice(0, exitAt); finished = true; }
          forwarded = lastNl + 1;
          if (chunk) onOutput(chunk);
        }
      }
    });
    res.on('error', () => {});
    const resGone = new Promise((resolve) => res.once('close', resolve));
    const q = await qemuGone;
    // The result socket may still hold bytes qemu wrote just before it exited.
    await Promise.race([resGone, new Promise((r) => setTimeout(r, 2000))]);
    kill();
    await vfsGone;
    const readyIdx = resultRaw.indexOf(`${READY} `);
    const body = readyIdx === -1 ? '' : resultRaw.slice(resultRaw.indexOf('\n', readyIdx) + 1);
    const m = new RegExp(`${EXIT} (\\d+)@@`).exec(body);
    const output = m ? body.slice(0, m.index) : body;
    const end = Date.now();
    qemuErr = qemuErr.replace(/^.*QEMU waiting for connection.*\n?/gm, '');
    return {
      exitCode: m ? Number(m[1]) : null,
      output,
      console: consoleText + (qemuErr ? `\n[qemu stderr] ${qemuErr}` : '') + (q.code !== 0 && q.code !== null ? `\n[qemu exit ${q.code}]` : ''),
      bootMs: readyAt === null ? null : readyAt - started,
      commandMs: readyAt === null ? null : end - readyAt,
      totalMs: end - started,
      timedOut,
      guestUptimeAtStart,
      pids: { qemu: qemu.pid ?? null, virtiofsd: virtiofsd.pid ?? null },
    };
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
    kill();
    rmSync(dir, { recursive: true, force: true });
  }
}
