// Builds the initramfs a kernel-matrix guest boots with: busybox-static, the kernel modules needed
// to reach the host's root (virtio PCI, virtiofs, fuse, overlay) and the NIC an optional tap device
// becomes (virtio_net), decompressed here (busybox's insmod reads plain .ko), and two scripts:
// /init (stage 1, in the initramfs) and /stage2.sh (runs as PID 1 inside the assembled root).
// The archive is written in the kernel's "newc" cpio format directly from Node, so no cpio tool is
// needed. Modules that the kernel has built in (listed in modules.builtin) are skipped.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Modules stage 1 loads before it mounts anything (those not built into the kernel). */
export const BOOT_MODULES = ['virtio_pci', 'virtio_blk', 'virtio_net', 'virtio_console', 'fuse', 'virtiofs', 'overlay'];
/**
 * Modules the test suite uses, loaded in stage 1 so the suite does not depend on auto-loading:
 * network namespaces link veth pairs to bridges, the migration tests use vxlan, and nftables
 * (cuts, loss, RST counters) needs nf_tables plus the expressions the rules use.
 */
export const SUITE_MODULES = ['veth', 'bridge', 'vxlan', 'tun', 'nf_tables', 'nft_numgen', 'nft_ct', 'nft_reject_inet', 'nft_chain_nat', 'nft_limit', 'nft_counter', 'nft_compat', 'nf_conntrack', 'ipv6', 'sch_fq_codel', 'ip6_udp_tunnel', 'udp_tunnel'];

const BUSYBOX = '/bin/busybox';

// Stage 1: mount the host's / (virtiofs, read-only) under a tmpfs overlay, give the guest fresh
// /tmp and /run (tests list /run/netns: the host's entries must not show), put the kernel's
// modules at /lib/modules/<release>, copy the job and busybox into /run/trvm, switch root.
const INIT = `#!/bin/busybox sh
/bin/busybox mkdir -p /sbin /usr/bin /usr/sbin /proc /sys /dev
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
fail() { echo "trvm init: $*" >/dev/console; echo "@@TRVM-EXIT 98@@" >/dev/ttyS1; sync; poweroff -f; }
for arg in $(cat /proc/cmdline); do
  case "$arg" in
    trvm.job=*) JOB=\${arg#trvm.job=} ;;
    trvm.modules=*) MODDIR=\${arg#trvm.modules=} ;;
    trvm.release=*) REL=\${arg#trvm.release=} ;;
    trvm.keep=*) KEEP=\${arg#trvm.keep=} ;;
  esac
done
while read -r m; do [ -n "$m" ] && insmod "/modules/$m" 2>/dev/null; done < /modules/order
mkdir -p /lower /upper /newroot
mount -t virtiofs -o ro hostroot /lower || fail "cannot mount virtiofs"
mount -t tmpfs -o mode=0755 tmpfs /upper
mkdir -p /upper/u /upper/w
mount -t overlay overlay -o lowerdir=/lower,upperdir=/upper/u,workdir=/upper/w /newroot || fail "cannot mount overlay"
# The job's directory stays visible when it lives under /tmp or /run (a clone in mktemp -d):
# held by a bind mount while the fresh tmpfs goes on, then moved back to its path.
HELD=; if [ -n "$KEEP" ] && [ -d "/newroot$KEEP" ]; then mkdir -p /keep && mount --bind "/newroot$KEEP" /keep && HELD=1; fi
mount -t tmpfs -o mode=1777 tmpfs /newroot/tmp
mount -t tmpfs -o mode=0755 tmpfs /newroot/run
if [ -n "$HELD" ]; then mkdir -p "/newroot$KEEP" && mount --move /keep "/newroot$KEEP" || fail "cannot keep $KEEP visible"; fi
mkdir -p /newroot/run/netns /newroot/run/trvm /newroot/root
cp /bin/busybox /newroot/run/trvm/busybox
cp /stage2.sh /newroot/run/trvm/stage2.sh
cp "/lower$JOB" /newroot/run/trvm/job.sh || fail "no job at $JOB"
if [ -n "$MODDIR" ] && [ -d "/lower$MODDIR" ]; then
  mkdir -p "/newroot/lib/modules/$REL" && mount --bind "/lower$MODDIR" "/newroot/lib/modules/$REL"
fi
mount --move /proc /newroot/proc
mount --move /sys /newroot/sys
mount --move /dev /newroot/dev
exec switch_root /newroot /run/trvm/busybox sh /run/trvm/stage2.sh
`;

// Stage 2 (PID 1 in the guest's root): the pseudo filesystems the suite expects, loopback up,
// auto-loading through busybox's modprobe, then the job with its output on ttyS1 (through a pipe,
// so the job does not think it writes to a terminal), then the exit code and power off.
const STAGE2 = `BB=/run/trvm/busybox
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
$BB mkdir -p /dev/pts /dev/shm /dev/mqueue
$BB mount -t devpts -o newinstance,ptmxmode=0666 devpts /dev/pts
$BB ln -sf pts/ptmx /dev/ptmx 2>/dev/null
$BB mount -t tmpfs -o mode=1777 tmpfs /dev/shm
$BB mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null
$BB mount -t bpf bpf /sys/fs/bpf 2>/dev/null
printf '#!/bin/sh\\nexec /run/trvm/busybox modprobe "$@"\\n' > /run/trvm/modprobe
$BB chmod +x /run/trvm/modprobe
echo /run/trvm/modprobe > /proc/sys/kernel/modprobe
$BB hostname trvm
$BB ip link set lo up
if $BB grep -q 'trvm.usernet=1' /proc/cmdline; then
  $BB ip link set eth0 up && $BB ip addr add 10.0.2.15/24 dev eth0 && $BB ip route add default via 10.0.2.2
fi
$BB stty -F /dev/ttyS1 raw -echo 2>/dev/null
echo "@@TRVM-READY $($BB cut -d' ' -f1 /proc/uptime)@@" > /dev/ttyS1
{ /bin/sh /run/trvm/job.sh < /dev/null; echo $? > /run/trvm/rc; } 2>&1 | $BB cat > /dev/ttyS1
echo "@@TRVM-EXIT $($BB cat /run/trvm/rc 2>/dev/null || echo 99)@@" > /dev/ttyS1
$BB sync
$BB poweroff -f
`;

/** The module name of a modules.dep path: kernel/fs/fuse/virtiofs.ko.xz -> virtiofs. */
const modName = (p) => p.split('/').pop().replace(/\.ko(\.(xz|zst|gz))?$/, '').replaceAll('-', '_');

/** Resolves names to module paths (dependencies first), skipping built-in ones and unknowns. */
export function resolveModules(modulesDir, names) {
  const deps = new Map();
  for (const line of readFileSync(join(modulesDir, 'modules.dep'), 'utf8').split('\n')) {
    const [path, rest] = line.split(':');
    if (!path) continue;
    deps.set(modName(path), { path, deps: (rest ?? '').trim().split(/\s+/).filter(Boolean) });
  }
  const order = [];
  const seen = new Set();
  const visit = (name) => {
    if (seen.has(name)) return;
    seen.add(name);
    const entry = deps.get(name);
    if (!entry) return; // built in, or not in this kernel
    for (const dep of entry.deps) visit(modName(dep));
    order.push(entry.path);
  };
  for (const name of names) visit(name.replaceAll('-', '_'));
  return order;
}

/** Reads a module file, decompressed. */
function moduleBytes(file) {
  if (file.endsWith('.xz')) return execFileSync('xz', ['-dc', file], { maxBuffer: 1 << 28 });
  if (file.endsWith('.zst')) return execFileSync('zstd', ['-dc', file], { maxBuffer: 1 << 28 });
  if (file.endsWith('.gz')) return execFileSync('gzip', ['-dc', file], { maxBuffer: 1 << 28 });
  return readFileSync(file);
}

/** A newc cpio archive (the format the kernel unpacks): entries are { name, mode, data? }. */
export function cpioNewc(entries) {
  const chunks = [];
  let ino = 1;
  const pad4 = (n) => (4 - (n % 4)) % 4;
  const hex = (n) => n.toString(16).padStart(8, '0');
  const push = (name, mode, data, rdev = [0, 0]) => {
    const nameBuf = Buffer.from(`${name}\0`);
    const header = `070701${hex(ino++)}${hex(mode)}${hex(0)}${hex(0)}${hex(1)}${hex(0)}${hex(data.length)}${hex(0)}${hex(0)}${hex(rdev[0])}${hex(rdev[1])}${hex(nameBuf.length)}${hex(0)}`;
    chunks.push(Buffer.from(header), nameBuf, Buffer.alloc(pad4(110 + nameBuf.length)), data, Buffer.alloc(pad4(data.length)));
  };
  for (const e of entries) push(e.name, e.mode, e.data ?? Buffer.alloc(0), e.rdev);
  push('TRAILER!!!', 0, Buffer.alloc(0));
  return Buffer.concat(chunks);
}

/** Writes the initramfs for a kernel whose modules are unpacked at modulesDir. */
export function buildInitramfs(modulesDir, out) {
  if (!existsSync(BUSYBOX)) throw new Error(`${BUSYBOX} missing: run scripts/kernels/deps.sh (busybox-static)`);
  const DIR = 0o040755;
  const FILE = 0o100644;
  const EXEC = 0o100755;
  const paths = resolveModules(modulesDir, [...BOOT_MODULES, ...SUITE_MODULES]);
  const entries = [
    { name: 'bin', mode: DIR }, { name: 'dev', mode: DIR }, { name: 'proc', mode: DIR }, { name: 'sys', mode: DIR },
    { name: 'modules', mode: DIR },
    { name: 'dev/console', mode: 0o020600, rdev: [5, 1] },
    { name: 'bin/busybox', mode: EXEC, data: readFileSync(BUSYBOX) },
    { name: 'init', mode: EXEC, data: Buffer.from(INIT) },
    { name: 'stage2.sh', mode: FILE, data: Buffer.from(STAGE2) },
  ];
  const order = [];
  for (const p of paths) {
    const file = `${modName(p)}.ko`;
    order.push(file);
    entries.push({ name: `modules/${file}`, mode: FILE, data: moduleBytes(join(modulesDir, p)) });
  }
  entries.push({ name: 'modules/order', mode: FILE, data: Buffer.from(`${order.join('\n')}\n`) });
  writeFileSync(out, cpioNewc(entries));
  return { modules: order };
}
