"""The daemon's wire protocol: a pure codec (no sockets, no asyncio).

One request or reply per line: a UTF-8 JSON object followed by `\\n`
(newline-delimited JSON). JSON text never contains a raw newline, so a line
is always one whole message, and a reader can find message boundaries (and
skip an oversized or garbled message) without understanding it. The
reference is docs/protocol.md; this module is the only place that knows the
field names, so the server and the client cannot drift apart.

Every message carries `"v": PROTOCOL_VERSION`. A request names an `op` and may
carry an `id` (echoed in the reply, so a client can match replies to
requests). Replies are `{"v", "id", "ok": true, ...}` or
`{"v", "id", "ok": false, "error": {"code", "message"}}`. After a successful
`subscribe` the connection only carries events: `{"v", "event": "warn", ...}`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from attyguard.engine.state import ShellState

__all__ = [
    "OPS",
    "PROTOCOL_VERSION",
    "ErrorCode",
    "ProtocolError",
    "Request",
    "decode_message",
    "decode_request",
    "encode",
    "encode_error",
    "encode_event",
    "encode_reply",
    "encode_request",
    "state_from_json",
    "state_to_json",
]

PROTOCOL_VERSION = 1

OPS = ("classify", "status", "threats", "mark", "clear", "subscribe", "register", "trusted",
       "events", "policy_status", "policy_violations", "policy_mode", "policy_launch")


class ErrorCode:
    """The `error.code` values a reply can carry (stable strings)."""

    BAD_REQUEST = "bad_request"  # not JSON, not an object, missing/invalid field
    TOO_LARGE = "too_large"  # request line longer than the daemon's limit
    UNKNOWN_OP = "unknown_op"
    VERSION = "unsupported_version"
    FORBIDDEN = "forbidden"  # peer not allowed to connect, or to do this op
    NOT_FOUND = "not_found"  # mark: no such process
    BUSY = "busy"  # too many subscribers, or this connection closed to make room
    IDLE = "idle"  # this connection was idle too long and is being closed
    INTERNAL = "internal"  # the daemon failed on this request (it keeps serving)


class ProtocolError(Exception):
    """A request the daemon cannot serve; becomes an error reply, never a crash."""

    def __init__(self, code: str, message: str, request_id: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.request_id = request_id


@dataclass(frozen=True, slots=True)
class Request:
    op: str
    id: Any = None
    args: dict[str, Any] = field(default_factory=dict)  # every other field of the request

    def str_arg(self, name: str, *, default: str | None = None, max_len: int = 1 << 20) -> str:
        value = self.args.get(name, default)
        if not isinstance(value, str):
            raise ProtocolError(ErrorCode.BAD_REQUEST, f"{self.op}: '{name}' must be a string",
                                self.id)
        if len(value) > max_len:
            raise ProtocolError(ErrorCode.TOO_LARGE, f"{self.op}: '{name}' is too long", self.id)
        return value

    def int_arg(self, name: str, *, default: int | None = None) -> int:
        value = self.args.get(name, default)
        # bool is an int subclass in Python; `true` is not a PID.
        if not isinstance(value, int) or isinstance(value, bool):
            raise ProtocolError(ErrorCode.BAD_REQUEST, f"{self.op}: '{name}' must be an integer",
                                self.id)
        return value


def encode(obj: dict[str, Any]) -> bytes:
    """One message as one line. `ensure_ascii` keeps control characters escaped."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=True).encode("ascii") + b"\n"


def decode_message(line: bytes) -> dict[str, Any]:
    """A line (with or without its newline) to a JSON object; ProtocolError otherwise."""
    try:
        obj = json.loads(line)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise ProtocolError(ErrorCode.BAD_REQUEST, f"not JSON: {_short(exc)}") from None
    if not isinstance(obj, dict):
        raise ProtocolError(ErrorCode.BAD_REQUEST, "a message must be a JSON object")
    return obj


def decode_request(line: bytes) -> Request:
    obj = decode_message(line)
    request_id = obj.get("id")
    if not isinstance(request_id, (str, int, type(None))) or isinstance(request_id, bool):
        request_id = None
    version = obj.get("v", PROTOCOL_VERSION)
    if version != PROTOCOL_VERSION:
        raise ProtocolError(ErrorCode.VERSION,
                            f"protocol version {version!r} not supported "
                            f"(this daemon speaks {PROTOCOL_VERSION})", request_id)
    op = obj.get("op")
    if not isinstance(op, str):
        raise ProtocolError(ErrorCode.BAD_REQUEST, "missing 'op'", request_id)
    if op not in OPS:
        raise ProtocolError(ErrorCode.UNKNOWN_OP, f"unknown op {op[:40]!r}", request_id)
    args = {k: v for k, v in obj.items() if k not in ("v", "id", "op")}
    return Request(op=op, id=request_id, args=args)


def encode_request(op: str, request_id: Any = None, **args: Any) -> bytes:
    return encode({"v": PROTOCOL_VERSION, "id": request_id, "op": op, **args})


def encode_reply(request_id: Any, **payload: Any) -> bytes:
    return encode({"v": PROTOCOL_VERSION, "id": request_id, "ok": True, **payload})


def encode_error(code: str, message: str, request_id: Any = None) -> bytes:
    return encode({"v": PROTOCOL_VERSION, "id": request_id, "ok": False,
                   "error": {"code": code, "message": message}})


def encode_event(event: str, **payload: Any) -> bytes:
    return encode({"v": PROTOCOL_VERSION, "event": event, **payload})


def _short(exc: BaseException) -> str:
    text = str(exc)
    return text if len(text) <= 120 else text[:117] + "..."


# ---- the shell's state in a classify request (additive, issue 9)

_STATE_MAPS = ("variables", "aliases", "functions", "hashed", "traps")


def state_to_json(state: ShellState) -> dict[str, Any]:
    """A ShellState as the `state` field of a `classify` request (empty maps left out)."""
    out: dict[str, Any] = {name: dict(getattr(state, name))
                           for name in _STATE_MAPS if getattr(state, name)}
    if state.arrays:
        out["arrays"] = {k: dict(v) for k, v in state.arrays.items()}
    return out


def state_from_json(value: Any, request_id: Any = None) -> ShellState:
    """The `state` field back to a ShellState; ProtocolError if it is not that shape."""
    def bad(why: str) -> ProtocolError:
        return ProtocolError(ErrorCode.BAD_REQUEST, f"classify: 'state' {why}", request_id)

    if not isinstance(value, dict):
        raise bad("must be an object")
    unknown = set(value) - {*_STATE_MAPS, "arrays"}
    if unknown:
        raise bad(f"has unknown field {sorted(unknown)[0][:40]!r}")
    maps: dict[str, dict[str, str]] = {}
    for name in _STATE_MAPS:
        table = value.get(name, {})
        if not isinstance(table, dict) or not all(
                isinstance(v, str) for v in table.values()):
            raise bad(f"'{name}' must map names to strings")
        maps[name] = table
    arrays = value.get("arrays", {})
    if not isinstance(arrays, dict) or not all(
            isinstance(a, dict) and all(isinstance(v, str) for v in a.values())
            for a in arrays.values()):
        raise bad("'arrays' must map names to objects of strings")
    return ShellState(arrays=arrays, **maps)
