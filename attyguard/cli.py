"""Entry point: route `attyguard …` to a subcommand or to the shell.

Kept tiny and import-free on purpose: as a login shell attyguard must reach
its first prompt fast, so each route imports only what it needs. A first
argument that names a subcommand selects it; anything else is the shell's
bash-compatible command line (`-c CMD`, `-l`, `FILE args…`, …). A script that
happens to be called `check` is run as `./check`, as with any shell builtin.
"""

from __future__ import annotations

import sys

__all__ = ["SUBCOMMANDS", "USAGE", "main"]

# name -> module with a `main(argv: list[str]) -> int`
SUBCOMMANDS = {
    "check": "attyguard.commands.check",
    "trust": "attyguard.commands.trust",
    "rules": "attyguard.commands.rules",
    "daemon": "attyguard.daemon.server",
    "policy": "attyguard.commands.policy",
    "events": "attyguard.commands.kernel",
    "audit": "attyguard.commands.audit",
    "feeds": "attyguard.commands.feeds",
}


USAGE = """\
usage: attyguard [bash options] [-c COMMAND [NAME ARGS…] | FILE [ARGS…]]
       attyguard SUBCOMMAND [--help]

A guarded bash: every command line is classified before bash runs it.
Without a command or file, on a terminal: the interactive shell.

shell options (as bash's):
  -c COMMAND      classify COMMAND, then run it with bash
  -l, --login     a login shell (reads /etc/profile and ~/.bash_profile…)
  -i              interactive
  -s              read commands from standard input
  --norc          do not read ~/.bashrc
  --noprofile     do not read /etc/profile nor ~/.bash_profile…
  other bash options are passed on to bash

subcommands (each takes --help):
  check LINE…     classify lines and print the verdict
  trust …         list, add and remove trusted lines
  rules …         list, explain and test the detection rules
  daemon          run the root sidecar daemon; `daemon status`, `daemon --probe`,
                  `daemon clear [--pid P]` (lifts a lock)
  events …        the daemon's recent exec decisions and kernel events (--follow, --json)
  policy …        SEC-002 runtime policies: check, status, violations, mode, run
  audit verify    check the daemon's hash-chained audit log
  feeds …         Sigma and GTFOBins feeds: update, status

  help, -h, --help   this text;   -V, --version   the version
"""


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args in (["--help"], ["-h"], ["help"]):
        sys.stdout.write(USAGE)
        return 0
    if args and args[0] in SUBCOMMANDS:
        import importlib

        module = importlib.import_module(SUBCOMMANDS[args[0]])
        return int(module.main(args[1:]))
    if args and args[0] in ("--version", "-V"):
        from attyguard import __version__

        print(f"attyguard {__version__}")
        return 0
    from attyguard.shell.main import main as shell_main

    return int(shell_main(args))
