#!/usr/bin/env bash
# Build the login launcher (see login-launcher.c for why it exists).
#   contrib/build-launcher.sh OUT VENV_DIR [AS_DIR]
# OUT becomes a binary that runs VENV_DIR/bin/attyguard, adding -l when
# started as a login shell (argv[0] beginning with '-').
# AS_DIR (absolute) is the path baked in instead of VENV_DIR, for when the venv
# is built under a staging root (install.sh --root) but will run from AS_DIR.
# CC names the compiler (default: cc). Exit status: 0 built, 1 failed, 2 bad usage.
set -euo pipefail
[ $# -eq 2 ] || [ $# -eq 3 ] || { echo "usage: $0 OUT VENV_DIR [AS_DIR]" >&2; exit 2; }
out=$1
[ -d "$2" ] || { echo "build-launcher: $2: not a directory" >&2; exit 1; }
venv=$(cd "$2" && pwd)
baked=${3:-$venv}
baked=${baked%/}
case $baked in
  /*) ;;
  *) echo "build-launcher: $baked: AS_DIR must be an absolute path" >&2; exit 2 ;;
esac
# The path becomes a C string literal: refuse what would need escaping.
case $baked in
  *[\"\\]* | *[[:cntrl:]]*) echo "build-launcher: $baked: quotes, backslashes and control characters are not supported" >&2; exit 1 ;;
esac
src=$(cd "$(dirname "$0")" && pwd)/login-launcher.c
cc=${CC:-cc}
command -v "$cc" >/dev/null || { echo "build-launcher: no C compiler ($cc)" >&2; exit 1; }
tmp=$(mktemp "${out}.XXXXXX")
trap 'rm -f "$tmp"' EXIT
# -s: no symbol table, so the binary does not vary with where the source lies
# (install.sh's re-runs then leave it byte-identical).
"$cc" -O2 -s -Wall -Wextra -Werror \
  -DATTYGUARD_PYTHON="\"$baked/bin/python\"" \
  -DATTYGUARD_SCRIPT="\"$baked/bin/attyguard\"" \
  -o "$tmp" "$src"
chmod 0755 "$tmp"
mv -f "$tmp" "$out"
trap - EXIT
