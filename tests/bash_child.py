"""A real bash child with attyguard's hooks, for tests that talk to it line by line."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from attyguard.resources import data_path
from attyguard.shell.bash import BashChild

__all__ = ["bash_child", "run"]


def bash_child(tmp_path: Path, bashrc: str) -> Iterator[BashChild]:
    """A fresh bash (its own HOME with `bashrc`) at its first prompt; closed afterwards.

    Use from a fixture: `yield from bash_child(tmp_path, "PS1='$ '\\n")`.
    """
    home = tmp_path / "home"
    home.mkdir()
    (home / ".bashrc").write_text(bashrc)
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "TERM": "xterm"}
    c = BashChild.spawn(data_path("shellrc"), size=(24, 80), env=env)
    try:
        assert c.wait_ready(10), "no first prompt"
        yield c
    finally:
        c.close()


def run(c: BashChild, line: str) -> bytes:
    """Run one line in the child; its output."""
    r, w = os.pipe()
    try:
        assert c.run(line, None, w).kind == "done"
    finally:
        os.close(w)
    with os.fdopen(r, "rb") as f:
        return f.read()
