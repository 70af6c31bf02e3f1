from __future__ import annotations

import pytest

from attyguard.shell.text import escape_controls, one_line, split_typeahead


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain", "plain"),
        ("a\x1b[31mred", "a\\x1b[31mred"),
        ("bell\x07", "bell\\x07"),
        ("c1\x9b", "c1\\x9b"),
        ("tab\tnl\n", "tab\tnl\n"),
        ("del\x7f", "del\\x7f"),
    ],
)
def test_escape_controls(text, expected):
    assert escape_controls(text) == expected


def test_one_line_flattens_and_cuts():
    assert one_line("a\nb\tc") == "a\\nb\\tc"
    assert one_line("x" * 300, 10) == "x" * 9 + "…"


@pytest.mark.parametrize(
    ("keys", "now", "later"),
    [
        ("", "", ""),
        ("ls", "ls", ""),
        ("ls\rpwd\r", "ls\r", "pwd\r"),
        ("ls\npwd", "ls\r", "pwd"),
        ("cd /tm\t", "cd /tm\t", ""),
        # a pasted block stays whole: its newlines are not Enters
        ("\x1b[200~a\nb\x1b[201~\rls\r", "\x1b[200~a\nb\x1b[201~\r", "ls\r"),
        ("\x1b[200~a\nb", "\x1b[200~a\nb", ""),
    ],
)
def test_split_typeahead(keys, now, later):
    assert split_typeahead(keys) == (now, later)

