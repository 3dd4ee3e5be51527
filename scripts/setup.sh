#!/usr/bin/env bash
# Idempotent machine set-up for gan-dsl: npm packages, a WebGPU driver when Dawn
# finds no adapter (lavapipe from bookworm-backports on Debian 12), and Debian's
# python3-torch for the parity tests (python3-regex for the CLIP tokenizer's). Fast
# when everything is already there.
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
# A node_modules that is a symlink is an install shared with another checkout
# (a git worktree): npm would empty the target through it, so leave it alone.
if [ $want_npm = 1 ] && [ ! -L node_modules ]; then
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
# Verified by importing it (a package dpkg calls installed can still fail to
# import: a half-upgraded numpy, a removed file). Under CI a missing oracle is
# an error: the parity tests are the point of the suite. `regex` is for the
# Python reference of the CLIP tokenizer (test/runtime/clip_tokenizer_ref.py).
torch_python=${GAN_TORCH_PYTHON:-/usr/bin/python3}
torch_ok() { "$torch_python" -c 'import torch, numpy, regex' >/dev/null 2>&1; }
torch_why() { "$torch_python" -c 'import torch, numpy, regex' 2>&1 | tail -n 1; }
if ! torch_ok; then
  if is_debian12 && [ "$torch_python" = /usr/bin/python3 ]; then
    if dpkg-query -W -f='${Status}' python3-torch 2>/dev/null | grep -q 'ok installed'; then
      log "python3-torch is installed but 'import torch, numpy, regex' fails ($(torch_why)); reinstalling them"
      apt_update
      apt_install --reinstall --no-install-recommends python3-torch python3-numpy python3-regex || true
    else
      log "installing Debian's python3-torch (CPU) and python3-regex for the parity tests"
      apt_update
      apt_install --no-install-recommends python3-torch python3-numpy python3-regex || true
    fi
  fi
  if ! torch_ok; then
    log "PyTorch, numpy or regex is not importable by $torch_python: $(torch_why)"
    log "the parity tests need them (Debian: apt-get install python3-torch python3-regex; elsewhere: pip install torch numpy regex,"
    log "and point GAN_TORCH_PYTHON at that interpreter); without it they are skipped, and under CI they fail"
    case "${CI:-}" in 1|true|TRUE|yes) exit 1 ;; esac
  fi
fi

# --- Headless Chromium for the browser test of generated modules -----------
# Its SwiftShader gives pages a WebGPU adapter on a GPU-less machine
# (shared/reference/machine-notes.md); test/emit/ts-module.test.ts drives it.
chromium=${GAN_CHROMIUM:-/usr/lib/chromium/chromium-headless-shell}
if [ ! -x "$chromium" ] && is_debian12 && [ "$chromium" = /usr/lib/chromium/chromium-headless-shell ]; then
  log "installing Debian's chromium-headless-shell for the browser test"
  apt_update
  apt_install --no-install-recommends chromium-headless-shell || true
fi
if [ ! -x "$chromium" ]; then
  log "no headless Chromium at $chromium: the browser test of generated modules is skipped, and under CI it fails"
  case "${CI:-}" in 1|true|TRUE|yes) exit 1 ;; esac
fi
exit 0
