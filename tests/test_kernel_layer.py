"""KernelLayer on this kernel: the probe, fanotify and signal enforcement, scope, faults.

Every test marks only a private tmpfs (never a filesystem other people exec
from), guards only processes it starts, and stops the layer in a finally, so
a failing test cannot make anyone else's exec wait.
"""

from __future__ import annotations

import ctypes
import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from attyguard.kernel.events import (
    ALLOW,
    AlgSocketEvent,
    ConnectEvent,
    ExecDecision,
    ExecEvent,
    KernelEvent,
    Rung,
)
from attyguard.kernel.layer import DenyNotice, KernelLayer, Probe, probe
from tests.kernel_support import bpf_missing_reason, wait_for

pytestmark = pytest.mark.root

_libc = ctypes.CDLL(None, use_errno=True)


@pytest.fixture(scope="module")
def probed() -> Probe:
    reason = bpf_missing_reason()
    if reason:
        pytest.skip(reason)
    return probe()


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A private tmpfs holding a copy of true and a marker-writing script."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", str(mnt)], check=True)
    try:
        shutil.copy("/bin/true", mnt / "true")
        marker = mnt / "marker"
        script = mnt / "mk.sh"
        script.write_text(f"#!/bin/sh\ntouch {marker}\n")
        script.chmod(0o755)
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


class Shell:
    """A bash we guard, reading command lines from a pipe (so we choose when it execs)."""

    def __init__(self) -> None:
        # /bin/bash is on /, which the tests never mark: starting it cannot block.
        self.proc = subprocess.Popen(
            ["/bin/bash", "--norc", "--noprofile"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )
        self.pid = self.proc.pid

    def run(self, line: str, timeout: float = 20) -> tuple[int, str]:
        """Run one line in the guarded bash; (status, output)."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        tag = f"__done_{time.monotonic_ns()}__"
        self.proc.stdin.write(f"{line}\necho \"{tag} $?\"\n".encode())
        self.proc.stdin.flush()
        out: list[str] = []
        box: dict[str, int] = {}

        def reader() -> None:
            assert self.proc.stdout is not None
            for raw in self.proc.stdout:
                text = raw.decode(errors="replace")
                if text.startswith(tag):
                    box["rc"] = int(text.split()[1])
                    return
                out.append(text)

        t = threading.Thread(target=reader, daemon=True)
        t.start()
        t.join(timeout)
        if "rc" not in box:
            pytest.fail(f"guarded bash did not finish {line!r}; output so far: {''.join(out)!r}")
        return box["rc"], "".join(out)

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


@pytest.fixture
def shell() -> Iterator[Shell]:
    sh = Shell()
    try:
        yield sh
    finally:
        sh.close()


def _layer(
    pr: Probe,
    tmpfs: Path,
    decide: Callable[[ExecEvent], ExecDecision] = lambda ev: ALLOW,
    events: list[KernelEvent] | None = None,
    on_event: Callable[[KernelEvent], None] | None = None,
    **kw: object,
) -> KernelLayer:
    sink = events if events is not None else []
    return KernelLayer(pr, decide=decide, on_event=on_event or sink.append,
                       mark_paths=[str(tmpfs)], **kw)  # type: ignore[arg-type]


def _assert_answer_path(layer: KernelLayer, answer: str) -> None:
    """auto must be the C loop wherever dev.sh ran (it builds the helper)."""
    st = layer.status()
    assert st["answer_path"] == ("c" if answer == "auto" else "python"), \
        st["answer_path_reason"]


def deny_marker(ev: ExecEvent) -> ExecDecision:
    if any("mk.sh" in a for a in ev.argv) or ev.filename.endswith("mk.sh"):
        return ExecDecision(False, "test: marker script", ("test.marker",))
    return ALLOW


# --------------------------------------------------------------------------- probe


def _exec_service(mode: str = "enforce", deadline_ms: int = 2000, *,
                  to_pid: list[tuple[int, bytes]] | None = None,
                  followed: list[dict[str, object]] | None = None, **kwargs: Any) -> Any:
    """The daemon's exec guard on rung 2 as the daemon builds it (the real engine,
    the real process table); what it sends to shells and followers lands in the
    lists given."""
    from attyguard.daemon.execservice import ExecService
    from attyguard.daemon.threats import ProcfsProcessTable, ThreatMap
    from attyguard.engine.classify import classify

    def send_to_pid(pid: int, data: bytes) -> int:
        if to_pid is not None:
            to_pid.append((pid, data))
        return 1

    def send_to_followers(rec: dict[str, object], uid: int) -> None:
        if followed is not None:
            followed.append(rec)

    svc = ExecService(mode=mode, scope="sessions", group="", deadline_ms=deadline_ms,
                      engine=classify, threats=ThreatMap(ProcfsProcessTable()),
                      send_to_pid=send_to_pid, send_to_followers=send_to_followers,
                      **kwargs)
    svc.rung = Rung.FANOTIFY
    return svc


def test_probe_report_on_this_kernel(probed: Probe) -> None:
    lsm = probed.status(Rung.LSM)
    fan = probed.status(Rung.FANOTIFY)
    assert fan.available, fan.reason
    assert probed.status(Rung.SIGNAL).available
    assert probed.status(Rung.AUDIT).available
    if lsm.available:  # a kernel that allows BPF LSM: rung 1 is used
        assert probed.in_use is Rung.LSM
    else:  # this project's VMs: EPERM at load, and rung 2 takes over unasked
        assert "EPERM" in lsm.reason
        assert probed.in_use is Rung.FANOTIFY
    js = probed.to_json()
    assert [r["name"] for r in js["rungs"]] == ["lsm", "fanotify", "signal", "audit"]
    assert js["in_use"] == probed.in_use.value


@pytest.mark.parametrize("force", [Rung.FANOTIFY, Rung.SIGNAL, Rung.AUDIT])
def test_forced_rung_falls_through(probed: Probe, force: Rung) -> None:
    forced = probe(force)
    assert forced.in_use is force
    assert forced.to_json()["forced"] == force.value


def test_forcing_lsm_on_a_kernel_without_it_falls_to_fanotify(probed: Probe) -> None:
    if probed.status(Rung.LSM).available:
        pytest.skip("this kernel allows BPF LSM")
    assert probe(Rung.LSM).in_use is Rung.FANOTIFY


# --------------------------------------------------------------------------- rung 2


def test_fanotify_deny_makes_execve_fail_with_eperm(probed: Probe, tmpfs: Path,
                                                    shell: Shell) -> None:
    seen: list[ExecEvent] = []

    def decide(ev: ExecEvent) -> ExecDecision:
        seen.append(ev)
        return deny_marker(ev)

    layer = _layer(probe(Rung.FANOTIFY), tmpfs, decide, deadline_ms=2000)
    try:
        layer.start()
        layer.guard_tree(shell.pid)
        rc, out = shell.run(f"{tmpfs}/mk.sh one two")
        assert rc == 126, out
        assert "Operation not permitted" in out
        assert not (tmpfs / "marker").exists()
        rc, out = shell.run(f"{tmpfs}/true")
        assert rc == 0, out
        judged = [e for e in seen if e.filename.endswith("mk.sh")]
        assert judged and judged[0].argv == (f"{tmpfs}/mk.sh", "one", "two")
        assert judged[0].rung is Rung.FANOTIFY
        st = layer.status()
        assert st["rung"] == "fanotify" and st["events_denied"] >= 1
        assert st["deadline_misses"] == 0
    finally:
        layer.stop()
    layer.stop()  # idempotent


def _marked(layer: KernelLayer, path: Path) -> bool:
    return any(m["path"] == str(path) for m in layer.status()["marks"])


@pytest.mark.parametrize("answer", ["auto", "python"])
def test_a_filesystem_mounted_after_start_is_marked_and_judged(probed: Probe, tmpfs: Path,
                                                               shell: Shell,
                                                               tmp_path: Path,
                                                               answer: str) -> None:
    """A tmpfs mounted below a marked root after the layer started: its execs are judged
    (EPERM for what decide denies), and its mark is forgotten when it is unmounted. With
    the C answering loop (auto) and the Python reader: a new mark joins the group either
    one reads."""
    late = tmpfs / "late"
    late.mkdir()
    elsewhere = tmp_path / "elsewhere"  # not under a root: the policy leaves it alone
    elsewhere.mkdir()
    mounted: list[Path] = []
    layer = _layer(probe(Rung.FANOTIFY), tmpfs, deny_marker, deadline_ms=2000,
                   answer_path=answer)
    try:
        layer.start()
        _assert_answer_path(layer, answer)
        layer.guard_tree(shell.pid)
        assert not _marked(layer, late)
        for where in (late, elsewhere):
            subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(where)],
                           check=True)
            mounted.append(where)
        wait_for(lambda: _marked(layer, late), what="the late tmpfs to be marked")
        shutil.copy("/bin/true", late / "true")
        marker = late / "marker"
        (late / "mk.sh").write_text(f"#!/bin/sh\ntouch {marker}\n")
        (late / "mk.sh").chmod(0o755)
        rc, out = shell.run(f"{late}/mk.sh")
        assert rc == 126 and "Operation not permitted" in out, out
        assert not marker.exists()
        rc, out = shell.run(f"{late}/true")
        assert rc == 0, out
        assert not _marked(layer, elsewhere)
        subprocess.run(["umount", str(late)], check=True)
        mounted.remove(late)
        wait_for(lambda: not _marked(layer, late), what="the unmounted tmpfs to be forgotten")
        assert _marked(layer, tmpfs)  # the start mark stays
        # mounted again: a new filesystem, marked again
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(late)], check=True)
        mounted.append(late)
        wait_for(lambda: _marked(layer, late), what="the remounted tmpfs to be marked")
        assert layer.status()["deadline_misses"] == 0
    finally:
        layer.stop()
        for where in mounted:
            subprocess.run(["umount", "-l", str(where)], check=False)


# A child that copies /bin/touch into a memfd and runs it on a marker file:
# through execveat(fd, "", AT_EMPTY_PATH) (os.execve on an fd) or /proc/self/fd/N.
_MEMFD_CHILD = """
import os, sys
how, marker = sys.argv[1], sys.argv[2]
fd = os.memfd_create("payload", 0)
with open("/bin/touch", "rb") as f:
    os.write(fd, f.read())
if how == "execveat":
    os.execve(fd, ["touch", marker], {})
else:
    os.set_inheritable(fd, True)
    os.execv(f"/proc/self/fd/{fd}", ["touch", marker])
"""


@pytest.mark.parametrize("how", ["execveat", "proc-fd"])
@pytest.mark.parametrize("mode", ["enforce", "warn"])
def test_a_memfd_exec_in_a_guarded_tree(probed: Probe, tmpfs: Path, shell: Shell,
                                        mode: str, how: str) -> None:
    """memfds live where no fanotify mark reaches: enforce kills the exec from BPF before
    the program's first instruction; both modes judge it (with its argv) like any exec."""
    seen: list[ExecEvent] = []
    notices: list[DenyNotice] = []

    def decide(ev: ExecEvent) -> ExecDecision:
        seen.append(ev)
        if ev.exe_unnamed:
            return ExecDecision(False, "test: in-memory", ("exec.in-memory-executable",))
        return ALLOW

    marker = tmpfs / "memfd-ran"
    script = tmpfs / "memfd_child.py"
    script.write_text(_MEMFD_CHILD)
    layer = _layer(probe(Rung.FANOTIFY), tmpfs, decide, mode=mode, on_deny=notices.append)
    try:
        layer.start()
        layer.guard_tree(shell.pid)
        rc, out = shell.run(f"{sys.executable} {script} {how} {marker}")
        if mode == "enforce":
            assert rc == 128 + signal.SIGKILL, out
            assert not marker.exists()
        else:
            assert rc == 0, out
            assert marker.exists()
            wait_for(lambda: layer.status()["warned"] >= 1, what="the warn count")
        judged = wait_for(lambda: [e for e in seen if e.exe_unnamed], what="the judgement")
        assert isinstance(judged, list) and len(judged) == 1
        ev = judged[0]
        assert ev.argv == ("touch", str(marker))
        assert ev.filename == "/memfd:payload (deleted)", ev.filename
        assert notices == []  # decide denied it: the daemon knows already
        st = layer.status()
        assert st["kernel"]["signal_killed"] == (1 if mode == "enforce" else 0)
    finally:
        layer.stop()


def test_fanotify_warn_mode_denies_nothing_but_still_decides(probed: Probe, tmpfs: Path,
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
        rc, out = shell.run(f"{tmpfs}/mk.sh")
        assert rc == 0, out
        assert (tmpfs / "marker").exists()
        assert asked.wait(10)
        wait_for(lambda: layer.status()["warned"] == 1, what="the warn count")
        assert layer.status()["events_denied"] == 0
    finally:
        layer.stop()


def test_outside_the_scope_is_allowed_at_once(probed: Probe, tmpfs: Path) -> None:
    calls: list[ExecEvent] = []
    layer = _layer(probe(Rung.FANOTIFY), tmpfs, lambda ev: calls.append(ev) or ExecDecision(False))
    try:
        layer.start()
        r = subprocess.run([str(tmpfs / "true")], timeout=20)
        assert r.returncode == 0
        assert calls == []
        assert layer.status()["fast_path"] >= 1
    finally:
        layer.stop()


def test_deny_tree_and_deny_inode_by_fanotify(probed: Probe, tmpfs: Path, shell: Shell) -> None:
    notices: list[DenyNotice] = []
    # 2 s: the denies are Python's (a denied inode hands every event over); under load
    # the default 200 ms could pass first and the exec be allowed at the deadline
    layer = _layer(probe(Rung.FANOTIFY), tmpfs, on_deny=notices.append, deadline_ms=2000)
    other = Shell()
    try:
        layer.start()
        layer.guard_tree(shell.pid)
        layer.guard_tree(other.pid)
        st = os.stat(tmpfs / "mk.sh")
        layer.deny_inode(st.st_dev, st.st_ino)
        rc, out = shell.run(f"{tmpfs}/mk.sh")
        assert rc == 126 and "Operation not permitted" in out
        assert shell.run(f"{tmpfs}/true")[0] == 0
        layer.deny_tree(other.pid)
        rc, out = other.run(f"{tmpfs}/true")
        assert rc == 126 and "Operation not permitted" in out
        assert not (tmpfs / "marker").exists()
        # told after the answer is written (the exec resumes first): waited for
        wait_for(lambda: len(notices) >= 2, what="the second deny notice")
        assert [(n.reason, Path(n.filename).name) for n in notices] == [
            ("denied executable", "mk.sh"), ("critical tree", "true")]
        assert all(n.rung is Rung.FANOTIFY for n in notices)
    finally:
        other.close()
        layer.stop()


@pytest.mark.parametrize("policy", ["allow", "deny"])
def test_deadline_answers_a_slow_decision(probed: Probe, tmpfs: Path, shell: Shell,
                                          policy: str) -> None:
    release = threading.Event()

    def slow(ev: ExecEvent) -> ExecDecision:
        release.wait(30)
        return ExecDecision(False, "too late to matter")

    layer = _layer(probe(Rung.FANOTIFY), tmpfs, slow, deadline_ms=100, on_deadline=policy)
    try:
        layer.start()
        layer.guard_tree(shell.pid)
        t0 = time.monotonic()
        rc, out = shell.run(f"{tmpfs}/true")
        took = time.monotonic() - t0
        assert (rc == 0) if policy == "allow" else (rc == 126), out
        st = layer.status()
        assert st["deadline_misses"] == 1
        # answered by the deadline, not by the decision (still blocked)
        assert took < 10
    finally:
        release.set()
        layer.stop()


# --------------------------------------------------------------------------- rung 3


def test_signal_rung_kills_a_denied_tree_before_it_runs_anything(probed: Probe, tmpfs: Path,
                                                                 shell: Shell) -> None:
    pr = probe(Rung.SIGNAL)
    assert pr.in_use is Rung.SIGNAL
    notices: list[DenyNotice] = []
    layer = _layer(pr, tmpfs, on_deny=notices.append)
    try:
        layer.start()
        layer.guard_tree(shell.pid)
        assert shell.run(f"{tmpfs}/true")[0] == 0
        # bash's fork (a child of the denied tree) execs: killed in the kernel
        layer.deny_tree(shell.pid)
        rc, out = shell.run(f"{tmpfs}/mk.sh")
        assert rc == 128 + signal.SIGKILL, out
        assert not (tmpfs / "marker").exists()
        assert layer.status()["kernel"]["signal_killed"] >= 1
        wait_for(lambda: any(n.reason == "critical tree (killed)" for n in notices),
                 what="the kill notice")
    finally:
        layer.stop()


def test_signal_rung_kills_a_denied_inode_before_its_first_instruction(
    probed: Probe, tmpfs: Path, shell: Shell
) -> None:
    layer = _layer(probe(Rung.SIGNAL), tmpfs)
    try:
        layer.start()
        layer.guard_tree(shell.pid)
        st = os.stat(tmpfs / "mk.sh")
        layer.deny_inode(st.st_dev, st.st_ino)
        # exe_file is the interpreter for a script: deny the interpreter copy instead
        shutil.copy("/bin/sh", tmpfs / "sh")
        sh = os.stat(tmpfs / "sh")
        layer.deny_inode(sh.st_dev, sh.st_ino)
        rc, out = shell.run(f"{tmpfs}/sh -c 'touch {tmpfs}/marker'")
        assert rc == 128 + signal.SIGKILL, out
        assert not (tmpfs / "marker").exists()
        assert shell.run(f"{tmpfs}/true")[0] == 0
    finally:
        layer.stop()


def test_warn_mode_on_the_signal_rung_kills_nothing(probed: Probe, tmpfs: Path,
                                                    shell: Shell) -> None:
    layer = _layer(probe(Rung.SIGNAL), tmpfs, mode="warn")
    try:
        layer.start()
        layer.guard_tree(shell.pid)
        layer.deny_tree(shell.pid)
        assert shell.run(f"{tmpfs}/true")[0] == 0
        assert layer.status()["kernel"]["signal_killed"] == 0
    finally:
        layer.stop()


# --------------------------------------------------------------------------- events, scope


def test_events_reach_on_event_for_the_guarded_tree(probed: Probe, tmpfs: Path,
                                                    shell: Shell) -> None:
    events: list[KernelEvent] = []
    layer = _layer(probe(Rung.SIGNAL), tmpfs, events=events)
    try:
        layer.start()
        layer.guard_tree(shell.pid)
        code = ("import socket\n"
                "s = socket.socket(); s.settimeout(1)\n"
                "try: s.connect(('127.0.0.1', 9))\nexcept OSError: pass\n"
                "try: socket.socket(38, socket.SOCK_SEQPACKET, 0)\nexcept OSError: pass\n")
        rc, out = shell.run(f"{sys.executable} -c \"{code}\"")
        assert rc == 0, out

        def have() -> bool:
            kinds = {type(e) for e in list(events)}
            return {ExecEvent, ConnectEvent, AlgSocketEvent} <= kinds

        wait_for(have, what="exec, connect and AF_ALG events")
        conn = [e for e in events if isinstance(e, ConnectEvent)]
        assert any(c.address == "127.0.0.1" and c.port == 9 for c in conn)
    finally:
        layer.stop()


def test_a_guarded_tree_whose_shell_exits_leaves_no_map_entries(probed: Probe,
                                                                tmpfs: Path) -> None:
    layer = _layer(probe(Rung.FANOTIFY), tmpfs)
    sh = Shell()
    try:
        layer.start()
        layer.guard_tree(sh.pid)
        assert sh.run("sleep 60 & echo $!")[0] == 0
        kids = [p for p in layer.map_entries("guarded") if p != sh.pid]
        assert layer.map_entries("guarded").get(sh.pid) == sh.pid
        assert kids, "the forked child inherited nothing"
        layer.deny_tree(sh.pid)
        sh.run("kill %1; wait")
        sh.proc.stdin.close()  # type: ignore[union-attr]
        sh.proc.wait(10)
        wait_for(lambda: not (set(layer.map_entries("guarded")) & {sh.pid, *kids}),
                 what="the guarded entries to go")
        assert sh.pid not in layer.map_entries("denied")
    finally:
        sh.close()
        layer.stop()


def test_ring_buffer_overflow_is_counted(probed: Probe, tmpfs: Path, shell: Shell) -> None:
    # A 4 KiB ring cannot hold an exec record with 5 KiB of argv: each one is dropped.
    layer = _layer(probe(Rung.SIGNAL), tmpfs, ring_buffer_bytes=4096)
    try:
        layer.start()
        layer.guard_tree(shell.pid)
        big = " ".join(["x" * 1000] * 5)
        assert shell.run(f"{tmpfs}/true {big}")[0] == 0
        wait_for(lambda: layer.status()["events_dropped"] >= 1, what="a counted drop")
    finally:
        layer.stop()


def test_argv_bound_sets_the_truncation_flag(probed: Probe, tmpfs: Path, shell: Shell) -> None:
    events: list[KernelEvent] = []
    layer = _layer(probe(Rung.SIGNAL), tmpfs, events=events)
    try:
        layer.start()
        layer.guard_tree(shell.pid)
        args = " ".join(f"a{i}" for i in range(40))
        assert shell.run(f"{tmpfs}/true {args}")[0] == 0
        ev = wait_for(lambda: next((e for e in list(events) if isinstance(e, ExecEvent)
                                    and e.filename.endswith("/true")), None),
                      what="the exec event")
        assert isinstance(ev, ExecEvent)
        assert ev.argv_truncated
        assert len(ev.argv) == 32 and ev.argv[1] == "a0"
    finally:
        layer.stop()


# --------------------------------------------------------------------------- faults


def _storm(tmpfs: Path, n: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        ["/bin/bash", "--norc", "-c", f"read go; for i in $(seq {n}); do {tmpfs}/true; done; "
         "echo storm-done"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
    )


def _sensor(tmpfs: Path, guard: int, delay_ms: int, deadline_ms: int) -> subprocess.Popen[str]:
    child = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("kernel_sensor_child.py")), str(tmpfs),
         str(guard), str(delay_ms), str(deadline_ms)],
        stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[1],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    assert child.stdout is not None
    line = child.stdout.readline()
    if line.strip() != "ready":
        child.kill()
        child.wait()
        pytest.fail(f"sensor child did not start: {line!r}")
    return child


def test_sensor_sigkilled_mid_storm_leaves_no_task_blocked(probed: Probe, tmpfs: Path) -> None:
    storm = _storm(tmpfs, 300)
    sensor = None
    try:
        # every decision takes 20 ms: the storm is always waiting on the sensor
        sensor = _sensor(tmpfs, storm.pid, 20, 5000)
        assert storm.stdin is not None
        storm.stdin.write(b"go\n")
        storm.stdin.flush()
        # mid-storm: a guarded exec is waiting on the sensor's (slow) decision
        wait_for(lambda: _blocked_in_fanotify(storm.pid), what="an exec waiting on the sensor")
        os.kill(sensor.pid, signal.SIGKILL)
        sensor.wait(10)
        out, _ = storm.communicate(timeout=60)  # fails if any exec stays blocked
        assert b"storm-done" in out
        assert storm.returncode == 0
    finally:
        if sensor is not None and sensor.poll() is None:
            sensor.kill()
            sensor.wait()
        storm.kill()
        storm.wait()


def test_sensor_sigstopped_mid_storm_blocks_guarded_execs_until_resumed(
    probed: Probe, tmpfs: Path
) -> None:
    """What SIGSTOP does: every exec on a marked filesystem waits, guarded or not (the
    fast path is answered in userspace, and the kernel has no timeout for permission
    events); on SIGCONT the expired deadlines are answered at once and execs flow; a
    stopped sensor that is then killed releases them. In production the bound is the
    daemon's watchdog (status()["heartbeat_age_s"])."""
    storm = _storm(tmpfs, 100000)
    sensor = None
    try:
        sensor = _sensor(tmpfs, storm.pid, 0, 100)
        assert storm.stdin is not None
        storm.stdin.write(b"go\n")
        storm.stdin.flush()
        wait_for(lambda: _exec_count(storm.pid) > 0, what="the storm to start")
        os.kill(sensor.pid, signal.SIGSTOP)
        try:
            # The storm's current exec is blocked: its state is D (uninterruptible
            # wait in fanotify) or S, and its exec count no longer moves.
            wchan_seen = wait_for(
                lambda: _blocked_in_fanotify(storm.pid), timeout=10,
                what="the storm to block on the stopped sensor",
            )
            assert wchan_seen
            t_stop = time.monotonic()
            before = _exec_count(storm.pid)
            outsider_done = threading.Event()

            def outsider() -> None:  # not in any guarded tree
                subprocess.run([str(tmpfs / "true")], timeout=60)
                outsider_done.set()

            threading.Thread(target=outsider, daemon=True).start()
            # Not a synchronisation: a measurement window (the bound of the stop).
            time.sleep(0.5)
            assert _exec_count(storm.pid) == before
            assert not outsider_done.is_set(), "an unguarded exec passed a stopped sensor"
            assert time.monotonic() - t_stop < 5
        finally:
            os.kill(sensor.pid, signal.SIGCONT)
        assert outsider_done.wait(20), "the unguarded exec stayed blocked after SIGCONT"
        # resumed: execs flow again
        resumed_from = _exec_count(storm.pid)
        wait_for(lambda: _exec_count(storm.pid) > resumed_from + 5, what="execs to resume")
        # stop again, then kill while stopped: the kernel releases the waiters
        os.kill(sensor.pid, signal.SIGSTOP)
        wait_for(lambda: _blocked_in_fanotify(storm.pid), timeout=10, what="blocked again")
        os.kill(sensor.pid, signal.SIGKILL)
        sensor.wait(10)
        after_kill = _exec_count(storm.pid)
        wait_for(lambda: _exec_count(storm.pid) > after_kill + 5, what="execs after the kill")
    finally:
        if sensor is not None and sensor.poll() is None:
            os.kill(sensor.pid, signal.SIGCONT)
            sensor.kill()
            sensor.wait()
        storm.kill()
        storm.wait()


def _exec_count(pid: int) -> int:
    """A cursor that moves with each exec of the storm: the pid of its current child
    (the storm forks one child per exec, one at a time, so the pid grows)."""
    try:
        kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return -1
    return int(kids[-1]) if kids else 0


def _blocked_in_fanotify(pid: int) -> bool:
    try:
        kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        if not kids:
            return False
        wchan = Path(f"/proc/{kids[-1]}/wchan").read_text()
    except OSError:
        return False
    return "fanotify" in wchan or "fsnotify" in wchan



# --------------------------------------------------------------------------- default marks


def test_default_exec_paths_cover_writable_places_once_per_filesystem() -> None:
    from attyguard.kernel import fanotify as fan

    paths = fan.default_exec_paths("/usr/bin:relative:/nonexistent-dir")
    assert "/usr/bin" in paths and "/tmp" in paths and "/dev/shm" in paths
    assert "relative" not in paths and "/nonexistent-dir" not in paths
    distinct = fan.distinct_filesystems(paths)
    devs = [os.stat(p).st_dev for p in distinct]
    assert len(devs) == len(set(devs))
    assert {os.stat(p).st_dev for p in paths} == set(devs)


def test_default_marks_judge_a_real_program_with_its_argv(probed: Probe, shell: Shell) -> None:
    """The production marks (the real filesystems), briefly: a guarded exec of /bin/true is
    judged with its argv and resolved path; everyone else takes the fast path."""
    seen: list[ExecEvent] = []

    def decide(ev: ExecEvent) -> ExecDecision:
        seen.append(ev)
        return ALLOW

    layer = KernelLayer(probe(Rung.FANOTIFY), decide=decide, on_event=lambda ev: None,
                        deadline_ms=2000)
    try:
        layer.start()
        assert any(m[0] == "/tmp" or os.stat(m[0]).st_dev == os.stat("/tmp").st_dev
                   for m in layer.marks)
        layer.guard_tree(shell.pid)
        rc, out = shell.run("/bin/true judged-arg")
        assert rc == 0, out
        judged = [e for e in seen if e.argv[1:] == ("judged-arg",)]
        assert judged, f"not judged; decide saw {[e.argv for e in seen]}"
        ev = judged[0]
        assert ev.argv[0] == "/bin/true"
        assert os.path.realpath(ev.filename) == os.path.realpath("/bin/true")
        assert not ev.argv_truncated
        assert layer.status()["deadline_misses"] == 0
    finally:
        layer.stop()


@pytest.mark.parametrize("answer", ["auto", "python"])
def test_a_memfd_exec_is_refused_by_the_daemons_own_rule(probed: Probe, tmpfs: Path,
                                                         shell: Shell, answer: str) -> None:
    """The real exec judge (patterns/exec/ rules, threat map) behind the layer: the memfd
    exec is killed, recorded as a block by `exec.in-memory-executable`, and the shell told.
    The kill and its record reach Python through the C loop's queue too (auto)."""
    from attyguard.daemon.threats import ThreatLevel

    to_pid: list[tuple[int, bytes]] = []
    followed: list[dict[str, object]] = []
    svc = _exec_service(to_pid=to_pid, followed=followed)
    marker = tmpfs / "memfd-ran"
    script = tmpfs / "memfd_child.py"
    script.write_text(_MEMFD_CHILD)
    layer = _layer(probe(Rung.FANOTIFY), tmpfs, svc.decide, deadline_ms=2000,
                   on_deny=svc.on_deny, answer_path=answer,
                   on_event=svc.on_event)  # as the daemon wires it (fork/exit records)
    try:
        layer.start()
        _assert_answer_path(layer, answer)
        svc.layer = layer
        assert svc.register(shell.pid)
        rc, out = shell.run(f"{sys.executable} {script} execveat {marker}")
        assert rc == 128 + signal.SIGKILL, out
        assert not marker.exists()
        blocks = wait_for(lambda: [r for r in followed if r.get("action") == "block"],
                          what="the block record")
        assert isinstance(blocks, list)
        assert "exec.in-memory-executable" in blocks[0]["rules"]
        assert blocks[0]["argv"] == ["touch", str(marker)]
        # The shell is told from the deny callback's thread: it may come after the record.
        assert wait_for(lambda: any(b'"refused"' in data and b"REFUSED" in data
                                    for _, data in to_pid), what="the REFUSED notice")
        assert svc.threats.level_of(shell.pid)[0] is ThreatLevel.CRITICAL
    finally:
        svc.layer = None
        layer.stop()


def test_wait_record_hands_over_a_record_that_comes_later(probed: Probe, tmpfs: Path) -> None:
    """decide's threads may wait for an execve record that is late (not lost): it is taken,
    so the exec's later opens count as follow-ups."""
    proc = subprocess.Popen(
        [sys.executable, "-c", "import os, sys; sys.stdin.readline(); "
         "os.execv('/bin/sleep', ['sleep', '30'])"], stdin=subprocess.PIPE)
    layer = _layer(probe(Rung.FANOTIFY), tmpfs)
    got: list[ExecEvent | None] = []
    try:
        layer.start()
        layer.guard_tree(proc.pid)
        assert layer.wait_record(proc.pid, 0.05) is None  # nothing yet: bounded, None
        waiter = threading.Thread(target=lambda: got.append(layer.wait_record(proc.pid, 20)))
        waiter.start()
        assert proc.stdin is not None
        proc.stdin.write(b"go\n")
        proc.stdin.flush()
        waiter.join(30)
        assert got and got[0] is not None, got
        assert got[0].argv == ("sleep", "30") and got[0].tgid == proc.pid
        assert layer.wait_record(proc.pid, 0.05) is None  # taken, not left for another
        assert layer.status()["late_records"] == 1
    finally:
        proc.kill()
        proc.wait()
        layer.stop()


@pytest.mark.parametrize("answer", ["auto", "python"])
@pytest.mark.parametrize("mode", ["enforce", "warn"])
def test_an_exec_whose_record_is_lost(probed: Probe, tmpfs: Path, shell: Shell,
                                      mode: str, answer: str) -> None:
    """A 4 KiB ring cannot hold an exec record with 5 KiB of argv: the permission event
    comes alone. The daemon waits (bounded) for the record, then in enforce refuses the
    exec unjudged, records it as such and tells the shell, without locking its tree;
    warn lets it run and records the path-only judgement."""
    from attyguard.daemon.threats import ThreatLevel

    to_pid: list[tuple[int, bytes]] = []
    followed: list[dict[str, object]] = []
    svc = _exec_service(mode=mode, deadline_ms=1000, to_pid=to_pid, followed=followed)
    layer = _layer(probe(Rung.FANOTIFY), tmpfs, svc.decide, mode=mode, deadline_ms=1000,
                   ring_buffer_bytes=4096, on_deny=svc.on_deny, answer_path=answer,
                   on_event=svc.on_event)  # as the daemon wires it (fork/exit records)
    try:
        layer.start()
        _assert_answer_path(layer, answer)
        svc.layer = layer
        assert svc.register(shell.pid)
        big = " ".join(["x" * 1000] * 5)
        rc, out = shell.run(f"{tmpfs}/true {big}")
        lost = wait_for(lambda: [r for r in followed if r.get("no_record")],
                        what="the no-record decision")
        assert isinstance(lost, list) and len(lost) == 1
        assert lost[0]["program"] == f"{tmpfs}/true" and lost[0]["argv"] == [f"{tmpfs}/true"]
        st = layer.status()
        assert st["events_dropped"] >= 1 and st["no_tracepoint_record"] == 1
        assert st["deadline_misses"] == 0
        if mode == "enforce":
            assert rc == 126 and "Operation not permitted" in out, out
            assert lost[0]["action"] == "block" and lost[0]["rules"] == ["exec.no-record"]
            assert len([d for _, d in to_pid if b'"refused"' in d]) == 1
            # not the user's doing: the tree is not locked, the next exec runs
            assert svc.threats.level_of(shell.pid)[0] is ThreatLevel.NONE
            assert shell.run(f"{tmpfs}/true")[0] == 0
        else:
            assert rc == 0, out
            assert lost[0]["action"] == "allow"
        assert svc.status()["counters"]["no_record"] == 1
    finally:
        svc.layer = None
        layer.stop()


@pytest.mark.parametrize("answer", ["auto", "python"])
def test_warn_records_every_exec_of_a_line_that_ends_in_place(probed: Probe, tmpfs: Path,
                                                              shell: Shell,
                                                              answer: str) -> None:
    """bash -c 'a; b; c' forks for a and b and execs c in place: two execs of one task
    within milliseconds. In warn the notifications are read after the task went on, so
    the second exec's open used to pass for a follow-up of the first (its ELF loader)
    and c went unjudged. Each exec that ran is judged once, with its own argv."""
    shutil.copy("/bin/bash", tmpfs / "bash")
    seen: list[tuple[int, tuple[str, ...]]] = []
    lock = threading.Lock()

    def decide(ev: ExecEvent) -> ExecDecision:
        with lock:
            seen.append((ev.tgid, ev.argv))
        return ALLOW

    layer = _layer(probe(Rung.FANOTIFY), tmpfs, decide, mode="warn", answer_path=answer)
    rounds = 20
    scripts = [f"{tmpfs}/true a{i}; {tmpfs}/true b{i}; {tmpfs}/true c{i}" for i in range(rounds)]
    try:
        layer.start()
        _assert_answer_path(layer, answer)
        layer.guard_tree(shell.pid)
        for script in scripts:
            rc, out = shell.run(f"{tmpfs}/bash --norc -c '{script}'")
            assert rc == 0, out
        want = sorted([(f"{tmpfs}/bash", "--norc", "-c", sc) for sc in scripts]
                      + [(f"{tmpfs}/true", f"{x}{i}") for i in range(rounds) for x in "abc"])

        deadline = time.monotonic() + 15  # warn judges after the fact: wait for it
        while True:
            with lock:
                got = sorted(argv for _, argv in seen)
                by_argv = {argv: tgid for tgid, argv in seen}
            missing = [a for a in want if a not in got]
            if not missing or time.monotonic() > deadline:
                break
            time.sleep(0.01)
        assert not missing, (missing, layer.status())
        assert got == want, ([a for a in got if a not in want], layer.status())  # once each
        for i, sc in enumerate(scripts):  # c ran in place: bash's own second exec
            assert by_argv[(f"{tmpfs}/true", f"c{i}")] == by_argv[
                (f"{tmpfs}/bash", "--norc", "-c", sc)]
    finally:
        layer.stop()


@pytest.mark.parametrize("answer", ["auto", "python"])
def test_a_lost_record_right_after_an_allowed_exec_is_no_follow_up(
        probed: Probe, tmpfs: Path, shell: Shell, answer: str) -> None:
    """A guarded bash execs (allowed), then within milliseconds execs in place a
    program whose record cannot fit the 4 KiB ring buffer. Its permission event is no
    follow-up of bash's exec (the kernel's exec_state says a new execve began), so
    enforce refuses it as exec.no-record instead of letting it through unjudged."""

    shutil.copy("/bin/bash", tmpfs / "bash")
    followed: list[dict[str, object]] = []
    svc = _exec_service(deadline_ms=1000, followed=followed)
    layer = _layer(probe(Rung.FANOTIFY), tmpfs, svc.decide, deadline_ms=1000,
                   ring_buffer_bytes=4096, on_deny=svc.on_deny, answer_path=answer,
                   on_event=svc.on_event)
    try:
        layer.start()
        _assert_answer_path(layer, answer)
        svc.layer = layer
        assert svc.register(shell.pid)
        # five 1,000-byte arguments, built inside bash: only the second exec's record
        # is too big for the ring
        rc, out = shell.run(f"{tmpfs}/bash --norc -c "
                            f"'x=$(printf %01000d 0); exec {tmpfs}/true $x $x $x $x $x'")
        lost = wait_for(lambda: [r for r in followed if r.get("no_record")],
                        what="the no-record decision")
        assert isinstance(lost, list) and len(lost) == 1, followed
        assert lost[0]["program"] == f"{tmpfs}/true"
        assert lost[0]["action"] == "block" and lost[0]["rules"] == ["exec.no-record"]
        assert rc == 126 and "Operation not permitted" in out, (rc, out)
        bash = [r for r in followed if r.get("program") == f"{tmpfs}/bash"]
        assert not bash or all(r["action"] == "allow" for r in bash), bash
        assert layer.status()["events_dropped"] >= 1
    finally:
        svc.layer = None
        layer.stop()


@pytest.mark.parametrize("answer", ["auto", "python"])
def test_a_scripts_interpreter_is_a_follow_up_of_its_exec(probed: Probe, tmpfs: Path,
                                                         shell: Shell, answer: str) -> None:
    """`./s` with `#!<tmpfs>/bash`: the exec opens the script, then its interpreter,
    both on the marked tmpfs, before the exec completes (sched_process_exec comes
    after them on this kernel). The interpreter's open is a follow-up of the allowed
    exec: judged once, with the script's argv, and never refused as an exec without
    a record."""
    shutil.copy("/bin/bash", tmpfs / "bash")
    script = tmpfs / "s"
    script.write_text(f"#!{tmpfs}/bash --norc\necho ran-$1\n")
    script.chmod(0o755)
    seen: list[ExecEvent] = []
    layer = _layer(probe(Rung.FANOTIFY), tmpfs, lambda ev: seen.append(ev) or ALLOW,
                   answer_path=answer, deadline_ms=2000, on_deadline="deny")
    try:
        layer.start()
        _assert_answer_path(layer, answer)
        layer.guard_tree(shell.pid)
        for i in range(5):
            rc, out = shell.run(f"{script} {i}")
            assert rc == 0 and f"ran-{i}" in out, (rc, out)
        st = layer.status()
        assert st["deadline_misses"] == 0 and st["no_tracepoint_record"] == 0, st
        assert sorted(ev.argv for ev in seen) == [(str(script), str(i)) for i in range(5)]
        if answer == "auto":
            assert st["answered_in_c"]["follow_ups"] >= 5, st
    finally:
        layer.stop()


_MEMFD_RUN = """\
import os, sys
fd = os.memfd_create("s", 0)  # no MFD_CLOEXEC: the exec'd program keeps it
os.write(fd, sys.argv[1].encode())
argv = [a.replace("FD", str(fd)) for a in sys.argv[2:]]
try:
    os.execv(argv[0], argv)
except PermissionError:
    sys.exit(126)
"""


@pytest.mark.parametrize("how", ["bash-arg", "direct"])
def test_a_memfd_script_is_read_through_the_tasks_fd(probed: Probe, tmpfs: Path,
                                                     shell: Shell, how: str) -> None:
    """A script held in a memfd (no file anywhere) and run as `bash /proc/self/fd/N`,
    or exec'd directly through /proc/self/fd/N with a #! line (fanotify then sees only
    its interpreter's open): the daemon reads it through the exec'ing task's own fd
    while the exec waits, and enforce refuses what the script would run."""

    shutil.copy("/bin/bash", tmpfs / "bash")
    marker = tmpfs / "ran"
    body = f"touch {marker}\necho aGk= | base64 -d | sh\n"  # Tier-1 blocks the 2nd line
    if how == "bash-arg":
        text, argv = body, f"{tmpfs}/bash /proc/self/fd/FD"
    else:
        text, argv = f"#!{tmpfs}/bash\n{body}", "/proc/self/fd/FD"
    followed: list[dict[str, object]] = []
    svc = _exec_service(followed=followed)
    layer = _layer(probe(Rung.FANOTIFY), tmpfs, svc.decide, deadline_ms=2000,
                   on_deny=svc.on_deny, on_event=svc.on_event)
    try:
        layer.start()
        svc.layer = layer
        assert svc.register(shell.pid)
        rc, out = shell.run(f"{sys.executable} -c {shlex.quote(_MEMFD_RUN)} "
                            f"{shlex.quote(text)} {argv}")
        assert rc == 126, (rc, out, followed)
        assert not marker.exists()
        blocked = [r for r in followed if r.get("action") == "block"]
        assert blocked and "/proc/self/fd/" in " ".join(map(str, blocked[0]["argv"])) + str(
            blocked[0]["program"]), followed
    finally:
        svc.layer = None
        layer.stop()


def test_a_cached_allow_never_outlives_a_critical_mark(probed: Probe, tmpfs: Path,
                                                      shell: Shell) -> None:
    """The daemon's decide marks plain allows cacheable; rung 2's C loop answers repeats
    from its cache. Once a tree is marked Critical, the same command in it is refused,
    and nothing is cached while a Critical mark stands (the key names no tree)."""
    from attyguard.daemon.threats import ThreatLevel

    svc = _exec_service(rules=())  # no age rule: a file copied just now may be cached
    other = Shell()
    layer = _layer(probe(Rung.FANOTIFY), tmpfs, svc.decide, deadline_ms=2000,
                   on_deny=svc.on_deny,
                   on_event=svc.on_event)  # as the daemon wires it (fork/exit records)
    try:
        layer.start()
        _assert_answer_path(layer, "auto")
        svc.layer = layer
        assert svc.register(shell.pid) and svc.register(other.pid)
        # stdin from /dev/null: a pipe on fd 0 (the test's bash reads one) is never cached
        line = f"{tmpfs}/true same </dev/null"
        for _ in range(3):
            assert shell.run(line)[0] == 0
        assert layer.status()["answered_in_c"]["cached"] >= 1
        svc.threats.mark(shell.pid, ThreatLevel.CRITICAL, "test: locked")
        rc, out = shell.run(line)
        assert rc == 126 and "Operation not permitted" in out, out
        # another tree's allow of the same exec is not cached meanwhile …
        before = layer.status()["answered_in_c"]["cached"]
        for _ in range(3):
            assert other.run(line)[0] == 0
        assert layer.status()["answered_in_c"]["cached"] == before
        # … so the locked tree cannot borrow it
        rc, out = shell.run(line)
        assert rc == 126 and "Operation not permitted" in out, out
    finally:
        svc.layer = None
        layer.stop()
        other.close()
