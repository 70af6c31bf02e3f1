"""The wire codec: one JSON object per line, errors as values, never exceptions escaping."""

from __future__ import annotations

import json

import pytest

from attyguard.daemon import protocol
from attyguard.daemon.protocol import ErrorCode, ProtocolError


def test_request_round_trip() -> None:
    line = protocol.encode_request("classify", 7, line="ls -la\nrm x")
    assert line.endswith(b"\n") and line.count(b"\n") == 1  # embedded newline is escaped
    request = protocol.decode_request(line)
    assert (request.op, request.id, request.args) == ("classify", 7, {"line": "ls -la\nrm x"})


def test_reply_and_error_shapes() -> None:
    reply = json.loads(protocol.encode_reply(3, verdict={"action": "allow"}))
    assert reply == {"v": 1, "id": 3, "ok": True, "verdict": {"action": "allow"}}
    error = json.loads(protocol.encode_error(ErrorCode.TOO_LARGE, "too big", 4))
    assert error == {"v": 1, "id": 4, "ok": False,
                     "error": {"code": "too_large", "message": "too big"}}
    event = json.loads(protocol.encode_event("warn", text="x"))
    assert event == {"v": 1, "event": "warn", "text": "x"}


@pytest.mark.parametrize(
    ("line", "code"),
    [
        (b"\x00\xff\xfe garbage", ErrorCode.BAD_REQUEST),
        (b'{"op": "classify", "line": "ab', ErrorCode.BAD_REQUEST),  # truncated
        (b"[1, 2]", ErrorCode.BAD_REQUEST),
        (b'{"line": "x"}', ErrorCode.BAD_REQUEST),
        (b'{"op": 5}', ErrorCode.BAD_REQUEST),
        (b'{"op": "format_disk"}', ErrorCode.UNKNOWN_OP),
        (b'{"v": 2, "op": "status"}', ErrorCode.VERSION),
        (b"[" * 100000, ErrorCode.BAD_REQUEST),  # deep nesting: RecursionError is caught
    ],
)
def test_bad_requests_are_protocol_errors(line: bytes, code: str) -> None:
    with pytest.raises(ProtocolError) as info:
        protocol.decode_request(line)
    assert info.value.code == code


def test_request_id_survives_an_unknown_op() -> None:
    with pytest.raises(ProtocolError) as info:
        protocol.decode_request(b'{"op": "nope", "id": "abc"}')
    assert info.value.request_id == "abc"


def test_typed_arguments() -> None:
    request = protocol.decode_request(b'{"op": "mark", "pid": true, "level": 3}')
    with pytest.raises(ProtocolError, match="integer"):
        request.int_arg("pid")
    with pytest.raises(ProtocolError, match="string"):
        request.str_arg("level")
    assert request.int_arg("missing", default=5) == 5
    long = protocol.decode_request(protocol.encode_request("classify", line="x" * 100))
    with pytest.raises(ProtocolError) as info:
        long.str_arg("line", max_len=10)
    assert info.value.code == ErrorCode.TOO_LARGE


def test_state_round_trips_and_bad_shapes_are_refused():
    from attyguard.daemon.protocol import ProtocolError, state_from_json, state_to_json
    from attyguard.engine.state import ShellState

    state = ShellState(variables={"v": 'a "b"\n$c'}, arrays={"a": {"0": "x", "k 1": "y"}},
                       aliases={"ll": "ls -l"}, functions={"f": "f () \n{ \n    true\n}\n"},
                       hashed={"ls": "/tmp/x"}, traps={"EXIT": "echo bye"})
    wire = state_to_json(state)
    assert state_from_json(wire).key() == state.key()
    assert state_to_json(ShellState(variables={"v": "1"})) == {"variables": {"v": "1"}}
    for bad in ([], {"variables": {"v": 1}}, {"arrays": {"a": "x"}}, {"other": {}}):
        try:
            state_from_json(bad, 7)
        except ProtocolError as exc:
            assert exc.code == "bad_request" and exc.request_id == 7
        else:
            raise AssertionError(f"accepted {bad!r}")
