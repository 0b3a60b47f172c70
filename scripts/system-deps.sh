#!/usr/bin/env bash
# Installs the Debian packages tcp-repair's tests, demo and benchmarks use, if missing.
# ip (iproute2) builds the test hosts, nft (nftables) injects loss and counts resets,
# curl and socat are third-party clients, tcpdump captures for RST checks, arping and ndisc6
# announce a moved service address when the kernel's own announcement is not used; script
# (bsdutils) gives the CLI test a terminal; cc builds the benchmark's C reference (bench/reference.c).
# strace checks the order of checkpoint's system calls (and `npm run bench -- --syscalls`).
set -euo pipefail
need=()
command -v ip >/dev/null || need+=(iproute2)
command -v nft >/dev/null || need+=(nftables)
command -v curl >/dev/null || need+=(curl)
command -v socat >/dev/null || need+=(socat)
command -v tcpdump >/dev/null || need+=(tcpdump)
command -v script >/dev/null || need+=(bsdutils)
command -v arping >/dev/null || need+=(iputils-arping)
command -v ndisc6 >/dev/null || need+=(ndisc6)
command -v setpriv >/dev/null || need+=(util-linux)
command -v prlimit >/dev/null || need+=(util-linux)
command -v make >/dev/null || need+=(make)
command -v g++ >/dev/null || need+=(g++)
command -v cc >/dev/null || need+=(gcc)
command -v cmake >/dev/null || need+=(cmake)
command -v strace >/dev/null || need+=(strace)
source "$(dirname "${BASH_SOURCE[0]}")/apt-install.sh"
apt_install_needed "the tests, demo and benchmarks"
