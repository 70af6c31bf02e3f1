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


def _login_from_context(argv0: str, parent: str, environ: dict[str, str]) -> bool:
    """Was this shell started as a login shell?

    login(1), sshd, `su -` and `sudo -i` say so with a leading "-" in argv[0],
    but behind a Python console-script launcher that argv[0] is lost. So also
    look at who started us: sshd and login only start login shells; su and
    sudo clear the environment (no SHLVL) exactly when they start one.
    """
    if os.path.basename(argv0).startswith("-"):
        return True
    if parent in ("sshd", "sshd-session", "login"):
        return True
    return parent in ("su", "sudo") and "SHLVL" not in environ


def _parent_name() -> str:
    try:
        with open(f"/proc/{os.getppid()}/comm", encoding="utf-8") as f:
            return f.read().strip()
    except OSError:
        return ""


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if args.error:
        print(f"attyguard: {args.error}", file=sys.stderr)
        return 2
    # What start-up imports and builds lives until bash replaces this process (non-interactive)
    # or as long as the shell (interactive: startup.py turns the collector back on once the
    # first prompt is drawn); the cyclic collector would walk it again and again while it is
    # made. Less CPU for the imports of both modes (bench/README.md, "Figures behind the
    # code"). A non-interactive run keeps it off: it execs bash or exits once its bounded
    # analysis is done.
    import gc

    gc.disable()
    # The UI needs a terminal: `-i` with commands piped in is bash's business.
    if not is_interactive(args, os.isatty(0), os.isatty(2)) or not os.isatty(0):
        from attyguard.shell.noninteractive import run_noninteractive

        return run_noninteractive(args, argv)
    login = args.login or _login_from_context(sys.argv[0] if sys.argv else "", _parent_name(),
                                              dict(os.environ))
    # bash first, before attyguard's own modules: its rc files (bash-completion,
    # version managers…) run while the ≈45 ms of imports up to the session and
    # the front end's ≈120 ms more happen here.
    from attyguard.shell.spawn import (
        clean_up_on_signals,
        ignore_terminal_signals,
        interactive_env,
        shellrc_dir,
        start_bash,
        terminal_size,
    )

    started = start_bash(shellrc_dir(), login=login, size=terminal_size(0),
                         env=interactive_env(norc=args.norc, noprofile=args.noprofile),
                         rc_judge=True)
    ignore_terminal_signals()
    # bash waits for the verdict on its rc files (attyguard/rcjudge.py).
    from attyguard.rcjudge import start_rc_judge

    rc = start_rc_judge(started.session_dir, login=login, norc=args.norc,
                        noprofile=args.noprofile)
    clean_up_on_signals(started)
    # (the collector is off since the top: start-up creates ~43,000 objects
    # that live as long as the shell, its front end, layout and key bindings)
    from attyguard.shell.startup import run_interactive

    try:
        return run_interactive(login=login, norc=args.norc, noprofile=args.noprofile,
                               started=started)
    finally:
        rc.close()
