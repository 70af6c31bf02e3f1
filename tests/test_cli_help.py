"""`attyguard --help` and every subcommand's --help; `contrib/dev.sh shell` reuses the test venv."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from attyguard.cli import SUBCOMMANDS

BIN = Path(sys.executable).parent / "attyguard"
REPO = Path(__file__).resolve().parents[1]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN), *args], capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("how", ["--help", "-h", "help"])
def test_help_lists_the_subcommands_and_options(how: str) -> None:
    done = _run(how)
    assert done.returncode == 0, done
    for name in SUBCOMMANDS:
        assert f"\n  {name} " in done.stdout, done.stdout
    for option in ("-c COMMAND", "--login", "--norc", "--noprofile"):
        assert option in done.stdout


@pytest.mark.parametrize("argv", [[name, "--help"] for name in SUBCOMMANDS]
                         + [["daemon", "clear", "--help"]])
def test_every_subcommand_has_help(argv: list[str]) -> None:
    done = _run(*argv)
    assert done.returncode == 0, done
    assert "usage:" in done.stdout, done.stdout


def test_dev_sh_shell_reuses_the_test_venv_and_puts_it_on_path() -> None:
    venv = REPO / ".venv"
    stamp = venv / ".attyguard-stamp"
    if Path(sys.executable).parent != venv / "bin" or not stamp.exists():
        pytest.skip("not running from dev.sh's venv")
    import hashlib

    extras, _, digest = stamp.read_text().strip().partition(" ")
    current = hashlib.sha256((REPO / "pyproject.toml").read_bytes()).hexdigest()[:16]
    if digest != current or "onnx" not in extras.split(","):
        pytest.skip("the venv predates pyproject.toml: dev.sh would rightly reinstall")
    before = stamp.stat().st_mtime_ns, stamp.read_text()
    env = dict(os.environ, PATH="/usr/bin:/bin")
    done = subprocess.run(["bash", str(REPO / "contrib" / "dev.sh"), "shell", "-c",
                           'echo "$PATH"; command -v attyguard'],
                          capture_output=True, text=True, timeout=120, cwd=REPO, env=env,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done
    assert (stamp.stat().st_mtime_ns, stamp.read_text()) == before, "dev.sh reinstalled"
    path, found = done.stdout.splitlines()[:2]
    assert path.split(":")[0] == str(venv / "bin"), done.stdout
    assert found == str(venv / "bin" / "attyguard"), done.stdout
