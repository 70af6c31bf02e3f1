"""`attyguard daemon --probe [--json] [--rung R]` as a user runs it."""

from __future__ import annotations

import json
import os
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
    try:
        r = _probe("--json", user=65534)
    except PermissionError as exc:  # e.g. the interpreter lives under /root
        pytest.skip(f"user nobody cannot run this interpreter: {exc}")
    assert r.returncode == 1, r.stderr
    doc = json.loads(r.stdout)
    assert doc["in_use"] is None
    assert all(not x["available"] and "root" in x["reason"] for x in doc["rungs"]), doc
