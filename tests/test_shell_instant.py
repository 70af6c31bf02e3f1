"""The instant first prompt's pure helpers and what it writes."""

from __future__ import annotations

import os
import termios

import pytest

from attyguard.shell.instant import (
    InstantPrompt,
    draw_instant_prompt,
    ends_at_line_start,
    prompt_input_attrs,
    prompt_rows,
)


@pytest.mark.parametrize(
    ("ps1", "columns", "rows", "expected"),
    [
        ("[~]$ ", 80, 24, 1),
        ("\x1b[1;32muser@host\x1b[0m:\x1b[01;34m~\x1b[00m$ ", 80, 24, 1),  # SGR colours
        ("line one\n[~]$ ", 80, 24, 2),
        ("line one\n\n$ ", 80, 24, 3),
        ("ends in newline\n", 80, 24, 2),
        ("x" * 79, 80, 24, 1),  # the last column stays free
        ("x" * 80, 80, 24, None),  # would wrap (or sit in the pending-wrap state)
        ("é" * 39 + "$", 80, 24, 1),  # non-ASCII counted as two cells
        ("é" * 40, 80, 24, None),
        ("日本語$ ", 8, 24, None),  # wide: 8 cells at least in 8 columns
        ("short\n" + "y" * 90, 80, 24, None),  # any line too wide
        ("a\nb\nc", 80, 3, None),  # as many lines as the screen
        ("a\nb", 80, 3, 2),
        ("", 80, 24, None),
        ("\x1b]0;title\x07$ ", 80, 24, None),  # OSC: prompt_toolkit shows its text
        ("\x01\x1b]0;u@h: ~\x07\x02[~]$ ", 80, 24, 1),  # ...unless hidden (\[ \])
        ("\x01\x1b]2;t\x1b\\\x02" + "x" * 79, 80, 24, 1),  # ST-terminated, zero width
        ("\x01\x1b[s\x02$ ", 80, 24, None),  # a hidden cursor save: not drawn by us
        ("\x1b[2J$ ", 80, 24, None),  # a CSI other than SGR
        ("\x1b[5C$ ", 80, 24, None),
        ("tab\there$ ", 80, 24, None),
        ("cr\r$ ", 80, 24, None),
        ("bell\x07$ ", 80, 24, None),
        ("c1\x9b31m$ ", 80, 24, None),
        ("bad-\udcff$ ", 80, 24, None),  # undecodable byte (surrogateescape)
        ("$ ", 1, 24, None),
        ("$ ", 80, 1, None),
    ],
)
def test_prompt_rows(ps1: str, columns: int, rows: int, expected: int | None) -> None:
    assert prompt_rows(ps1, columns, rows) == expected


@pytest.mark.parametrize(
    ("tail", "expected"),
    [
        (b"", True),
        (b"motd line\r\n", True),
        (b"colour\n\x1b[0m", True),
        (b"no newline", False),
        (b"line\nthen more", False),
        (b"\x1b[0m", True),
    ],
)
def test_ends_at_line_start(tail: bytes, expected: bool) -> None:
    assert ends_at_line_start(tail) is expected


def test_prompt_input_attrs_matches_prompt_toolkit_raw_mode() -> None:
    from prompt_toolkit.input.vt100 import raw_mode

    attrs: list[object] = [
        termios.ICRNL | termios.IXON | termios.BRKINT,  # iflag
        termios.OPOST | termios.ONLCR,  # oflag
        termios.CS8,  # cflag
        termios.ECHO | termios.ICANON | termios.ISIG | termios.IEXTEN | termios.ECHOE,  # lflag
        termios.B38400,
        termios.B38400,
        [b"\x00"] * 32,
    ]
    got = prompt_input_attrs(attrs)
    assert got[3] == raw_mode._patch_lflag(attrs[3])  # type: ignore[arg-type]
    assert got[0] == raw_mode._patch_iflag(attrs[0])  # type: ignore[arg-type]
    assert got[1] == attrs[1]  # output processing kept: \n still moves to column 0
    assert got[6][termios.VMIN] == 1
    assert attrs[6][termios.VMIN] == b"\x00"  # the caller's list is not changed
    assert got[3] & termios.ECHOE  # flags prompt_toolkit keeps stay


def _drawn(**kw: object) -> tuple[bytes, InstantPrompt]:
    r, w = os.pipe()
    try:
        prompt = draw_instant_prompt(w, **kw)  # type: ignore[arg-type]
        prompt.hand_over()
        os.close(w)
        data = b""
        while chunk := os.read(r, 4096):
            data += chunk
    finally:
        os.close(r)
    return data, prompt


def test_draw_one_line_with_status_bar_row_reserved() -> None:
    data, prompt = _drawn(ps1="[~]$ ", rows=1, reserve_below=1, mark="\x1b]133;A\x07")
    draw, handover = data.rsplit(b"\r", 1)
    # A row for the status bar is scrolled into view first, then the mark
    # right before the prompt; bracketed paste on as prompt_toolkit will.
    assert draw == b"\n\x1b[1A\x1b]133;A\x07[~]$ \x1b[0m\x1b[?2004h"
    assert handover == b""  # back to column 0 of the only row
    assert prompt.rows == 1


def test_draw_multiline_hands_over_at_first_row() -> None:
    data, _ = _drawn(ps1="top\n[~]$ ", rows=2, reserve_below=0, mark="")
    assert data == b"\n\x1b[1Atop\n[~]$ \x1b[0m\x1b[?2004h\r\x1b[1A"


def test_hand_over_after_resize_starts_below() -> None:
    r, w = os.pipe()
    try:
        prompt = draw_instant_prompt(w, "top\n$ ", 2, reserve_below=0, mark="", size=(24, 80))
        os.read(r, 4096)
        prompt.hand_over((24, 60))  # narrower: the drawn lines may have wrapped
        assert os.read(r, 4096) == b"\r\n"
        prompt.hand_over((24, 80))  # same size: back over the drawn prompt
        assert os.read(r, 4096) == b"\r\x1b[1A"
    finally:
        os.close(r)
        os.close(w)


def test_draw_writes_hidden_regions_without_markers() -> None:
    data, _ = _drawn(ps1="\x01\x1b]0;t\x07\x02$ ", rows=1, reserve_below=0, mark="")
    assert data == b"\x1b]0;t\x07$ \x1b[0m\x1b[?2004h\r"


@pytest.mark.parametrize(
    ("expanded", "prompt"),
    [
        ("[~]$ ", "[~]$ "),
        # colours in \[ \]: unwrapped, prompt_toolkit styles them itself
        ("\x01\x1b[01;32m\x02u@h\x01\x1b[00m\x02$ ", "\x1b[01;32mu@h\x1b[00m$ "),
        # a window title in \[ \]: kept hidden, or its text would be printed
        ("\x01\x1b]0;u@h: ~\x07\x02$ ", "\x01\x1b]0;u@h: ~\x07\x02$ "),
        ("top\r\n$ ", "top\n$ "),  # bash's \n: CR LF
        ("a\x01b$ ", "ab$ "),  # unpaired: dropped
        ("\x01\x1b]0;t\x07\x02x\x02$ ", "\x1b]0;t\x07x$ "),
    ],
)
def test_prompt_from_bash(expanded: str, prompt: str) -> None:
    from attyguard.shell.bash import _strip_rl_markers

    assert _strip_rl_markers(expanded) == prompt


def test_draw_nothing_reserved_for_one_line_without_status_bar() -> None:
    data, _ = _drawn(ps1="$ ", rows=1, reserve_below=0, mark="")
    assert data == b"$ \x1b[0m\x1b[?2004h\r"


def test_shellrc_dir_follows_data_path() -> None:
    from attyguard.resources import data_path
    from attyguard.shell.spawn import shellrc_dir

    assert os.path.samefile(shellrc_dir(), data_path("shellrc"))
    assert os.path.isfile(os.path.join(shellrc_dir(), "attyguard.bash"))
