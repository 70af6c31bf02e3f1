#!/usr/bin/env bash
# One entry for developers and CI, from a fresh machine of this kind:
#   contrib/dev.sh shell [ARGS…]   set up, then start the guarded shell
#   contrib/dev.sh test  [PYTEST ARGS…]   set up (apt + venv), lint, type-check, run every test
# Set-up is idempotent and skipped when nothing changed (a stamp of pyproject.toml).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
venv=${ATTYGUARD_VENV:-$root/.venv}

# systemd: systemd-analyze checks contrib/attyguard.service; shellcheck checks contrib/install.sh;
# gcc, libc6-dev: install.sh builds the login launcher (contrib/login-launcher.c);
# git: the login tests clone and push over ssh through attyguard.
# linux-libc-dev: asm/unistd_64.h, the syscall table SEC-002 policies are checked against.
# libbpf1: the kernel layer loads attyguard/kernel/*.bpf.o through it (ctypes);
# clang, llvm (llvm-strip), bpftool, libbpf-dev: rebuild those objects (python -m
# attyguard.kernel.build) and the test that a rebuild matches the committed object.
# rsyslog: the fleet-event tests send OCSF events to a real rsyslog on 127.0.0.1.
apt_packages=(tmux openssh-server openssh-client rsync vim less bash-completion procps sudo systemd shellcheck gcc libc6-dev git libbpf1 clang llvm bpftool libbpf-dev linux-libc-dev rsyslog libseccomp2)

need_apt() {
  local missing=()
  for p in "${apt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    local sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    echo "dev.sh: installing ${missing[*]}" >&2
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 --no-install-recommends "${missing[@]}" >&2
  fi
}

need_venv() {
  local extras=$1 stamp="$venv/.attyguard-stamp"
  local want
  want="$extras $(sha256sum pyproject.toml | cut -c1-16)"
  if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
  fi
  # A venv set up with more extras (dev.sh test's) serves fewer (dev.sh shell's):
  # no reinstall when switching between the two.
  local have hash_ok=1 extra
  have=$(cat "$stamp" 2>/dev/null || true)
  [ "${have##* }" = "${want##* }" ] || hash_ok=0
  for extra in ${extras//,/ }; do
    [[ ",${have%% *}," == *",$extra,"* ]] || hash_ok=0
  done
  if [ "$hash_ok" != 1 ]; then
    "$venv/bin/python" -m pip install -q --upgrade pip >&2
    "$venv/bin/python" -m pip install -q -e ".[$extras]" >&2
    echo "$want" >"$stamp"
  fi
}

# The kernel layer's fanotify answering helper (attyguard/kernel/fanswer.c) is
# native code: built here, for this machine, when missing or stale. A failure
# is not fatal: the layer then answers from Python and says so (daemon --probe).
need_helper() {
  "$venv/bin/python" -c 'import sys; from attyguard.kernel import build; sys.exit(build.helper_stale_reason() is not None)' 2>/dev/null \
    || "$venv/bin/python" -m attyguard.kernel.build --helper >/dev/null \
    || echo "dev.sh: warning: the fanotify answering helper was not built; the kernel layer answers from Python" >&2
}

cmd=${1:-shell}
shift || true
case $cmd in
  shell)
    need_venv onnx
    need_helper
    # README's `attyguard check …` works inside the shell too.
    export PATH="$venv/bin:$PATH"
    exec "$venv/bin/attyguard" "$@"
    ;;
  test)
    need_apt
    need_venv dev,onnx,train
    need_helper
    export PATH="$venv/bin:$PATH"
    echo "== ruff" && ruff check attyguard tests bench
    echo "== mypy" && mypy attyguard
    echo "== pytest"
    exec python -m pytest "$@"
    ;;
  *)
    echo "usage: contrib/dev.sh shell [ARGS…] | test [PYTEST ARGS…]" >&2
    exit 2
    ;;
esac
