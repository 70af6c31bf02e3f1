"""-c, scripts and piped stdin: classify, then exec bash (no prompt, no UI).

A block verdict prints one line on stderr and exits 126 without running
anything; a warn verdict prints one line and runs (config
shell.noninteractive_warn = "refuse" makes it exit 126). A classifier that
cannot be imported or whose rules cannot be loaded also exits 126 with one
line (fail closed: nobody is there to confirm). Then bash replaces this
process, so exit status, stdin and signals are bash's own.
"""

from __future__ import annotations

import os
import sys

from attyguard.shell.args import ShellArgs

__all__ = ["run_noninteractive"]

_MAX_SCRIPT = 4 * 1024 * 1024  # what we read to classify a script or piped stdin


def _bash() -> str:
    return "/bin/bash" if os.path.exists("/bin/bash") else "bash"


def _read_stdin_to_memfd() -> tuple[str, int]:
    """All of stdin, and an fd to hand bash the same bytes as its stdin."""
    chunks = []
    while True:
        try:
            chunk = os.read(0, 65536)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    data = b"".join(chunks)
    fd = os.memfd_create("attyguard-stdin", 0)
    os.write(fd, data)
    os.lseek(fd, 0, os.SEEK_SET)
    return data.decode("utf-8", "surrogateescape"), fd


def _unavailable(why: object) -> int:
    text = " ".join(str(why).split())[:300]
    print(f"attyguard: REFUSED — classifier unavailable ({text}); nothing was run",
          file=sys.stderr)
    return 126


def run_noninteractive(args: ShellArgs, argv: list[str]) -> int:
    from attyguard.config import load_config
    from attyguard.shell.text import one_line

    config, errors = load_config()
    for error in errors:
        print(f"attyguard: config: {error}", file=sys.stderr)
    stdin_fd = None
    if args.command is not None:
        text = args.command
    elif args.file is not None:
        try:
            with open(args.file, "rb") as f:
                text = f.read(_MAX_SCRIPT).decode("utf-8", "surrogateescape")
        except OSError:
            text = ""  # bash reports the missing/unreadable file itself
    else:
        text, stdin_fd = _read_stdin_to_memfd()
    try:
        # Imports the engine (parser, rule model): a broken install fails here.
        from attyguard.engine.quick import UNAVAILABLE_RULE_ID
        from attyguard.engine.verdict import Action
        from attyguard.shell.wiring import build_guard

        wired = build_guard(config, quick=True)  # (clean lines: no engine import)
    except Exception as exc:
        return _unavailable(f"{type(exc).__name__}: {exc}")
    for note in wired.warnings:
        print(f"attyguard: {note}", file=sys.stderr)
    try:
        verdict = wired.guard.decide(text)
    except Exception as exc:  # the guard never raises by contract; be sure anyway
        print(f"attyguard: classifier failed: {exc}", file=sys.stderr)
        return 126
    finally:
        wired.close()
    unavailable = [h for h in verdict.rules if h.rule_id == UNAVAILABLE_RULE_ID]
    if unavailable:
        # The rules failed to load (the engine answers warn, for the interactive
        # shell's user to judge): with no user here, refuse rather than run unchecked.
        return _unavailable(unavailable[0].explanation)
    if verdict.action is Action.BLOCK:
        print(f"attyguard: REFUSED — {one_line(verdict.reason)}: {one_line(text, 120)}",
              file=sys.stderr)
        return 126
    if verdict.action is Action.WARN:
        if config.shell.noninteractive_warn == "refuse":
            print(f"attyguard: REFUSED (warn, non-interactive) — {one_line(verdict.reason)}",
                  file=sys.stderr)
            return 126
        print(f"attyguard: warning — {one_line(verdict.reason)}", file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    if stdin_fd is not None:
        os.dup2(stdin_fd, 0)
        os.close(stdin_fd)
    bash = _bash()
    try:
        os.execvp(bash, [bash, *argv])
    except OSError as exc:
        print(f"attyguard: cannot run bash: {exc.strerror}", file=sys.stderr)
        return 127
    return 127  # not reached
