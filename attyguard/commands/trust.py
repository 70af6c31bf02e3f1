"""`attyguard trust list | add | remove | clear | export | import`.

Managing the per-user trust store (attyguard.trust) from the command line.
The words after `--` are joined with single spaces, as `attyguard check`
does; quote the whole line to keep its quoting (the shell trusts the exact
line that was typed).

Exit statuses: 0 done, 1 nothing to remove, 3 error (bad usage or input, an
unusable store). JSON shapes are in docs/cli.md. Nothing here imports the
engine except `add` without `--rule` (to record which rules the trust
overrides), and rich only for human output.
"""

from __future__ import annotations

import json
import sys
import time
from typing import TYPE_CHECKING, Any

from attyguard.commands._util import (
    EXIT_NEGATIVE,
    EXIT_OK,
    CommandError,
    Parser,
    run_command,
    write_json,
)

if TYPE_CHECKING:
    import argparse

    from attyguard.trust import TrustStore

__all__ = ["MAX_IMPORT_BYTES", "main"]

MAX_IMPORT_BYTES = 64 << 20


def main(argv: list[str]) -> int:
    return run_command("trust", _main, argv)


def _parser() -> Parser:
    parser = Parser(prog="attyguard trust",
                    description="The per-user trust store: command lines you answered [t]rust.",
                    epilog="exit status: 0 done, 1 nothing to remove, 3 error")
    sub = parser.add_subparsers(dest="action", metavar="ACTION", parser_class=Parser)
    sub.required = True

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--json", action="store_true", help="print JSON")
        return p

    command("list", "list trusted command lines (previews have secrets redacted)")
    add = command("add", "trust a command line")
    add.add_argument("--rule", action="append", default=[], metavar="ID",
                     help="the rule id this trust overrides (repeatable; default: the rules "
                     "the engine matches now)")
    add.add_argument("--file", metavar="FILE",
                     help="trust a file's content (an rc file, a script too large or complex "
                     "to analyse); changing the file ends the trust")
    add.add_argument("cmd", nargs="*", metavar="CMD")
    remove = command("remove", "stop trusting a command line")
    remove.add_argument("--sha256", metavar="HEX",
                        help="remove by hash (a unique prefix of at least 8 digits, from list)")
    remove.add_argument("cmd", nargs="*", metavar="CMD")
    clear = command("clear", "remove every entry")
    clear.add_argument("--yes", action="store_true",
                       help="do not ask (required when stdin is not a terminal)")
    command("export", "write every entry as JSON to stdout (no full command lines)")
    imp = command("import", "merge entries exported earlier")
    imp.add_argument("file", metavar="FILE", help="a file written by export, or - for stdin")
    return parser


def _main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    preview: str | None = None
    if args.action == "add":
        if bool(args.cmd) == bool(args.file):
            raise CommandError("add takes either CMD… or --file FILE")
        if args.file:
            line, preview = _file_content(args.file)
        else:
            line = _line(args.cmd)
        rule_ids = tuple(args.rule) if args.rule else _rules_now(line)
    elif args.action == "remove" and bool(args.cmd) == bool(args.sha256):
        raise CommandError("remove takes either -- CMD… or --sha256 HEX")
    elif args.action == "import":
        rows = _read_import(args.file)  # before opening: bad input never touches the store
    store = _open()
    try:
        if args.action == "list":
            return _list(store, args.json)
        if args.action == "add":
            store.add(line, rule_ids, preview=preview)
            entry = store.get(line)
            assert entry is not None
            if args.json:
                write_json(entry.to_json())
            else:
                overrides = ", ".join(entry.rule_ids) or "no rule matches it now"
                print(f"trusted: {entry.preview}  (overrides: {overrides})")
            return EXIT_OK
        if args.action == "remove":
            return _remove(store, args)
        if args.action == "clear":
            return _clear(store, args)
        if args.action == "export":
            from attyguard.trust import EXPORT_FORMAT

            write_json({"format": EXPORT_FORMAT, "version": 1,
                        "exported": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                        "entries": store.export_json()})
            return EXIT_OK
        count = store.import_json(rows)
        if args.json:
            write_json({"imported": count})
        else:
            print(f"imported {count} entr{'y' if count == 1 else 'ies'} into {store.path}")
        return EXIT_OK
    except Exception as exc:
        from attyguard.trust import TrustError

        if isinstance(exc, TrustError):
            raise CommandError(str(exc)) from None
        raise
    finally:
        store.close()


def _line(words: list[str]) -> str:
    line = " ".join(words)
    if not line.strip():
        raise CommandError("the command line is empty")
    return line


def _open() -> TrustStore:
    from attyguard.trust import open_trust_store

    store, warning = open_trust_store()
    if store is None:
        print(warning, file=sys.stderr)
        # A bad file was moved aside: the second open starts an empty store.
        store, warning = open_trust_store()
        if store is None:
            raise CommandError(warning or "trust store unusable")
    return store


def _file_content(name: str) -> tuple[str, str]:
    """A file's content as the trust store keys it (the text judged), and its preview."""
    import os

    from attyguard.filejudge import read_bounded

    path = os.path.abspath(name)
    data, problem = read_bounded(path, 64 << 20)
    if problem is not None:
        raise CommandError(problem)
    if data is None:
        raise CommandError(f"{path}: no such file")
    from attyguard.trust import redact

    lines = data.count(b"\n") + (not data.endswith(b"\n") and bool(data))
    return (data.decode("utf-8", "surrogateescape"),
            redact(f"[file] {path} ({lines} line{'s' if lines != 1 else ''})"))


def _rules_now(line: str) -> tuple[str, ...]:
    from attyguard.engine.classify import classify

    return tuple(hit.rule_id for hit in classify(line).rules)


def _list(store: TrustStore, as_json: bool) -> int:
    entries = store.entries()
    if as_json:
        write_json([e.to_json() for e in entries])
        return EXIT_OK
    if not entries:
        print(f"no trusted command lines ({store.path})")
        return EXIT_OK
    from rich.console import Console
    from rich.table import Table

    from attyguard.trust import iso_time

    table = Table(title=f"trusted command lines ({store.path})", title_justify="left")
    for name in ("sha256", "last used", "uses", "overrides", "command (redacted)"):
        table.add_column(name, overflow="fold")
    for e in entries:
        # An unverified preview may not be the line: never show it as if it were.
        preview = e.preview if e.verified else f"(unverified import) {e.preview}"
        table.add_row(e.sha256[:12], iso_time(e.last_used), str(e.use_count),
                      ", ".join(e.rule_ids), preview)
    Console(highlight=False).print(table)
    return EXIT_OK


def _remove(store: TrustStore, args: argparse.Namespace) -> int:
    if args.sha256:
        prefix = args.sha256.lower()
        if len(prefix) < 8:
            raise CommandError("--sha256 needs at least 8 hex digits")
        matches = store.find_prefix(prefix)
        if len(matches) > 1:
            raise CommandError(f"--sha256 {prefix} matches {len(matches)} entries; "
                               "give more digits")
        removed = bool(matches) and store.remove_hash(matches[0].sha256)
        what = matches[0].preview if matches else prefix
    else:
        line = _line(args.cmd)
        from attyguard.trust import redact

        removed = store.remove(line)
        what = redact(line)
    if args.json:
        write_json({"removed": removed})
    else:
        print(f"{'removed' if removed else 'not trusted'}: {what}",
              file=sys.stdout if removed else sys.stderr)
    return EXIT_OK if removed else EXIT_NEGATIVE


def _clear(store: TrustStore, args: argparse.Namespace) -> int:
    if not args.yes:
        if not sys.stdin.isatty():
            raise CommandError("refusing to clear without --yes: stdin is not a terminal")
        count = len(store.entries())
        answer = input(f"Remove all {count} trusted command lines from {store.path}? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("nothing removed")
            return EXIT_NEGATIVE
    removed = store.clear()
    if args.json:
        write_json({"removed": removed})
    else:
        print(f"removed {removed} entr{'y' if removed == 1 else 'ies'}")
    return EXIT_OK


def _json_lines(text: str) -> list[Any] | None:
    """Entries given as JSON lines (one object per line), else None."""
    rows: list[Any] = []
    for raw in text.splitlines():
        if raw.strip():
            try:
                row = json.loads(raw)
            except ValueError:
                return None
            if not isinstance(row, dict):
                return None
            rows.append(row)
    return rows if len(rows) > 1 else None


def _read_import(name: str) -> list[Any]:
    try:
        if name == "-":
            data = sys.stdin.buffer.read(MAX_IMPORT_BYTES + 1)
        else:
            with open(name, "rb") as handle:
                data = handle.read(MAX_IMPORT_BYTES + 1)
    except OSError as exc:
        raise CommandError(f"cannot read {name}: {exc.strerror}") from None
    where = "stdin" if name == "-" else name
    if len(data) > MAX_IMPORT_BYTES:
        raise CommandError(f"{where}: larger than {MAX_IMPORT_BYTES >> 20} MiB")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CommandError(f"{where}: not valid UTF-8 at byte {exc.start}") from None
    try:
        obj = json.loads(text)
    except ValueError as exc:
        as_lines = _json_lines(text)
        if as_lines is None:
            raise CommandError(f"{where}: not JSON: {exc}") from None
        return as_lines
    if isinstance(obj, dict) and isinstance(obj.get("entries"), list):
        rows: list[Any] = obj["entries"]
        return rows
    if isinstance(obj, list):
        return obj
    raise CommandError(f"{where}: expected the output of 'attyguard trust export' "
                       '(an object with "entries", or a list)')
