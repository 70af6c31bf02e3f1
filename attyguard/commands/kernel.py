"""`attyguard daemon status` and `attyguard events`: the exec guard as users see it.

Both ask a running daemon over its socket (`--socket`, default: the shell
config's `guard.daemon_socket_path`, else /run/attyguard/attyguard.sock).
`daemon status` prints the rung in use, the mode, event counters and the
guarded trees; `events` prints the recent exec decisions one JSON object a
line (`--json`, the default when stdout is not a terminal) or as a table, and
with `--follow` keeps printing new ones until interrupted.

Exit statuses: 0 fine, 3 error (no daemon, refused, bad usage).
"""

from __future__ import annotations

import json
import socket
import sys
import time
from typing import Any

from attyguard.commands._util import EXIT_OK, CommandError, Parser, run_command, write_json

__all__ = ["events_main", "status_main"]

_FIELDS = ("time", "pid", "ppid", "uid", "program", "argv", "rules", "action", "rung")


def status_main(argv: list[str]) -> int:
    return run_command("daemon status", _status, argv)


def events_main(argv: list[str]) -> int:
    return run_command("events", _events, argv)


def main(argv: list[str]) -> int:  # `attyguard events` through cli.SUBCOMMANDS
    return events_main(argv)


def _default_socket() -> str:
    from attyguard.config import load_config
    from attyguard.daemon.config import DEFAULT_SOCKET

    config, _errors = load_config()
    return config.guard.daemon_socket_path or DEFAULT_SOCKET


class _Conn:
    """One connection to the daemon: newline-delimited JSON, errors as CommandError."""

    def __init__(self, path: str, timeout: float = 5.0) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        self.sock.settimeout(timeout)
        self.buffer = b""
        try:
            self.sock.connect(path)
        except OSError as exc:
            self.sock.close()
            raise CommandError(f"cannot reach the daemon at {path}: "
                               f"{exc.strerror or exc}") from None

    def request(self, op: str, **args: Any) -> dict[str, Any]:
        from attyguard.daemon import protocol

        self.sock.sendall(protocol.encode_request(op, 1, **args))
        reply = self.message()
        if reply.get("ok") is not True:
            error = reply.get("error") or {}
            raise CommandError(f"daemon: {error.get('message', 'request failed')}")
        return reply

    def message(self, timeout: float | None = 5.0) -> dict[str, Any]:
        from attyguard.daemon import protocol

        self.sock.settimeout(timeout)
        while b"\n" not in self.buffer:
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                raise CommandError("the daemon did not answer in time") from None
            except OSError as exc:
                raise CommandError(f"connection to the daemon failed: {exc}") from None
            if not chunk:
                raise CommandError("the daemon closed the connection")
            self.buffer += chunk
            if len(self.buffer) > 64 << 20:
                raise CommandError("reply from the daemon too long")
        line, self.buffer = self.buffer.split(b"\n", 1)
        try:
            return protocol.decode_message(line)
        except protocol.ProtocolError as exc:
            raise CommandError(f"garbled reply from the daemon: {exc.message}") from None

    def close(self) -> None:
        self.sock.close()


def _status(argv: list[str]) -> int:
    parser = Parser(prog="attyguard daemon status",
                    description="The running daemon and its exec guard.")
    parser.add_argument("--socket", help="the daemon's socket")
    parser.add_argument("--json", action="store_true", help="print the whole status as JSON")
    args = parser.parse_args(argv)
    conn = _Conn(args.socket or _default_socket())
    try:
        reply = conn.request("status")
    finally:
        conn.close()
    reply = {k: v for k, v in reply.items() if k not in ("v", "id", "ok")}
    if args.json:
        write_json(reply)
        return EXIT_OK
    exec_ = reply.get("exec") or {}
    counters = exec_.get("counters") or {}
    out = [f"daemon pid {reply.get('pid')}, version {reply.get('version')}, "
           f"up {reply.get('uptime_s')} s, mode {reply.get('mode')}, tier2 {reply.get('tier2')}",
           f"exec guard: mode {exec_.get('mode')}, rung {exec_.get('rung') or 'none'}, "
           f"scope {exec_.get('scope', '-')}"]
    if counters:
        out.append("events: " + ", ".join(f"{k} {v}" for k, v in counters.items()))
    layer = exec_.get("layer") or {}
    if layer.get("answer_path"):
        out.append(f"permission events answered by: {layer['answer_path']} "
                   f"({layer.get('answer_path_reason', '')})")
    trees = exec_.get("guarded_trees") or []
    out.append(f"guarded trees: {len(trees)}"
               + "".join(f"\n  pid {t['pid']} uid {t['uid']}" for t in trees))
    sys.stdout.write("\n".join(out) + "\n")
    return EXIT_OK


def _events(argv: list[str]) -> int:
    parser = Parser(prog="attyguard events",
                    description="Recent exec decisions and kernel events of the daemon.")
    parser.add_argument("--socket", help="the daemon's socket")
    parser.add_argument("--follow", "-f", action="store_true", help="keep printing new events")
    parser.add_argument("--json", action="store_true",
                        help="one JSON object a line (the default when not on a terminal)")
    parser.add_argument("--limit", type=int, default=100, help="recent events shown (100)")
    args = parser.parse_args(argv)
    as_json = args.json or not sys.stdout.isatty()
    conn = _Conn(args.socket or _default_socket())
    try:
        reply = conn.request("events", limit=max(0, args.limit), follow=args.follow)
        for record in reply.get("events") or []:
            _print(record, as_json)
        while args.follow:
            message = conn.message(timeout=None)
            if message.get("event") == "exec":
                _print({k: v for k, v in message.items() if k not in ("v", "event")}, as_json)
    finally:
        conn.close()
    return EXIT_OK


def _print(record: dict[str, Any], as_json: bool) -> None:
    if as_json:
        ordered = {k: record.get(k) for k in _FIELDS}
        ordered.update({k: v for k, v in record.items() if k not in ordered})
        sys.stdout.write(json.dumps(ordered, ensure_ascii=True) + "\n")
    else:
        from attyguard.shell.text import one_line

        when = time.strftime("%H:%M:%S", time.localtime(float(record.get("time") or 0)))
        argv = " ".join(str(a) for a in record.get("argv") or []) or record.get("program", "")
        rules = ",".join(record.get("rules") or []) or "-"
        sys.stdout.write(f"{when} {record.get('action', '?'):5} pid {record.get('pid')} "
                         f"uid {record.get('uid')} [{record.get('rung')}] "
                         f"{one_line(str(argv), 100)}  {rules}\n")
    sys.stdout.flush()
