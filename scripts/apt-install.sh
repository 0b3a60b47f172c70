# Sourced by scripts/system-deps.sh and scripts/kernels/deps.sh: installs the Debian packages in
# need[] (if any) with one message saying what they are for, or fails with apt's own output.
# Usage: apt_install_needed "<what they are for>" (reads the caller's need array).
apt_install_needed() {
  local purpose=$1
  if [ ${#need[@]} -eq 0 ]; then return 0; fi
  if [ "$(id -u)" != 0 ]; then
    echo "tcp-repair: ${purpose} needs: ${need[*]} (run as root, or: apt-get install ${need[*]})" >&2
    exit 1
  fi
  echo "tcp-repair: installing packages for ${purpose}: ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  local log
  log=$(mktemp)
  if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}"; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "tcp-repair: apt-get failed installing ${need[*]}" >&2
    rm -f "$log"
    exit 1
  fi
  rm -f "$log"
}
