"""`attyguard daemon --probe [--json] [--rung R]` as a user runs it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.kernel_support import require_bpf

ROOT = Path(__file__).resolve().parents[1]


def _probe(*args: str, user: int | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "attyguard", "daemon", "--probe", *args],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
        user=user, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


@pytest.mark.root
def test_probe_json_names_every_rung_and_the_one_in_use() -> None:
    require_bpf()
    r = _probe("--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert [x["name"] for x in doc["rungs"]] == ["lsm", "fanotify", "signal", "audit"]
    assert all(set(x) == {"name", "available", "reason"} for x in doc["rungs"])
    assert doc["in_use"] in ("lsm", "fanotify")
    assert "Traceback" not in r.stderr


@pytest.mark.root
def test_probe_forced_rung_and_human_form() -> None:
    require_bpf()
    r = _probe("--json", "--rung", "audit")
    assert json.loads(r.stdout)["in_use"] == "audit"
    human = _probe("--rung", "signal")
    assert human.returncode == 0
    assert "in use: signal" in human.stdout


@pytest.mark.root
def test_probe_as_an_unprivileged_user_says_why_and_exits_1() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to switch to an unprivileged user")
    # The system python: a venv's interpreter may live where nobody cannot read
    # (/root/.pyenv). The JSON probe needs nothing beyond the standard library.
    python = shutil.which("python3", path="/usr/bin:/bin")
    if python is None:
        pytest.skip("no system python3 for an unprivileged user")
    r = subprocess.run(
        [python, "-c", "from attyguard.kernel.report import print_probe;"
         "raise SystemExit(print_probe(None, True))"],
        capture_output=True, text=True, timeout=60, cwd="/", user=65534, group=65534,
        extra_groups=[], env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
    )
    if "No module named 'attyguard'" in r.stderr or "PermissionError" in r.stderr:
        pytest.skip(f"user nobody cannot read this checkout ({ROOT})")
    assert r.returncode == 1, r.stderr
    doc = json.loads(r.stdout)
    assert doc["in_use"] is None
    assert all(not x["available"] and "root" in x["reason"] for x in doc["rungs"]), doc
