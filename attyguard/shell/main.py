"""`attyguard [bash options] [-c CMD | FILE] [args…]`: the shell's entry point.

With a terminal and nothing to run, the interactive guarded shell. Otherwise
(-c, a script, commands on a non-tty stdin) the line is classified and bash
is exec'd to run it, so scp, rsync, `ssh host CMD` and editors see bash's own
exit status, stdin and signals. This module imports neither prompt_toolkit
nor rich: those paths must stay light.
"""

from __future__ import annotations

import os
import sys

from attyguard.shell.args import ShellArgs, parse_args

__all__ = ["is_interactive", "main"]


def is_interactive(args: ShellArgs, stdin_tty: bool, stderr_tty: bool) -> bool:
    """bash's rule: -i, or nothing to run and both stdin and stderr are terminals."""
    if args.command is not None or args.file is not None:
        return False
    return args.force_interactive or (stdin_tty and stderr_tty)


def _login_from_context(argv0: str) -> bool:
    # login(1)/sshd mark a login shell with a leading "-" in argv[0]; behind a
    # Python console-script launcher that argv[0] is lost, so also look at who
    # started us.
    if os.path.basename(argv0).startswith("-"):
        return True
    try:
        with open(f"/proc/{os.getppid()}/comm", encoding="utf-8") as f:
            parent = f.read().strip()
    except OSError:
        return False
    return parent in ("sshd", "sshd-session", "login")


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if args.error:
        print(f"attyguard: {args.error}", file=sys.stderr)
        return 2
    if not is_interactive(args, os.isatty(0), os.isatty(2)):
        from attyguard.shell.noninteractive import run_noninteractive

        return run_noninteractive(args, argv)
    login = args.login or _login_from_context(sys.argv[0] if sys.argv else "")
    from attyguard.shell.session import run_interactive

    return run_interactive(login=login, norc=args.norc, noprofile=args.noprofile)
