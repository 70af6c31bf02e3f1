#!/usr/bin/env bash
# Build the login launcher (see login-launcher.c for why it exists).
#   contrib/build-launcher.sh OUT VENV_DIR
# OUT becomes a binary that runs VENV_DIR/bin/attyguard, adding -l when
# started as a login shell (argv[0] beginning with '-').
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 OUT VENV_DIR" >&2; exit 2; }
out=$1
venv=$(cd "$2" && pwd)
src=$(cd "$(dirname "$0")" && pwd)/login-launcher.c
cc=${CC:-cc}
command -v "$cc" >/dev/null || { echo "build-launcher: no C compiler ($cc)" >&2; exit 1; }
tmp=$(mktemp "${out}.XXXXXX")
trap 'rm -f "$tmp"' EXIT
"$cc" -O2 -Wall -Wextra -Werror \
  -DATTYGUARD_PYTHON="\"$venv/bin/python\"" \
  -DATTYGUARD_SCRIPT="\"$venv/bin/attyguard\"" \
  -o "$tmp" "$src"
chmod 0755 "$tmp"
mv -f "$tmp" "$out"
trap - EXIT
