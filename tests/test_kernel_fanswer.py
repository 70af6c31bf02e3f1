"""Rung 2's C answering loop (attyguard/kernel/fanswer.c) against the real kernel.

What C answers by itself (out of scope, ELF-interpreter follow-ups, cached
allows) is counted in status()["answered_in_c"]; what it hands over is still
judged by Python (EPERM in enforce); its own deadline answers when the Python
side is stuck; without the compiled helper the Python reader answers and says
so; a SIGKILL of the process mid-storm leaves no task blocked.

Like tests/test_kernel_layer.py (whose fixtures these reuse), every test marks
only a private tmpfs and stops what it starts in a finally.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from attyguard.kernel import build
from attyguard.kernel import fanotify as fan
from attyguard.kernel.events import ALLOW, ExecDecision, ExecEvent, KernelEvent, Rung
from attyguard.kernel.layer import KernelLayer, Probe, probe
from tests import test_kernel_layer as kl
from tests.kernel_support import wait_for
from tests.test_kernel_layer import Shell, _exec_count, _layer, _storm, deny_marker

pytestmark = pytest.mark.root

CACHEABLE = ExecDecision(True, cacheable=True)
# test_kernel_layer's fixtures (a private tmpfs, a guarded bash, the probe)
probed, tmpfs, shell = kl.probed, kl.tmpfs, kl.shell


@pytest.fixture
def helper(probed: Probe) -> None:
    """The compiled helper must be there wherever dev.sh ran (it builds it)."""
    reason = build.helper_stale_reason()
    if reason is not None:
        # dev.sh builds it; a stale one is rebuilt here rather than skipping
        made = build.build_helper()
        assert isinstance(made, Path), f"cannot build the helper: {made}"
    assert not isinstance(fan.load_helper(), str), fan.load_helper()


def test_repeated_allowed_execs_are_answered_in_c(probed: Probe, helper: None, tmpfs: Path,
                                                  shell: Shell) -> None:
    calls: list[ExecEvent] = []

    def decide(ev: ExecEvent) -> ExecDecision:
        calls.append(ev)
        return CACHEABLE

    layer = _layer(probe(Rung.FANOTIFY), tmpfs, decide)
    try:
        layer.start()
        layer.guard_tree(shell.pid)
        st = layer.status()
        assert st["answer_path"] == "c", st["answer_path_reason"]
        rc, out = shell.run(f"for i in $(seq 30); do {tmpfs}/true x; done")
        assert rc == 0, out
        # out of scope: answered in C without a decision
        assert subprocess.run([str(tmpfs / "true")], timeout=20).returncode == 0
        st = layer.status()
        c = st["answered_in_c"]
        assert c["cached"] >= 25, st
        assert c["fast_path"] >= 1, st
        assert len(calls) <= 5, [e.argv for e in calls]
        assert all(e.argv == (f"{tmpfs}/true", "x") for e in calls)
        # another argv is a different key: judged again, once
        assert shell.run(f"{tmpfs}/true y; {tmpfs}/true y")[0] == 0
        assert [e.argv for e in calls].count((f"{tmpfs}/true", "y")) == 1
        # forgotten on request (a tree marked Critical, rules reloaded): judged again
        layer.clear_verdict_cache()
        assert shell.run(f"{tmpfs}/true y")[0] == 0
        assert [e.argv for e in calls].count((f"{tmpfs}/true", "y")) == 2
        assert st["deadline_misses"] == 0
    finally:
        layer.stop()


def test_in_scope_execs_are_still_judged_by_python_and_denied(probed: Probe, helper: None,
                                                              tmpfs: Path, shell: Shell) -> None:
    seen: list[ExecEvent] = []

    def decide(ev: ExecEvent) -> ExecDecision:
        seen.append(ev)
        d = deny_marker(ev)
        return d if not d.allow else ExecDecision(True)  # allows here are not cacheable

    layer = _layer(probe(Rung.FANOTIFY), tmpfs, decide, deadline_ms=5000)
    try:
        layer.start()
        layer.guard_tree(shell.pid)
        for _ in range(2):  # a deny is never cached: refused each time
            rc, out = shell.run(f"{tmpfs}/mk.sh a b")
            assert rc == 126 and "Operation not permitted" in out, out
        assert not (tmpfs / "marker").exists()
        assert shell.run(f"{tmpfs}/true; {tmpfs}/true; {tmpfs}/true")[0] == 0
        st = layer.status()
        assert st["answer_path"] == "c"
        assert st["answered_in_c"]["cached"] == 0, st
        assert st["handed_to_python"] >= 5
        assert [e.argv for e in seen if e.filename.endswith("mk.sh")] == \
            [(f"{tmpfs}/mk.sh", "a", "b")] * 2
        assert sum(e.filename.endswith("/true") for e in seen) == 3
        assert st["events_denied"] >= 2
    finally:
        layer.stop()


@pytest.mark.parametrize("policy", ["allow", "deny"])
def test_c_answers_at_the_deadline_when_python_is_stuck(probed: Probe, helper: None, tmpfs: Path,
                                                        shell: Shell, policy: str) -> None:
    """The Python reader thread blocked (in on_event) never pops the handed event:
    C answers it at the deadline by itself."""
    release = threading.Event()
    stuck = threading.Event()

    def on_event(ev: KernelEvent) -> None:
        if isinstance(ev, ExecEvent) and ev.filename.endswith("/true"):
            stuck.set()
            release.wait(30)

    # on_event runs on the Python reader thread: blocking it blocks the reader
    layer = KernelLayer(probe(Rung.FANOTIFY), decide=lambda ev: CACHEABLE, on_event=on_event,
                        mark_paths=[str(tmpfs)], deadline_ms=150, on_deadline=policy)
    try:
        layer.start()
        layer.guard_tree(shell.pid)
        t0 = time.monotonic()
        rc, out = shell.run(f"{tmpfs}/true")
        took = time.monotonic() - t0
        assert stuck.is_set() and not release.is_set()  # Python did not answer
        assert (rc == 0) if policy == "allow" else (rc == 126), out
        assert took < 10
        assert layer.status()["answered_in_c"]["deadline_answers"] == 1
    finally:
        release.set()
        layer.stop()
    # once unstuck, Python's late answer counts nothing twice
    assert layer.status()["deadline_misses"] == 1


def test_without_the_helper_the_python_reader_answers_and_says_so(
        probed: Probe, tmpfs: Path, shell: Shell, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "nowhere"
    monkeypatch.setattr(build, "helper_path", lambda out_dir=missing: missing / "_fanswer.so")
    monkeypatch.setattr(fan, "_helper", None)
    monkeypatch.setattr(fan, "_helper_error", None)
    pr = probe(Rung.FANOTIFY)
    assert pr.to_json()["answer_path"] == "python"
    assert "not built" in pr.to_json()["answer_path_reason"]
    layer = _layer(pr, tmpfs, deny_marker, deadline_ms=5000)
    try:
        layer.start()
        layer.guard_tree(shell.pid)
        st = layer.status()
        assert st["answer_path"] == "python"
        assert "not built" in st["answer_path_reason"]
        rc, out = shell.run(f"{tmpfs}/mk.sh")
        assert rc == 126 and "Operation not permitted" in out
        assert shell.run(f"{tmpfs}/true")[0] == 0
        st = layer.status()
        assert st["handed_to_python"] == 0 and st["answered_in_c"]["cached"] == 0
        assert st["permission_events"] >= 2
    finally:
        layer.stop()


def test_a_stale_helper_is_not_loaded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    so = tmp_path / "_fanswer.so"
    so.write_bytes(b"not a shared object")
    Path(f"{so}.sha256").write_text("0" * 64 + "\n")
    monkeypatch.setattr(build, "helper_path", lambda out_dir=tmp_path: so)
    assert "stale" in (build.helper_stale_reason() or "")


def test_warn_mode_uses_notifications_not_permission_events(probed: Probe, tmpfs: Path,
                                                             shell: Shell) -> None:
    asked = threading.Event()

    def decide(ev: ExecEvent) -> ExecDecision:
        d = deny_marker(ev)
        if not d.allow:
            asked.set()
        return d

    layer = _layer(probe(Rung.FANOTIFY), tmpfs, decide, mode="warn")
    try:
        layer.start()
        layer.guard_tree(shell.pid)
        assert shell.run(f"{tmpfs}/mk.sh")[0] == 0
        assert asked.wait(10)
        wait_for(lambda: layer.status()["warned"] == 1, what="the warn count")
        st = layer.status()
        assert st["fanotify"] == "notification" and st["marks"], st
        assert st["events_denied"] == 0 and st["deadline_misses"] == 0
    finally:
        layer.stop()


def test_c_loop_sigkilled_mid_storm_leaves_no_task_blocked(probed: Probe, helper: None,
                                                           tmpfs: Path) -> None:
    storm = _storm(tmpfs, 3000)
    sensor = None
    try:
        sensor = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("kernel_sensor_child.py")),
             str(tmpfs), str(storm.pid), "0", "5000", "cacheable"],
            stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[1],
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
        )
        assert sensor.stdout is not None
        assert sensor.stdout.readline().strip() == "ready c"
        assert storm.stdin is not None
        storm.stdin.write(b"go\n")
        storm.stdin.flush()
        wait_for(lambda: _exec_count(storm.pid) > 0, what="the storm to start")
        start = _exec_count(storm.pid)
        wait_for(lambda: _exec_count(storm.pid) > start + 50, what="the storm under the C loop")
        os.kill(sensor.pid, signal.SIGKILL)
        sensor.wait(10)
        out, _ = storm.communicate(timeout=120)  # fails if any exec stays blocked
        assert b"storm-done" in out
        assert storm.returncode == 0
    finally:
        if sensor is not None and sensor.poll() is None:
            sensor.kill()
            sensor.wait()
        storm.kill()
        storm.wait()


def test_heartbeat_with_the_c_loop_fresh_when_idle_stale_when_the_reader_is_stuck(
        probed: Probe, helper: None, tmpfs: Path, shell: Shell) -> None:
    """What the daemon's watchdog reads (`heartbeat_age_s`): with C answering, an idle
    layer's heartbeat stays fresh (both loops turn every 50 ms), and a Python reader
    stuck in a callback lets it go stale while C goes on answering (at the deadline)."""
    stuck = threading.Event()
    release = threading.Event()

    def on_event(ev: object) -> None:
        if isinstance(ev, ExecEvent) and ev.argv[1:] == ("stick",):
            stuck.set()
            release.wait(30)

    layer = KernelLayer(probe(Rung.FANOTIFY), decide=lambda ev: ALLOW, on_event=on_event,
                        mark_paths=[str(tmpfs)], deadline_ms=200)
    try:
        layer.start()
        st = layer.status()
        assert st["answer_path"] == "c", st["answer_path_reason"]
        layer.guard_tree(shell.pid)
        # Not a synchronisation: a measurement window (idle, the age must stay small).
        end = time.monotonic() + 1.0
        while time.monotonic() < end:
            age = layer.status()["heartbeat_age_s"]
            assert age is not None and age < 0.5, age
            time.sleep(0.05)
        assert shell.run(f"{tmpfs}/true stick")[0] == 0  # C answers at the deadline
        assert stuck.wait(20), "the record never reached the reader"
        wait_for(lambda: layer.status()["heartbeat_age_s"] > 1.0, what="a stale heartbeat")
        assert shell.run(f"{tmpfs}/true other")[0] == 0  # C still answers meanwhile
        release.set()
        wait_for(lambda: layer.status()["heartbeat_age_s"] < 0.5, what="a fresh heartbeat")
    finally:
        release.set()
        layer.stop()
