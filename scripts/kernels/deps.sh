#!/usr/bin/env bash
# Installs what the kernel matrix needs on top of scripts/system-deps.sh, if missing. Kept apart so
# the ordinary test path does not install qemu unless a kernel-matrix test or `npm run test:kernels`
# runs. qemu-system-x86 boots the Debian kernels (TCG), qemu-system-common ships virtiofsd (shares
# the host's / with the guest), busybox-static is the guest's initramfs userland and writes the
# modules.dep a downloaded kernel package lacks; xz-utils unpacks Debian 6.12's .ko.xz modules.
set -euo pipefail
need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
[ -x /usr/lib/qemu/virtiofsd ] || need+=(qemu-system-common)
dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'install ok installed' || need+=(busybox-static)
command -v xz >/dev/null || need+=(xz-utils)
command -v apt-get >/dev/null || { echo "tcp-repair: the kernel matrix needs a Debian system (apt-get)" >&2; exit 1; }
source "$(dirname "${BASH_SOURCE[0]}")/../apt-install.sh"
apt_install_needed "the kernel matrix"
