"""`attyguard audit verify [--json] [FILE…]`: check the daemon's hash-chained audit log.

Exit statuses: 0 the chain is intact, 1 it is broken (the first broken, removed,
reordered or cut record is named as `file:line: message`), 3 error (bad usage,
no log to read). With no FILE, the daemon config's `audit_log` is verified.
A single FILE takes its rotated siblings (`FILE.N` … `FILE.1`) before it.
"""

from __future__ import annotations

import sys
from pathlib import Path

from attyguard.commands._util import EXIT_NEGATIVE, EXIT_OK, CommandError, Parser, run_command

__all__ = ["main"]


def main(argv: list[str]) -> int:
    return run_command("audit", _run, argv)


def _parser() -> Parser:
    parser = Parser(prog="attyguard audit", description="The daemon's tamper-evident audit log.")
    sub = parser.add_subparsers(dest="action", required=True, metavar="verify")
    verify = sub.add_parser("verify", help="check the hash chain; exit 1 at the first break")
    verify.add_argument("files", nargs="*", metavar="FILE",
                        help="log files, oldest first (default: the daemon config's audit_log)")
    verify.add_argument("--json", action="store_true", help="one JSON object")
    verify.add_argument("--config", metavar="PATH",
                        help="daemon config naming audit_log "
                        "(default /etc/attyguard/attyguard.toml)")
    return parser


def _default_log(config: str | None) -> Path:
    from attyguard.daemon.config import DEFAULT_CONFIG_PATH, load_daemon_config

    path = Path(config) if config else Path(DEFAULT_CONFIG_PATH)
    cfg, errors = load_daemon_config(path, missing_ok=config is None)
    if errors:
        raise CommandError(str(errors[0]))
    if not cfg.daemon.audit_log:
        raise CommandError(f"no FILE given and {path} sets no audit_log")
    return Path(cfg.daemon.audit_log)


def _run(argv: list[str]) -> int:
    from attyguard.audit import log_files, verify

    args = _parser().parse_args(argv)
    paths = [Path(f) for f in args.files] or [_default_log(args.config)]
    files = log_files(paths[0]) if len(paths) == 1 else paths
    if not files:
        raise CommandError(f"{paths[0]}: no such audit log")
    report = verify(files)
    if args.json:
        import json

        print(json.dumps({
            "ok": report.ok, "records": report.records, "first_seq": report.first_seq,
            "last_seq": report.last_seq, "files": list(report.files),
            "problem": None if report.problem is None else {
                "file": report.problem.file, "line": report.problem.line,
                "message": report.problem.message},
            "notes": list(report.notes),
        }))
    elif report.problem is not None:
        sys.stdout.write(f"BROKEN {report.problem}\n")
    else:
        for note in report.notes:
            sys.stdout.write(f"note: {note}\n")
        sys.stdout.write(f"ok: {report.records} records intact (seq {report.first_seq}–"
                         f"{report.last_seq}) in {len(report.files)} file(s)\n")
    return EXIT_OK if report.ok else EXIT_NEGATIVE
