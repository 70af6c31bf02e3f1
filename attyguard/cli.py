"""Entry point: route `attyguard …` to a subcommand or to the shell.

Kept tiny and import-free on purpose: as a login shell attyguard must reach
its first prompt fast, so each route imports only what it needs. A first
argument that names a subcommand selects it; anything else is the shell's
bash-compatible command line (`-c CMD`, `-l`, `FILE args…`, …). A script that
happens to be called `check` is run as `./check`, as with any shell builtin.
"""

from __future__ import annotations

import sys

__all__ = ["SUBCOMMANDS", "main"]

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


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
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
