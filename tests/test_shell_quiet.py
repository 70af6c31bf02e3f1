"""Quiet where people live: everyday lines that use the shell's state stay allowed.

The table and the shell set-up (venv, nvm-, direnv- and starship-style hooks,
aliases, arrays) are bench/state_quiet.py's; this asserts what it measures.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from attyguard.engine.verdict import Action

_spec = importlib.util.spec_from_file_location(
    "state_quiet", Path(__file__).resolve().parents[1] / "bench" / "state_quiet.py")
assert _spec is not None and _spec.loader is not None
quiet = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(quiet)


@pytest.fixture(scope="module")
def child(tmp_path_factory):
    c = quiet.start(tmp_path_factory.mktemp("quiet-home"))
    yield c
    c.close()


@pytest.mark.parametrize("line", quiet.LINES)
def test_everyday_state_using_lines_are_allowed(child, line):
    with_state, alone, _trips = quiet.judge(child, line)
    assert with_state is Action.ALLOW, line
    assert alone is Action.ALLOW, line


def test_the_table_really_uses_state(child):
    """Most lines need a round trip or names-record knowledge: the table tests something."""
    from attyguard.shell.state import Names, needs_of, parse_names

    names = parse_names(child.names())
    assert names.aliases and "nvm" in names.functions
    used = [line for line in quiet.LINES if needs_of(line, names) or needs_of(line, Names())
            or set(line.split()) & set(names.aliases)]
    assert len(used) >= len(quiet.LINES) * 2 // 3
