#!/usr/bin/env bash
# Install (or remove) attyguard system-wide, with its daemon as a systemd service.
#
#   sudo contrib/install.sh [--wheel FILE] [--onnx] [--login-shell] [--no-start] [--root DIR]
#   sudo contrib/install.sh --uninstall [--purge] [--root DIR]
#
# What it does, idempotently (running it twice changes nothing the second time
# except refreshing the installed code):
#   - creates the system group `atty` (members may talk to the daemon's socket);
#   - installs attyguard into its own virtual environment /opt/attyguard/venv
#     (pip, from the source tree this script sits in, or from --wheel FILE); with
#     --onnx also the `onnx` extra (onnxruntime), needed for `tier2 = "onnx"`;
#   - makes /usr/local/bin/attyguard the login launcher (contrib/login-launcher.c,
#     compiled here) that runs the venv's attyguard: login(1) and sshd mark a
#     login shell only by a '-' in argv[0], which pip's #! script never sees.
#     Without a working C compiler it is a symlink instead, with a warning;
#   - installs /etc/systemd/system/attyguard.service and, if missing, the default
#     config /etc/attyguard/attyguard.toml (an existing one is never overwritten);
#   - enables and (re)starts the service when systemd is running (/run/systemd/system);
#   - with --login-shell, lists /usr/local/bin/attyguard in /etc/shells (for chsh).
# The daemon runs as root with a cut-down capability set and group atty; see the
# comment at the top of contrib/attyguard.service for why not a separate user.
#
# --uninstall reverses all of it but keeps /etc/attyguard (and the group) unless
# --purge is given. It refuses while a user still has attyguard as login shell.
#
# --root DIR prefixes every path (and edits DIR/etc/group, DIR/etc/shells) and
# never touches systemd: it exists so the tests can check files, owners and
# modes in a scratch directory. Environment for tests and packagers:
#   ATTYGUARD_PYTHON    interpreter that creates the venv (default: /usr/bin/python3 if >= 3.11, else python3)
#   ATTYGUARD_PIP_ARGS  extra pip arguments (e.g. "--no-deps", "--no-index --find-links DIR")
#   CC                  C compiler for the login launcher (default: cc)
#
# Exit status: 0 done, 1 failed (one line on stderr says why), 2 bad usage.
set -euo pipefail

prog=install.sh
die() { echo "$prog: $*" >&2; exit 1; }
usage_error() { echo "$prog: $*" >&2; echo "usage: $prog [--root DIR] [--wheel FILE] [--onnx] [--login-shell] [--no-start] [--uninstall [--purge]]" >&2; exit 2; }
say() { echo "$prog: $*"; }

root=""
wheel=""
build_dir=""
extras=""
uninstall=0
purge=0
login_shell=0
start=1
while (($#)); do
  case $1 in
    --root) [ $# -ge 2 ] || usage_error "--root needs a directory"; root=${2%/}; shift 2 ;;
    --root=*) root=${1#--root=}; root=${root%/}; shift ;;
    --wheel) [ $# -ge 2 ] || usage_error "--wheel needs a file"; wheel=$2; shift 2 ;;
    --wheel=*) wheel=${1#--wheel=}; shift ;;
    --uninstall) uninstall=1; shift ;;
    --purge) purge=1; shift ;;
    --login-shell) login_shell=1; shift ;;
    --onnx) extras="[onnx]"; shift ;;
    --no-start) start=0; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) usage_error "unknown argument: $1" ;;
  esac
done
if ((purge)) && ! ((uninstall)); then usage_error "--purge only goes with --uninstall"; fi
if [ -n "$root" ]; then
  [ -d "$root" ] || usage_error "--root $root: not a directory"
  root=$(cd "$root" && pwd)
fi
if [ -n "$wheel" ]; then
  [ -f "$wheel" ] || die "--wheel $wheel: no such file"
  wheel=$(cd "$(dirname "$wheel")" && pwd)/$(basename "$wheel")
fi
[ "$(id -u)" -eq 0 ] || die "must run as root (it creates a system group and writes /opt, /etc, /usr/local)"

# Paths as the installed system sees them, and where this run writes them.
GROUP=atty
OPT=/opt/attyguard
VENV=$OPT/venv
LINK=/usr/local/bin/attyguard
UNIT=/etc/systemd/system/attyguard.service
CONF_DIR=/etc/attyguard
CONF=$CONF_DIR/attyguard.toml
SHELLS=/etc/shells
here=$(cd "$(dirname "$0")" && pwd)
src=$(dirname "$here")

# Only a real root (no --root) with systemd running as PID 1 gets systemctl.
use_systemd=0
if [ -z "$root" ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
  use_systemd=1
fi

# The group, in the target's /etc/group. groupadd --prefix edits DIR/etc/group
# without chroot (so DIR needs no binaries), which is what --root requires.
# On the real system ask NSS (the group may come from LDAP/sssd), in --root the file.
group_gid() {
  if [ -z "$root" ]; then
    getent group "$GROUP" | cut -d: -f3
  else
    awk -F: -v g="$GROUP" '$1 == g { print $3; exit }' "$root/etc/group" 2>/dev/null
  fi
}
ensure_group() {
  if [ -n "$(group_gid)" ]; then return; fi
  local prefix=()
  [ -z "$root" ] || prefix=(--prefix "$root")
  groupadd --system "${prefix[@]}" "$GROUP" || die "cannot create group $GROUP"
  say "created system group $GROUP"
}

# Print the daemon's commented default config; fall back to a minimal one (with
# a warning) when the installed version cannot print it.
default_config() {
  local out
  if out=$("$root$VENV/bin/python" -m attyguard daemon --print-default-config 2>/dev/null) && [ -n "$out" ]; then
    printf '%s\n' "$out"
    return
  fi
  echo "$prog: warning: 'attyguard daemon --print-default-config' failed; writing a minimal config" >&2
  cat <<'EOF'
# attyguard daemon configuration (minimal; see `attyguard daemon --print-default-config`).
[daemon]
socket = "/run/attyguard/attyguard.sock"
group = "atty"
mode = "enforce"
tier2 = "stub"

[accumulator]
auto_block = false
block_threshold = 0.95
EOF
}

# The venv's interpreter runs every login of every account that uses
# attyguard as its shell, so it must be executable by all of them: a Python
# under /root (pyenv, the default python3 on some images) is not. Prefer the
# system's Python when it is new enough and has venv.
default_python() {
  local p
  for p in /usr/bin/python3 python3; do
    if command -v "$p" >/dev/null 2>&1 &&
      "$p" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      echo "$p"
      return
    fi
  done
  echo python3
}

install_code() {
  local python=${ATTYGUARD_PYTHON:-$(default_python)} pip_args=()
  # Word splitting is wanted: ATTYGUARD_PIP_ARGS holds several arguments.
  # shellcheck disable=SC2206
  [ -z "${ATTYGUARD_PIP_ARGS:-}" ] || pip_args=($ATTYGUARD_PIP_ARGS)
  install -d -m 0755 -o root -g root "$root$OPT"
  if [ ! -x "$root$VENV/bin/python" ]; then
    "$python" -m venv "$root$VENV" || die "cannot create the virtual environment $root$VENV (Debian: apt-get install python3-venv)"
  fi
  local what
  if [ -n "$wheel" ]; then
    [ -f "$wheel" ] || die "--wheel $wheel: no such file"
    what=$wheel
  else
    [ -f "$src/pyproject.toml" ] || die "no --wheel and $src is not an attyguard source tree"
    # Build the wheel once, then install that file (a directory would be built twice).
    build_dir=$(mktemp -d)
    trap 'rm -rf "$build_dir"' EXIT
    "$root$VENV/bin/python" -m pip wheel -q --disable-pip-version-check --no-deps "${pip_args[@]}" \
      -w "$build_dir" "$src" || die "pip could not build a wheel from $src"
    what=$(echo "$build_dir"/attyguard-*.whl)
    [ -f "$what" ] || die "pip built no attyguard wheel from $src"
  fi
  # --force-reinstall of attyguard alone: re-running refreshes the code even at
  # an unchanged version; then the dependencies, left alone when present.
  "$root$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps --force-reinstall \
    "${pip_args[@]}" "$what" || die "pip could not install $what"
  "$root$VENV/bin/python" -m pip install -q --disable-pip-version-check "${pip_args[@]}" "$what$extras" \
    || die "pip could not install the dependencies of $what$extras"
  say "installed attyguard in $VENV"
}

# The kernel layer's fanotify answering helper (attyguard/kernel/fanswer.c): native
# code for this machine, built into the installed package. Not fatal: without it
# the layer answers from Python, slower, and `attyguard daemon --probe` says so.
install_helper() {
  local err
  if ! command -v "${CC:-cc}" >/dev/null; then
    # install_entry warns about the missing compiler once; this is what it costs here
    say "fanotify answering helper not built (no C compiler): the kernel layer will answer from Python"
    return
  fi
  if err=$("$root$VENV/bin/python" -m attyguard.kernel.build --helper 2>&1 >/dev/null); then
    say "built the fanotify answering helper"
  else
    echo "$prog: warning: ${err:-the fanotify answering helper was not built}; the kernel layer will answer from Python" >&2
  fi
}

# /usr/local/bin/attyguard: the compiled login launcher, or (no compiler) a symlink.
# The launcher has the final paths ($VENV, not $root$VENV) baked in.
install_entry() {
  install -d -m 0755 "$root$(dirname "$LINK")"
  local cc=${CC:-cc} why err
  if ! command -v "$cc" >/dev/null; then
    why="no C compiler ($cc)"
  elif ! err=$(bash "$here/build-launcher.sh" "$root$LINK" "$root$VENV" "$VENV" 2>&1); then
    why="cannot build the login launcher: $(printf '%s\n' "$err" | head -n 1)"
  else
    say "installed $LINK (login launcher for $VENV/bin/attyguard)"
    return
  fi
  ln -sfn "$VENV/bin/attyguard" "$root$LINK"
  echo "$prog: warning: $why; linked $LINK instead, which cannot tell a login shell: as one it needs '-l' (install gcc and re-run to fix)" >&2
}

# Ours: our symlink, or a launcher with our venv's path baked in.
is_our_entry() {
  if [ -L "$root$LINK" ]; then
    [ "$(readlink "$root$LINK")" = "$VENV/bin/attyguard" ]
  else
    [ -f "$root$LINK" ] && grep -qaF -- "$VENV/bin/attyguard" "$root$LINK"
  fi
}

install_unit_and_config() {
  install -d -m 0755 "$root$(dirname "$UNIT")"
  install -m 0644 -o root -g root "$here/attyguard.service" "$root$UNIT"
  install -d -m 0755 -o root -g root "$root$CONF_DIR"
  if [ -e "$root$CONF" ]; then
    say "kept existing $CONF"
  else
    local tmp
    tmp=$(mktemp "$root$CONF_DIR/.attyguard.toml.XXXXXX")
    default_config >"$tmp"
    chmod 0644 "$tmp"
    mv -f "$tmp" "$root$CONF"
    say "wrote default config $CONF"
  fi
}

add_login_shell() {
  touch "$root$SHELLS"
  if ! grep -qxF "$LINK" "$root$SHELLS"; then
    echo "$LINK" >>"$root$SHELLS"
    say "added $LINK to $SHELLS (users may now: chsh -s $LINK)"
  fi
}

start_service() {
  if ((use_systemd)); then
    systemctl daemon-reload
    systemctl enable attyguard.service >/dev/null 2>&1 || die "systemctl enable attyguard failed"
    if ((start)); then
      # restart, not start: a re-run must pick up the code just installed.
      systemctl restart attyguard.service || die "attyguard.service did not start: journalctl -u attyguard"
      say "attyguard.service enabled and running"
    else
      say "attyguard.service enabled (not started: --no-start)"
    fi
  else
    say "systemd is not running here: unit installed but not started (run 'attyguard daemon' yourself)"
  fi
}

do_install() {
  ensure_group
  install_code
  install_helper
  install_entry
  install_unit_and_config
  if ((login_shell)); then add_login_shell; fi
  start_service
  local who=${SUDO_USER:-\$USER}
  say "to use the daemon from a shell, join group $GROUP: sudo usermod -aG $GROUP $who"
  say "  (then log out and back in, or run 'newgrp $GROUP' for one shell)"
}

do_uninstall() {
  # A user whose login shell disappears can no longer log in: refuse.
  local users
  users=$(awk -F: -v s="$LINK" -v t="$VENV/bin/attyguard" '$7 == s || $7 == t { print $1 }' "$root/etc/passwd" 2>/dev/null | paste -sd, -)
  [ -z "$users" ] || die "users still have attyguard as login shell: $users (chsh -s /bin/bash USER first)"
  if ((use_systemd)); then
    systemctl disable --now attyguard.service >/dev/null 2>&1 || true
  fi
  rm -f "$root$UNIT"
  if ((use_systemd)); then systemctl daemon-reload; fi
  if is_our_entry; then
    rm -f "$root$LINK"
  fi
  rm -rf "$root$OPT"
  if [ -f "$root$SHELLS" ] && grep -qxF "$LINK" "$root$SHELLS"; then
    local tmp
    tmp=$(mktemp "$root$SHELLS.XXXXXX")
    grep -vxF "$LINK" "$root$SHELLS" >"$tmp" || true
    chmod 0644 "$tmp"
    mv -f "$tmp" "$root$SHELLS"
  fi
  if ((purge)); then
    rm -rf "$root$CONF_DIR"
    if [ -n "$(group_gid)" ]; then
      local prefix=()
      [ -z "$root" ] || prefix=(--prefix "$root")
      groupdel "${prefix[@]}" "$GROUP" || die "cannot delete group $GROUP"
    fi
    say "removed attyguard, its config and group $GROUP"
  else
    say "removed attyguard (kept $CONF_DIR and group $GROUP; --purge removes them)"
  fi
}

if ((uninstall)); then do_uninstall; else do_install; fi
