"""Is a command complete? Checked against bash's own PS2 in a real interactive bash."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from attyguard.shell.bash import BashChild
from attyguard.shell.continuation import might_continue, needs_more, trailing_backslash
from tests.bash_child import bash_child

# (text, bash asks for more)
CASES = [
    ("echo ok", False),
    ('echo "x" \'y\'', False),
    ("echo 'open", True),
    ('echo "open', True),
    ("echo $'open", True),
    ("echo `open", True),
    ("echo $(open", True),
    ("echo ${open", True),
    ("echo a \\", True),
    ("echo a \\\\", False),
    ("echo one |", True),
    ("true &&", True),
    ("false ||", True),
    ("if true; then", True),
    ("if true; then echo y; fi", False),
    ("for i in 1 2; do", True),
    ("while false; do :; done", False),
    ("case x in a) echo", True),
    ("case x in x) echo hit;; esac", False),
    ("{ echo a;", True),
    ("( echo a", True),
    ("f() {", True),
    ("cat <<EOF", True),
    ("cat <<EOF\nbody", True),
    ("cat <<EOF\nbody\nEOF", False),
    ("cat <<-'END'\n\tbody\n\tEND", False),
    ("[[ a == b", True),
    ("fi", False),  # a syntax error: bash refuses it at once, no PS2
    ("echo )", False),
    ("# a comment \\", False),
]


@pytest.mark.parametrize("text,more", CASES)
def test_needs_more(text, more):
    assert needs_more(text) is more


def test_plain_words_never_start_bash():
    assert might_continue("ls -la /tmp && true")  # (could be open: checked)
    assert not might_continue("git status")
    assert not might_continue("make -j4 test")


def test_trailing_backslash():
    assert trailing_backslash("a \\") and not trailing_backslash("a \\\\")
    assert not trailing_backslash("a \\\n") and trailing_backslash("x\ny \\")


@pytest.fixture
def child(tmp_path) -> Iterator[BashChild]:
    # A fresh bash per case: nothing left over from the one before.
    yield from bash_child(tmp_path, "PS1='$ '\n")


@pytest.mark.parametrize("text,more", [c for c in CASES if "cat" not in c[0] or "\n" in c[0]])
def test_agrees_with_interactive_bash(child, text, more):
    """The oracle: what an interactive bash does with the same text (PS2 or not)."""
    r, w = os.pipe()
    try:
        result = child.run(text, None, w)
    finally:
        os.close(w)
        os.close(r)
    assert (result.kind == "more") is more
