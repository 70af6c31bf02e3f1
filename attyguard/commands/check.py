"""`attyguard check`: the verdict for one command line, or for JSON lines.

    attyguard check [--json] [--no-daemon | --daemon SOCKET] [--no-trust] -- CMD…
    attyguard check --batch [--no-daemon | --daemon SOCKET] [--no-trust] < in.jsonl

The decision is the same `Guard` the shell uses (trust → daemon → engine),
so `check` answers what the shell would do. Two differences, both because a
check is a question and not a command being run: a trust hit is looked up
without counting as a use, and a daemon Block does not mark this process
Critical.

Exit statuses (docs/cli.md): 0 allow, 1 warn, 2 block, 3 error. `--batch`
exits 0 when every line got a verdict and 3 when any line was an error.
The batch path never imports rich.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import replace
from typing import IO, TYPE_CHECKING, Any

from attyguard.commands._util import EXIT_ERROR, CommandError, Parser, run_command

if TYPE_CHECKING:
    from attyguard.engine.verdict import Verdict
    from attyguard.guard import Guard
    from attyguard.trust import TrustStore

__all__ = ["EXIT_ALLOW", "EXIT_BLOCK", "EXIT_WARN", "MAX_BATCH_LINE", "main"]

EXIT_ALLOW = 0
EXIT_WARN = 1
EXIT_BLOCK = 2
# A JSONL input line longer than this is answered with an error and skipped
# without being held in memory (a history file can hold anything).
MAX_BATCH_LINE = 1 << 20


def main(argv: list[str]) -> int:
    return run_command("check", _main, argv)


def _parser() -> Parser:
    parser = Parser(
        prog="attyguard check",
        description="Print the verdict attyguard would give a command line. "
        "The words after -- are joined with single spaces (like ssh); quote the whole "
        "line to keep its own quoting.",
        epilog="exit status: 0 allow, 1 warn, 2 block, 3 error",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--batch", action="store_true",
                        help='read JSON lines {"id": …, "cmd": …} on stdin, write one JSON '
                        "verdict per line")
    daemon = parser.add_mutually_exclusive_group()
    daemon.add_argument("--no-daemon", action="store_true",
                        help="in-process verdict only, even if a daemon is configured")
    daemon.add_argument("--daemon", metavar="SOCKET",
                        help="ask the daemon on this socket (default: guard.daemon_socket_path)")
    parser.add_argument("--no-trust", action="store_true",
                        help="ignore the trust store")
    parser.add_argument("cmd", nargs="*", metavar="CMD", help="the command line (after --)")
    return parser


def _main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    if args.batch and args.cmd:
        raise CommandError("--batch reads the command lines from stdin; give no CMD")
    if args.batch and args.json:
        raise CommandError("--batch always writes JSON; --json is for one command line")
    if not args.batch:
        if not args.cmd:
            raise CommandError("no command line given (attyguard check -- CMD…)")
        line = " ".join(args.cmd)
        if not line.strip():
            raise CommandError("the command line is empty")
    guard, store = _build_guard(no_daemon=args.no_daemon, socket=args.daemon,
                                no_trust=args.no_trust)
    try:
        if args.batch:
            return run_batch(guard.decide, sys.stdin.buffer, sys.stdout.buffer)
        verdict = _decide(guard, store, line)
        if args.json:
            sys.stdout.write(json.dumps(verdict.to_json()) + "\n")
        else:
            _print_human(line, verdict)
        return _status(verdict)
    finally:
        if store is not None:
            store.close()


def _status(verdict: Verdict) -> int:
    return {"allow": EXIT_ALLOW, "warn": EXIT_WARN, "block": EXIT_BLOCK}[verdict.action.value]


def _warn(text: str) -> None:
    sys.stderr.write(text.rstrip("\n") + "\n")


def _build_guard(*, no_daemon: bool, socket: str | None,
                 no_trust: bool) -> tuple[Guard, TrustStore | None]:
    """The shell's Guard (shell/wiring.py), built as a question: see `build_guard`."""
    from attyguard.config import load_config
    from attyguard.shell.wiring import build_guard

    config, errors = load_config()
    for error in errors:
        _warn(f"attyguard: {error}")
    wired = build_guard(config, question=True, trust=not no_trust, daemon=not no_daemon,
                        daemon_socket=socket)
    for note in wired.warnings:
        _warn(f"attyguard: {note}")
    return wired.guard, wired.store


def _decide(guard: Guard, store: TrustStore | None, line: str) -> Verdict:
    from attyguard.engine.verdict import Source

    verdict = guard.decide(line)
    if verdict.source is not Source.TRUST:
        # The files the line hands to a shell, as they are here and now (judged only).
        import os

        from attyguard.filejudge import judge_files

        files = judge_files(line, guard.engine, snapshots=None, cwd=os.getcwd(),
                            home=os.path.expanduser("~"), search_path=os.environ.get("PATH", ""),
                            trusted=guard.trust.lookup if guard.trust is not None else None)
        verdict = files.combine(verdict)
    if verdict.source is Source.TRUST and store is not None:
        entry = store.get(line)
        if entry is not None:
            from attyguard.trust import iso_time

            overrides = ", ".join(entry.rule_ids) or "no rule"
            note = f"trusted since {iso_time(entry.created)} (overrides {overrides})"
            verdict = replace(verdict, notes=(*verdict.notes, note))
    return verdict


# ---------------------------------------------------------------------------
# --batch


def run_batch(decide: Callable[[str], Verdict], inp: IO[bytes], out: IO[bytes]) -> int:
    """JSON lines in, one JSON verdict per non-blank line out, in order.

    Every output object echoes the input's `id` (null when absent) and its
    1-based `line` number; a line that cannot be judged yields
    `{"id", "line", "error"}` and processing continues.
    """
    status = 0
    number = 0
    while True:
        raw = inp.readline(MAX_BATCH_LINE + 1)
        if not raw:
            break
        number += 1
        if len(raw) > MAX_BATCH_LINE and not raw.endswith(b"\n"):
            _drain_line(inp)
            result: dict[str, Any] = {"id": None, "line": number,
                                      "error": f"line longer than {MAX_BATCH_LINE} bytes"}
        else:
            stripped = raw.strip()
            if not stripped:
                continue  # blank lines (e.g. a trailing one) are not requests
            result = _batch_one(decide, stripped, number)
        if "error" in result:
            status = EXIT_ERROR
        out.write(json.dumps(result).encode("ascii") + b"\n")
        out.flush()  # a coprocess writing one line and waiting gets its answer now
    return status


def _drain_line(inp: IO[bytes]) -> None:
    while True:
        chunk = inp.readline(1 << 16)
        if not chunk or chunk.endswith(b"\n"):
            return


def _batch_one(decide: Callable[[str], Verdict], raw: bytes, number: int) -> dict[str, Any]:
    def error(message: str, ident: Any = None) -> dict[str, Any]:
        return {"id": ident, "line": number, "error": message}

    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return error(f"not valid UTF-8 at byte {exc.start}")
    try:
        obj = json.loads(text, parse_constant=_no_constant)
    except ValueError as exc:
        return error(f"not JSON: {exc}")
    if not isinstance(obj, dict):
        return error("not a JSON object")
    ident = obj.get("id")
    cmd = obj.get("cmd")
    if not isinstance(cmd, str):
        return error('"cmd" must be a string', ident)
    if "\x00" in cmd:
        return error('"cmd" contains a NUL character', ident)
    if _has_lone_surrogate(cmd):
        return error('"cmd" contains an unpaired surrogate (not text)', ident)
    try:
        verdict = decide(cmd)
    except Exception as exc:  # the engine promises never to raise; if it does, say so
        return error(f"internal error: {type(exc).__name__}: {exc}", ident)
    return {"id": ident, "line": number, **verdict.to_json()}


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _has_lone_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


# ---------------------------------------------------------------------------
# Human output


_ACTION_STYLE = {"allow": "bold green", "warn": "bold yellow", "block": "bold red"}
_SEVERITY_STYLE = {"LOW": "cyan", "MEDIUM": "yellow", "HIGH": "red", "CRITICAL": "bold red"}


def _print_human(line: str, verdict: Verdict) -> None:
    from rich.console import Console
    from rich.text import Text

    from attyguard.trust import visible

    console = Console(highlight=False, soft_wrap=True)
    head = Text()
    head.append(f" {verdict.action.value.upper()} ", style="reverse " +
                _ACTION_STYLE[verdict.action.value])
    trusted = verdict.source.value == "trust"
    head.append("  trusted by you" if trusted else f"  {verdict.reason}")
    console.print(head)
    meta = f"source {verdict.source.value} · {verdict.elapsed_us} µs"
    if verdict.rules:
        meta += f" · p={verdict.probability:.2f}"
    console.print(Text(meta, style="dim"))

    # The line, control characters made visible, every matched span underlined.
    shown = Text("  ")
    marked = [hit.span for hit in verdict.rules if hit.span is not None]
    for index, ch in enumerate(line):
        inside = any(start <= index < end for start, end in marked)
        shown.append(visible(ch), style="bold underline magenta" if inside else "")
    console.print(shown)

    for hit in verdict.rules:
        console.print()
        title = Text("  ")
        title.append(hit.rule_id, style="bold")
        title.append(" ")
        title.append(f"[{hit.severity.name}]", style=_SEVERITY_STYLE.get(hit.severity.name, ""))
        title.append(f" {hit.action.value} · {hit.title}")
        console.print(title)
        if hit.span is not None:
            start, end = hit.span
            console.print(Text(f"    matched: {''.join(map(visible, line[start:end]))}"
                               f"  (chars {start}–{end})"))
        elif hit.matched:
            console.print(Text(f"    matched: {''.join(map(visible, hit.matched))}"))
        if hit.explanation:
            console.print(Text(f"    why: {hit.explanation}"))
        if hit.remediation:
            console.print(Text(f"    instead: {hit.remediation}", style="green"))
    for note in verdict.notes:
        console.print(Text(f"  note: {note}", style="dim"))
