"""`attyguard daemon clear [--pid P]`: an operator's commands against a running daemon.

A shell the daemon marked Critical refuses every line but `exit`; root lifts
the mark with this instead of writing protocol JSON to the socket by hand.
One request per connection over the daemon's own protocol (protocol.py).
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
from typing import Any

from attyguard.daemon.config import DEFAULT_SOCKET
from attyguard.textsafe import safe_text

__all__ = ["clear_main"]

_TIMEOUT_S = 5.0


class _Failed(Exception):
    pass


def _call(path: str, op: str, **args: Any) -> dict[str, Any]:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(_TIMEOUT_S)
            sock.connect(path)
            sock.sendall(json.dumps({"v": 1, "id": 1, "op": op, **args}).encode() + b"\n")
            data = b""
            while not data.endswith(b"\n") and len(data) < (1 << 22):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
    except OSError as exc:
        raise _Failed(f"cannot reach the daemon at {path}: {exc.strerror or exc}") from None
    try:
        reply = json.loads(data)
    except ValueError:
        raise _Failed(f"the daemon at {path} sent no valid reply") from None
    if not isinstance(reply, dict):
        raise _Failed(f"the daemon at {path} sent no valid reply")
    if reply.get("ok") is not True:
        error = reply.get("error")
        message = error.get("message", reply) if isinstance(error, dict) else reply
        raise _Failed(safe_text(str(message), 200))
    return reply


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="attyguard daemon clear",
        description="Lift the daemon's mark on a process (root only): a shell marked "
        "Critical then runs lines again. Without --pid, every Critical mark is lifted.")
    parser.add_argument("--pid", type=int, help="the marked process (a shell's PID, as "
                        "its REFUSED message names it)")
    parser.add_argument("--socket", default=DEFAULT_SOCKET,
                        help=f"the daemon's socket (default {DEFAULT_SOCKET})")
    return parser


def clear_main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.pid is not None:
            pids = [args.pid]
        else:
            entries = _call(args.socket, "threats").get("entries", [])
            pids = [int(e["pid"]) for e in entries
                    if isinstance(e, dict) and e.get("level") == "critical"]
            if not pids:
                print("no Critical marks")
                return 0
        for pid in pids:
            reply = _call(args.socket, "clear", pid=pid)
            print(f"pid {pid}: {'cleared' if reply.get('cleared') else 'not marked'}")
    except _Failed as exc:
        print(f"attyguard daemon clear: {exc}", file=sys.stderr)
        return 1
    return 0
