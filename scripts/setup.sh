#!/usr/bin/env bash
# Idempotent machine set-up for gan-dsl: npm packages, a WebGPU driver when Dawn
# finds no adapter (lavapipe from bookworm-backports on Debian 12), and Debian's
# python3-torch for the parity tests. Fast when everything is already there.
#
#   scripts/setup.sh            everything
#   scripts/setup.sh --no-npm   system packages only (npm pre-scripts use this)
set -euo pipefail
cd "$(dirname "$0")/.."

want_npm=1
for a in "$@"; do
  case "$a" in
    --no-npm) want_npm=0 ;;
    *) echo "setup: unknown option '$a'" >&2; exit 2 ;;
  esac
done

log() { printf 'setup: %s\n' "$*" >&2; }

is_debian12() { [ -r /etc/os-release ] && . /etc/os-release && [ "${ID:-}" = debian ] && [ "${VERSION_ID:-}" = 12 ]; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    log "need root to run: $*"; return 1; fi
}

apt_log=${TMPDIR:-/tmp}/gan-setup-apt.log
apt_updated=0
apt_update() { [ $apt_updated = 1 ] || { as_root apt-get update -qq >>"$apt_log" 2>&1; apt_updated=1; }; }
apt_install() {
  # Quiet unless it fails; the full log stays in $apt_log.
  if ! DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq -o Dpkg::Use-Pty=0 "$@" >>"$apt_log" 2>&1; then
    tail -n 30 "$apt_log" >&2
    log "apt-get install $* failed (full log: $apt_log)"
    return 1
  fi
}

# --- npm packages ---------------------------------------------------------
if [ $want_npm = 1 ]; then
  if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ] || [ package.json -nt node_modules/.package-lock.json ]; then
    log "installing npm packages"
    if [ -f package-lock.json ]; then npm ci --no-audit --no-fund >&2; else npm install --no-audit --no-fund >&2; fi
  fi
fi

# --- Vulkan driver for Dawn -----------------------------------------------
lavapipe_ok() {
  # Dawn needs Mesa >= 23 (bookworm's 22.3 lacks required Vulkan features).
  local v
  v=$(dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null || true)
  [ -n "$v" ] && dpkg --compare-versions "$v" ge 25
}
if command -v nvidia-smi >/dev/null 2>&1 || ls /dev/dri/renderD* >/dev/null 2>&1; then
  : # a hardware GPU exists; Dawn will use its Vulkan driver
elif is_debian12; then
  if ! lavapipe_ok; then
    log "installing Mesa lavapipe (mesa-vulkan-drivers 25.x) from bookworm-backports"
    if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
      echo 'deb http://deb.debian.org/debian bookworm-backports main' | as_root tee /etc/apt/sources.list.d/bookworm-backports.list >/dev/null
    fi
    apt_update
    apt_install -t bookworm-backports mesa-vulkan-drivers libvulkan1
  fi
else
  if ! ldconfig -p 2>/dev/null | grep -q libvulkan.so.1; then
    log "no Vulkan loader found. Install a Vulkan driver for your GPU, or Mesa's lavapipe (>= 25)"
    log "for a CPU-only machine (e.g. 'mesa-vulkan-drivers' on Debian/Ubuntu, 'vulkan-swrast' on Arch)."
  fi
fi

# --- PyTorch oracle for parity tests ---------------------------------------
if ! dpkg-query -W -f='${Status}' python3-torch 2>/dev/null | grep -q 'ok installed' && ! /usr/bin/python3 -c 'import torch' >/dev/null 2>&1; then
  if is_debian12; then
    log "installing Debian's python3-torch (CPU) for the parity tests"
    apt_update
    apt_install --no-install-recommends python3-torch python3-numpy
  else
    log "parity tests need PyTorch importable by /usr/bin/python3 (pip install torch); they will be skipped"
  fi
fi
exit 0
