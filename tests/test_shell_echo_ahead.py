"""Keys typed at the instant prompt: echoed at once, handed back whole (real pty)."""

from __future__ import annotations

import os
import select
import threading
import time
import tty
from collections.abc import Iterator

import pytest

from attyguard.shell.echo_ahead import EchoAhead, complete_input, echo_room, echoable_prefix


@pytest.mark.parametrize(("ps1", "columns", "room"), [
    ("[~]$ ", 80, 74),
    ("\x1b[1;32m\x01\x1b]0;title\x07\x02user@host\x1b[0m:~$ ", 40, 26),
    ("first line\nsecond$ ", 20, 11),
    ("ünï$ ", 20, 12),  # (non-ASCII counted as two cells: an upper bound)
    ("x" * 90, 80, 0),
])
def test_echo_room_is_what_fits_on_the_last_row(ps1: str, columns: int, room: int) -> None:
    assert echo_room(ps1, columns) == room


@pytest.mark.parametrize(("data", "room", "n"), [
    (b"ls -la", 80, 6),
    (b"ls\r", 80, 2),
    (b"ab\x1b[A", 80, 2),
    (b"\x03", 80, 0),
    (b"caf\xc3\xa9", 80, 3),
    (b"abcdef", 3, 3),
])
def test_echoable_prefix_is_printable_ascii_within_room(data: bytes, room: int, n: int) -> None:
    assert echoable_prefix(data, room) == n


@pytest.fixture
def pty_pair() -> Iterator[tuple[int, int]]:
    master, slave = os.openpty()
    tty.setraw(slave)
    try:
        yield master, slave
    finally:
        os.close(master)
        os.close(slave)


def _read_until(fd: int, want: bytes, deadline_s: float = 5.0) -> bytes:
    got = b""
    end = time.monotonic() + deadline_s
    while want not in got and time.monotonic() < end:
        if select.select([fd], [], [], max(0.0, end - time.monotonic()))[0]:
            got += os.read(fd, 4096)
    return got


def _pending(fd: int) -> bytes:
    got = b""
    while select.select([fd], [], [], 0.05)[0]:
        got += os.read(fd, 4096)
    return got


def test_printable_keys_echo_then_everything_comes_back(pty_pair: tuple[int, int]) -> None:
    master, slave = pty_pair
    echo = EchoAhead(slave, slave, room=40)
    try:
        os.write(master, b"echo hi")
        assert _read_until(master, b"echo hi") == b"echo hi"
        os.write(master, b"\r")  # Enter: replayed, never echoed; the echo stops there
        os.write(master, b"ls\r")  # still read (in order), no longer echoed
        deadline = time.monotonic() + 5
        while len(echo.read) < 11 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        keys = echo.stop()
    assert keys == "echo hi\rls\r"
    assert _pending(master) == b""  # (nothing more was echoed)
    assert _pending(slave) == b""


def test_a_paste_cut_short_is_read_to_its_end(pty_pair: tuple[int, int]) -> None:
    master, slave = pty_pair
    echo = EchoAhead(slave, slave, room=40)
    os.write(master, b"\x1b[200~echo one\necho")
    deadline = time.monotonic() + 5
    while len(echo.read) < 19 and time.monotonic() < deadline:
        time.sleep(0.01)
    rest = threading.Timer(0.05, os.write, (master, b" two\x1b[201~"))
    rest.start()
    try:
        keys = echo.stop()  # (waits for the paste's end: one parser must see all of it)
    finally:
        rest.join()
    assert keys == "\x1b[200~echo one\necho two\x1b[201~"
    assert _pending(master) == b""  # a paste is never echoed


@pytest.mark.parametrize(("data", "whole"), [
    (b"", True),
    (b"ls", True),
    (b"\x1b[A", True),
    (b"\x1bOA", True),
    (b"\x1bb", True),
    (b"\x1b", False),
    (b"\x1b[1;5", False),
    (b"\x1b[200~echo a\n", False),
    (b"\x1b[200~echo a\x1b[201~\r", True),
])
def test_complete_input_knows_a_cut_sequence(data: bytes, whole: bool) -> None:
    assert complete_input(data) is whole


def test_echo_stops_at_the_end_of_the_row(pty_pair: tuple[int, int]) -> None:
    master, slave = pty_pair
    echo = EchoAhead(slave, slave, room=3)
    try:
        os.write(master, b"abcdef")
        assert _read_until(master, b"abc") == b"abc"
    finally:
        keys = echo.stop()
    assert keys == "abcdef"  # (all of it replayed: the front end draws the rest)
    assert _pending(master) == b""


def test_stop_without_keys_returns_nothing_and_can_repeat(pty_pair: tuple[int, int]) -> None:
    _master, slave = pty_pair
    echo = EchoAhead(slave, slave, room=10)
    assert echo.stop() == ""
    assert echo.stop() == ""
