"""Quiet where people live: false positives on everyday lines that use the shell's state.

A live bash (attyguard's hooks, a real pty) is set up the way people's shells
are: a Python venv activated, a version manager in the style of nvm, a
direnv-style PROMPT_COMMAND hook, a starship-style prompt (DEBUG trap and
PROMPT_COMMAND), ordinary aliases, arrays and exported variables. Each line of
LINES is then judged the way the interactive shell judges it: the names it
uses are fetched from that bash (shell/state.py) and the engine classifies
the line with them. Nothing is run.

Usage:
  python bench/state_quiet.py            # the table below
  python bench/state_quiet.py --dev      # also the benign lines of ../shared/eval/dev

Prints the false-positive figure (warn or block on a line that should be
allowed), with state and without, and the round trips it took. Never asserts
(tests/test_shell_quiet.py asserts the table).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from attyguard.engine.classify import classify  # noqa: E402
from attyguard.engine.verdict import Action  # noqa: E402
from attyguard.resources import data_path  # noqa: E402
from attyguard.shell.bash import BashChild  # noqa: E402
from attyguard.shell.state import Needs, build_state, encode_request, parse_names  # noqa: E402

# Written for this table (in the shape of the tools named, not their code).
RC = r"""
PS1='[\w]$ '
HISTFILE=
# (the rc is read from a temporary directory; people's homes are not under /tmp)
export HOME=/home/ag-quiet
# a version manager in the style of nvm: a large function and PATH edits
export NVM_DIR="$HOME/.nvm"
nvm() {
  local cmd=$1; shift
  case $cmd in
    use) export NVM_BIN="$NVM_DIR/versions/node/v$1/bin"; PATH="$NVM_BIN:$PATH" ;;
    ls) command ls "$NVM_DIR/versions/node" 2>/dev/null ;;
    current) echo "${NVM_BIN:-system}" ;;
    *) echo "nvm: unknown command $cmd" >&2; return 1 ;;
  esac
}
# a direnv-style hook: PROMPT_COMMAND evaluates what a tool prints
_envrc_hook() {
  local previous_exit_status=$?
  trap -- '' SIGINT
  if command -v direnv >/dev/null; then eval "$(direnv export bash)"; fi
  trap - SIGINT
  return $previous_exit_status
}
PROMPT_COMMAND="_envrc_hook${PROMPT_COMMAND:+;$PROMPT_COMMAND}"
# a starship-style prompt: a DEBUG trap before commands, PROMPT_COMMAND after
prompt_preexec() { PROMPT_START_TIME=$SECONDS; : "$1"; }
prompt_precmd() {
  PROMPT_STATUS=$?
  PROMPT_DURATION=$((SECONDS - ${PROMPT_START_TIME:-$SECONDS}))
  unset PROMPT_START_TIME
}
trap 'prompt_preexec "$_"' DEBUG
PROMPT_COMMAND="prompt_precmd;$PROMPT_COMMAND"
alias ll='ls -alF' la='ls -A' l='ls -CF' gs='git status' gd='git diff' gl='git log --oneline'
alias ..='cd ..' grep='grep --color=auto' k=kubectl dc='docker compose' py=python3
export EDITOR=vim PAGER=less
PROJECTS=$HOME/src
declare -a HOSTS=(web1 web2 db1)
declare -A PORTS=([web]=8080 [db]=5432)
greet() { printf 'hello %s\n' "${1:-$USER}"; }
"""

VENV = Path(sys.prefix)  # the venv running this: its bin/activate is a real one

LINES = [
    f"source {VENV}/bin/activate",
    f". {VENV}/bin/activate",
    "deactivate",
    "nvm use 20",
    "nvm ls",
    "nvm current",
    "ll",
    "la ~/src",
    "gs",
    "gd HEAD~1",
    "gl -n 5",
    "..",
    "cd $PROJECTS",
    "cd \"$PROJECTS\" && ls",
    "echo $PATH",
    "echo \"$VIRTUAL_ENV\"",
    "ls -la $HOME",
    "printf '%s\\n' \"${HOSTS[@]}\"",
    "for h in \"${HOSTS[@]}\"; do echo \"$h\"; done",
    "ssh ${HOSTS[0]} uptime",
    "curl -s localhost:${PORTS[web]}/health",
    "export PATH=\"$HOME/.local/bin:$PATH\"",
    "PS1='[\\w]$ '",
    "source ~/.bashrc",
    ". ~/.bashrc",
    "alias gco='git checkout'",
    "unalias gl",
    "type ll",
    "declare -f nvm",
    "trap -p",
    "greet",
    "greet world",
    "k get pods",
    "dc up -d",
    "grep -rn TODO $PROJECTS",
    "echo $((1 + ${#HOSTS[@]}))",
    "cd -",
    "history | tail",
    "$EDITOR notes.txt",
    "$PAGER README.md",
    "py -m pytest -q",
    "export PROMPT_COMMAND=\"prompt_precmd;$PROMPT_COMMAND\"",
    "trap 'prompt_preexec \"$_\"' DEBUG",
    "eval \"$(ssh-agent -s)\"",
    "exit 0",
]


def start(home: Path) -> BashChild:
    (home / ".bashrc").write_text(RC)
    (home / "src").mkdir(exist_ok=True)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home),
           "TERM": "xterm", "USER": os.environ.get("USER", "user")}
    child = BashChild.spawn(data_path("shellrc"), size=(24, 80), env=env)
    if not child.wait_ready(15):
        raise SystemExit("bench: bash did not come up")
    return child


def judge(child: BashChild, line: str) -> tuple[Action, Action, int]:
    """(verdict with the live state, verdict on the text alone, round trips)."""
    trips = 0

    def fetch(needs: Needs) -> tuple[str, ...] | None:
        nonlocal trips
        trips += 1
        return child.fetch_state(encode_request(needs))

    state = build_state(line, parse_names(child.names()), fetch)
    with_state = classify(line, state) if state else classify(line)
    return with_state.action, classify(line).action, trips


def report(name: str, child: BashChild, lines: list[str], show: bool) -> None:
    fp_state = fp_plain = trips = 0
    start_t = time.perf_counter()
    for line in lines:
        a_state, a_plain, n = judge(child, line)
        trips += n
        fp_state += a_state is not Action.ALLOW
        fp_plain += a_plain is not Action.ALLOW
        if show and a_state is not Action.ALLOW:
            print(f"  {a_state.value:5}  {line}")
    took = time.perf_counter() - start_t
    n = max(1, len(lines))
    print(f"{name}: {len(lines)} lines, false positives with state {fp_state} "
          f"({100 * fp_state / n:.2f}%), text alone {fp_plain} ({100 * fp_plain / n:.2f}%); "
          f"{trips} round trips; {1000 * took / n:.2f} ms/line")


def dev_benign() -> list[str]:
    for base in (Path("/work/shared/eval/dev"), REPO.parent / "shared" / "eval" / "dev",
                 REPO.parent.parent / "shared" / "eval" / "dev"):
        path = base / "benign.jsonl"
        if path.exists():
            rows = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
            return [r["cmd"] for r in rows if r.get("expect") == "allow"]
    return []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--dev", action="store_true", help="also ../shared/eval/dev benign")
    parser.add_argument("--show", action="store_true", help="list the lines not allowed")
    args = parser.parse_args()
    classify("true")  # (rules loaded before timing)
    with tempfile.TemporaryDirectory(prefix="ag-quiet-") as tmp:
        child = start(Path(tmp))
        try:
            report("everyday state-using lines", child, LINES, show=True)
            if args.dev:
                lines = dev_benign()
                if not lines:
                    print("dev corpus: not found")
                else:
                    report("dev benign (expect allow)", child, lines, show=args.show)
        finally:
            child.close()


if __name__ == "__main__":
    main()
