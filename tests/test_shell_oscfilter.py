"""Stripping chosen OSC sequences from programs' output (streaming, any chunking)."""

from __future__ import annotations

import pytest

from attyguard.config import parse_config
from attyguard.shell.oscfilter import OscFilter, osc_numbers

ALL = osc_numbers(clipboard=True, palette=True, shell_marks=True)

CASES = [
    (b"plain text\r\n", b"plain text\r\n"),
    (b"a\x1b]52;c;ZWNobyBwd25lZA==\x07b", b"ab"),
    (b"a\x1b]52;c;ZWNobyBwd25lZA==\x1b\\b", b"ab"),
    (b"\x1b]4;196;rgb:00/00/00\x07red?", b"red?"),
    (b"\x1b]104\x07x", b"x"),
    (b"\x1b]11;#ff0000\x07\x1b]111\x07y", b"y"),
    (b"\x1b]133;D;0\x07z", b"z"),
    (b"\x1b]0;window title\x07t", b"\x1b]0;window title\x07t"),  # kept
    (b"\x1b]8;;https://x.example\x07link\x1b]8;;\x07", b"\x1b]8;;https://x.example\x07link"
     b"\x1b]8;;\x07"),
    (b"\x1b]1330;x\x07", b"\x1b]1330;x\x07"),  # not 133
    (b"\x1b[31mred\x1b[0m", b"\x1b[31mred\x1b[0m"),
    (b"\x1b]52;" + b"A" * 100000 + b"\x07after", b"after"),
]


@pytest.mark.parametrize("data,expected", CASES)
@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 4096, 1 << 20])
def test_strip_in_any_chunking(data, expected, chunk):
    f = OscFilter(ALL)
    out = b"".join(f.feed(data[i:i + chunk]) for i in range(0, len(data), chunk)) + f.flush()
    assert out == expected


def test_nothing_chosen_passes_everything():
    f = OscFilter(osc_numbers(clipboard=False, palette=False, shell_marks=False))
    data = b"".join(d for d, _ in CASES)
    assert f.feed(data) + f.flush() == data


def test_only_the_chosen_families_go():
    f = OscFilter(osc_numbers(clipboard=True, palette=False, shell_marks=False))
    assert f.feed(b"\x1b]52;c;eA==\x07\x1b]4;1;red\x07") == b"\x1b]4;1;red\x07"


def test_terminal_config_is_validated_with_locations():
    config, errors = parse_config("[terminal]\nstrip_clipboard = true\nstrip_palette = 1\n"
                                  "strip_everything = true\n", "cfg.toml")
    assert config.terminal.strip_clipboard and not config.terminal.strip_palette
    assert [str(e) for e in errors] == [
        "cfg.toml:3: terminal.strip_palette must be bool, got int; using False",
        "cfg.toml:4: unknown key terminal.strip_everything ignored"]
