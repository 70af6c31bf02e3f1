"""Fixtures for end-to-end tests of the real `attyguard` binary.

`attyguard_bin`: the console script of the test venv.
`ag_env`: an environment with HOME and ATTYGUARD_HOME in a tmp dir, a
  predictable prompt (`PS1='[\\w]$ '` in ~/.bashrc) and TERM=tmux-256color
  (cursor position reports stay on: tmux answers them, and the status bar
  needs them).
`shell`: a factory starting attyguard (or any argv) in a fresh tmux server,
  waiting for the first prompt; every server is killed at teardown.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import Tmux, have_tmux

PROMPT_RE = r"\]\$ ?$"  # end of the test prompt "[dir]$ "


@pytest.fixture
def attyguard_bin() -> Path:
    path = Path(sys.executable).parent / "attyguard"
    if not path.exists():
        pytest.skip(f"attyguard console script not installed in this venv ({path})")
    return path


@pytest.fixture
def ag_home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    (home / ".bashrc").write_text("PS1='[\\w]$ '\nHISTFILE=~/.bash_history\n")
    return home


@pytest.fixture
def ag_env(tmp_path: Path, ag_home: Path) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(ag_home),
        "ATTYGUARD_HOME": str(tmp_path / "aghome"),
        "TERM": "tmux-256color",
        "LANG": os.environ.get("LANG", "C.UTF-8"),
        "USER": os.environ.get("USER", "root"),
        "ATTYGUARD_DEBUG_LOG": str(tmp_path / "debug.log"),
    }
    return env


@pytest.fixture
def shell(attyguard_bin: Path, ag_env: dict[str, str]) -> Iterator[Callable[..., Tmux]]:
    if not have_tmux():
        pytest.skip("tmux is not installed")
    started: list[Tmux] = []

    def start(*args: str, env: dict[str, str] | None = None, cols: int = 100, rows: int = 30,
              wait_prompt: bool = True) -> Tmux:
        t = Tmux([str(attyguard_bin), *args], env=env or ag_env, cols=cols, rows=rows,
                 cwd=ag_env["HOME"])
        started.append(t)
        t.start()
        if wait_prompt:
            t.wait_for(PROMPT_RE, timeout=15)
        return t

    yield start
    for t in started:
        t.kill()
