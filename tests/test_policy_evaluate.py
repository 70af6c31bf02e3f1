"""Pure evaluation: matching, inheritance, every check, actions per mode, stats."""

from __future__ import annotations

import socket

import pytest

from attyguard.kernel.events import ConnectEvent, ExecEvent, ExitEvent, ForkEvent
from attyguard.policy.evaluate import Evaluator, syscall_severity
from attyguard.policy.load import parse_policy
from attyguard.policy.model import (
    Mode,
    OpenEvent,
    ResourceSample,
    Severity,
    SyscallEvent,
    ViolationAction,
    ViolationType,
)

POLICY = """\
mode: audit
processes:
  worker:
    match: {exe: /opt/w/bin/worker}
    allowed_exec: [sh, /usr/bin/*]
    blocked_syscalls: [ptrace, mount, clone3]
    allowed_files: ["/srv/**"]
    blocked_files: ["/srv/secret/*"]
    allowed_network: ["10.0.0.0/8:443"]
    blocked_network: ["10.9.0.0/16"]
    max_memory_mb: 100
    max_cpu_percent: 50
  pinned:
    match: {exe: /opt/p/run, sha256: "%s"}
  offline:
    match: {exe: /opt/o/run}
    allowed_network: []
""" % ("cd" * 32)

W = 100  # the worker's pid


def _exec(pid: int, path: str, ppid: int = 1, t: float = 1.0) -> ExecEvent:
    return ExecEvent(time=t, pid=pid, tgid=pid, ppid=ppid, uid=0, filename=path, argv=(path,))


def _evaluator(mode: Mode = Mode.AUDIT, blockable: frozenset[ViolationType] = frozenset()
               ) -> Evaluator:
    ev = Evaluator(parse_policy(POLICY, "p.yaml"), mode=mode, blockable=blockable)
    assert ev.on_exec(_exec(W, "/opt/w/bin/worker")) == []
    return ev


def test_matching_is_by_executable_path_not_by_name() -> None:
    ev = _evaluator()
    assert ev.watched[W].entry == "worker"
    assert ev.on_exec(_exec(7, "/tmp/worker")) == []  # same name elsewhere: not watched
    assert 7 not in ev.watched


def test_sha256_pin() -> None:
    ev = _evaluator()
    assert ev.needs_sha256("/opt/p/run") and not ev.needs_sha256("/opt/w/bin/worker")
    ev.on_exec(_exec(8, "/opt/p/run"), sha256="00" * 32)
    assert 8 not in ev.watched  # same path, other content
    ev.on_exec(_exec(9, "/opt/p/run"), sha256="cd" * 32)
    assert ev.watched[9].entry == "pinned"


def test_children_inherit_and_exits_forget() -> None:
    ev = _evaluator()
    ev.on_fork(ForkEvent(1.0, W, 101))
    assert ev.watched[101].entry == "worker" and ev.watched[101].root_pid == W
    ev.on_fork(ForkEvent(1.0, 101, 102))
    assert ev.watched[102].entry == "worker"
    ev.on_exit(ExitEvent(2.0, 101))
    assert 101 not in ev.watched and 102 in ev.watched


def test_exec_by_unseen_child_is_judged_by_its_parent() -> None:
    ev = _evaluator()
    (v,) = ev.on_exec(_exec(200, "/bin/nc", ppid=W, t=5.0))
    assert v.to_json() == {
        "timestamp": 5.0, "process": "worker", "exe": "/opt/w/bin/worker", "pid": 200,
        "type": "exec", "detail": "exec of /bin/nc not in allowed_exec", "severity": "HIGH",
        "action": "logged", "mode": "audit"}


# (event, expected (type, detail, severity) or None)
CASES = [
    (_exec(W, "/bin/sh"), None),
    (_exec(W, "/usr/bin/env"), None),
    (_exec(W, "/usr/bin/sub/x"), ("exec", "exec of /usr/bin/sub/x not in allowed_exec", "HIGH")),
    (_exec(W, "/opt/w/bin/worker"), None),  # re-exec of itself
    (SyscallEvent(1.0, W, 101, "ptrace"), ("syscall", "blocked syscall: ptrace", "CRITICAL")),
    (SyscallEvent(1.0, W, 435, "clone3"), ("syscall", "blocked syscall: clone3", "HIGH")),
    (SyscallEvent(1.0, W, 165, "mount"), ("syscall", "blocked syscall: mount", "MEDIUM")),
    (SyscallEvent(1.0, W, 0, "read"), None),
    (OpenEvent(1.0, W, "/srv/data/a.csv"), None),
    (OpenEvent(1.0, W, "/srv/secret/key"),
     ("file", "blocked file access: /srv/secret/key (pattern /srv/secret/*)", "HIGH")),
    (OpenEvent(1.0, W, "/srv/x/../secret/key"),  # normalised before matching
     ("file", "blocked file access: /srv/secret/key (pattern /srv/secret/*)", "HIGH")),
    (OpenEvent(1.0, W, "/etc/passwd"),
     ("file", "file access outside allowed_files: /etc/passwd", "MEDIUM")),
    (ConnectEvent(1.0, W, 0, socket.AF_INET, "10.1.2.3", 443), None),
    (ConnectEvent(1.0, W, 0, socket.AF_INET, "10.1.2.3", 80),
     ("network", "connect to 10.1.2.3:80 outside allowed_network", "HIGH")),
    (ConnectEvent(1.0, W, 0, socket.AF_INET, "10.9.1.1", 443),
     ("network", "connect to 10.9.1.1:443 matches blocked_network 10.9.0.0/16", "HIGH")),
    (ConnectEvent(1.0, W, 0, socket.AF_INET6, "::1", 443),
     ("network", "connect to [::1]:443 outside allowed_network", "HIGH")),
    (ConnectEvent(1.0, W, 0, socket.AF_UNIX, "/run/x.sock", 0), None),
    # Unwatched processes are never judged.
    (SyscallEvent(1.0, 4242, 101, "ptrace"), None),
    (OpenEvent(1.0, 4242, "/srv/secret/key"), None),
    (ConnectEvent(1.0, 4242, 0, socket.AF_INET, "10.9.1.1", 1), None),
]


def _feed(ev: Evaluator, event: object) -> list[object]:
    if isinstance(event, ExecEvent):
        return list(ev.on_exec(event))
    if isinstance(event, SyscallEvent):
        return list(ev.on_syscall(event))
    if isinstance(event, OpenEvent):
        return list(ev.on_open(event))
    assert isinstance(event, ConnectEvent)
    return list(ev.on_connect(event))


@pytest.mark.parametrize(("event", "expected"), CASES)
def test_checks(event: object, expected: tuple[str, str, str] | None) -> None:
    ev = _evaluator()
    out = _feed(ev, event)
    if expected is None:
        assert out == []
        return
    (v,) = out
    record = v.to_json()  # type: ignore[attr-defined]
    assert (record["type"], record["detail"], record["severity"]) == expected
    assert record["process"] == "worker" and record["exe"] == "/opt/w/bin/worker"


def test_no_network_at_all_is_critical() -> None:
    ev = _evaluator()
    ev.on_exec(_exec(300, "/opt/o/run"))
    (v,) = ev.on_connect(ConnectEvent(1.0, 300, 0, socket.AF_INET, "127.0.0.1", 80))
    assert v.severity is Severity.CRITICAL
    assert v.detail == "connect to 127.0.0.1:80 outside allowed_network"


@pytest.mark.parametrize(("mode", "blockable", "action"), [
    (Mode.AUDIT, frozenset(ViolationType), ViolationAction.LOGGED),
    (Mode.ALERT, frozenset(ViolationType), ViolationAction.ALERTED),
    (Mode.ENFORCE, frozenset(ViolationType), ViolationAction.BLOCKED),
    # Enforce without a rung that can stop it: said as it is, never "blocked".
    (Mode.ENFORCE, frozenset(), ViolationAction.ALERTED),
])
def test_one_action_rule_for_every_check(mode: Mode, blockable: frozenset[ViolationType],
                                         action: ViolationAction) -> None:
    ev = _evaluator(mode, blockable)
    out = []
    for event, expected in CASES:
        if expected is not None:
            out += _feed(ev, event)
    # An exec seen after the fact was not stopped: never `blocked` (the gate refuses
    # before, through exec_denial).
    after_fact = ViolationAction.ALERTED if action is ViolationAction.BLOCKED else action
    assert out and {v.action for v in out  # type: ignore[attr-defined]
                    if v.type is not ViolationType.EXEC} == {action}  # type: ignore[attr-defined]
    assert {v.action for v in out  # type: ignore[attr-defined]
            if v.type is ViolationType.EXEC} == {after_fact}  # type: ignore[attr-defined]
    assert {v.mode for v in out} == {mode}  # type: ignore[attr-defined]


@pytest.mark.parametrize(("mode", "blockable", "denied"), [
    (Mode.ENFORCE, frozenset({ViolationType.EXEC}), True),
    (Mode.ENFORCE, frozenset(), False),  # no gate: nothing refused before the exec
    (Mode.ALERT, frozenset({ViolationType.EXEC}), False),
    (Mode.AUDIT, frozenset({ViolationType.EXEC}), False),
])
def test_exec_gate_denial(mode: Mode, blockable: frozenset[ViolationType], denied: bool
                          ) -> None:
    ev = _evaluator(mode, blockable)
    v = ev.exec_denial(_exec(W, "/usr/bin/sub/x", t=3.0))
    assert (v is not None) is denied
    if v is not None:
        assert (v.action, v.detail) == (ViolationAction.BLOCKED,
                                        "exec of /usr/bin/sub/x not in allowed_exec")
    assert ev.exec_denial(_exec(W, "/bin/sh")) is None  # allowed
    assert ev.exec_denial(_exec(4242, "/usr/bin/sub/x")) is None  # not watched
    assert ev.watched[W].exe == "/opt/w/bin/worker"  # a gate question changes nothing


def test_memory_is_reported_once_per_crossing() -> None:
    ev = _evaluator()
    mb = 1 << 20
    assert ev.on_sample(ResourceSample(0.0, W, 50 * mb, 0.0), 10.0) == []
    (v,) = ev.on_sample(ResourceSample(0.1, W, 150 * mb, 0.0), 10.1)
    assert (v.type, v.detail, v.severity) == (ViolationType.RESOURCE,
                                              "memory limit exceeded: 150MB > 100MB",
                                              Severity.HIGH)
    assert ev.on_sample(ResourceSample(0.2, W, 160 * mb, 0.0), 10.2) == []
    assert ev.on_sample(ResourceSample(0.3, W, 20 * mb, 0.0), 10.3) == []
    assert len(ev.on_sample(ResourceSample(0.4, W, 120 * mb, 0.0), 10.4)) == 1


def test_cpu_over_a_sliding_second() -> None:
    ev = _evaluator()
    # 40% for a while: under the 50% limit.
    for i in range(12):
        assert ev.on_sample(ResourceSample(i * 0.1, W, 0, i * 0.04), 0.0) == []
    # Then a full core: the window soon exceeds 50%.
    out = []
    cpu = 11 * 0.04
    for i in range(12, 24):
        cpu += 0.1
        out += ev.on_sample(ResourceSample(i * 0.1, W, 0, cpu), 0.0)
    (v,) = out
    assert v.detail.startswith("CPU limit exceeded: ") and "> 50% over 1.0s" in v.detail


def test_stats_by_process_and_type() -> None:
    ev = _evaluator(Mode.ENFORCE, frozenset({ViolationType.SYSCALL}))
    for event, _expected in CASES:
        _feed(ev, event)
    s = ev.stats.to_json()
    assert s["violations"] == sum(1 for _e, x in CASES if x)
    assert s["by_type"] == {"exec": 1, "syscall": 3, "file": 3, "network": 3}
    assert s["by_process"] == {"worker": s["violations"]}
    assert s["blocked"] == 3  # only the syscalls had a rung


def test_reload_keeps_watched_processes_of_surviving_entries() -> None:
    ev = _evaluator()
    ev.on_exec(_exec(300, "/opt/o/run"))
    ev.replace_policy(parse_policy(POLICY.split("  offline:")[0], "p.yaml"))
    assert W in ev.watched and 300 not in ev.watched


@pytest.mark.parametrize(("name", "severity"), [
    ("ptrace", Severity.CRITICAL), ("process_vm_readv", Severity.CRITICAL),
    ("process_vm_writev", Severity.CRITICAL), ("kexec_load", Severity.CRITICAL),
    ("init_module", Severity.CRITICAL), ("finit_module", Severity.CRITICAL),
    ("execve", Severity.HIGH), ("fork", Severity.HIGH), ("clone", Severity.HIGH),
    ("clone3", Severity.HIGH), ("mount", Severity.MEDIUM), ("unshare", Severity.MEDIUM),
])
def test_syscall_severity_table(name: str, severity: Severity) -> None:
    assert syscall_severity(name) is severity


@pytest.mark.parametrize(("mode", "detail"), [
    (Mode.ENFORCE, "blocked syscall: mount (killed at entry; the call ran)"),
    (Mode.ALERT, "blocked syscall: mount"),
    (Mode.AUDIT, "blocked syscall: mount"),
])
def test_a_blocked_note_says_what_blocking_meant(mode: Mode, detail: str) -> None:
    # Only a record whose action is `blocked` carries the mechanism's note.
    ev = _evaluator(mode, frozenset({ViolationType.SYSCALL}))
    ev.blocked_notes[ViolationType.SYSCALL] = "killed at entry; the call ran"
    (v,) = ev.on_syscall(SyscallEvent(1.0, W, 165, "mount"))
    assert v.detail == detail
    (f,) = ev.on_open(OpenEvent(1.0, W, "/srv/secret/k", 0))
    assert f.detail == "blocked file access: /srv/secret/k (pattern /srv/secret/*)"


L = 300  # a `policy run` process of the worker entry, running /usr/local/bin/job


def _launched(mode: Mode = Mode.AUDIT) -> Evaluator:
    ev = Evaluator(parse_policy(POLICY, "p.yaml"), mode=mode)
    ev.watch_launched(L, "worker", "/usr/local/bin/job", L, "/usr/local/bin/job")
    return ev


@pytest.mark.parametrize(("mode", "refused", "action"), [
    (Mode.AUDIT, False, ViolationAction.LOGGED),
    (Mode.ALERT, False, ViolationAction.ALERTED),
    (Mode.ENFORCE, True, ViolationAction.BLOCKED),
    (Mode.ENFORCE, False, ViolationAction.ALERTED),  # answered "run it": never "blocked"
])
def test_a_launched_syscall_is_recorded_as_answered(mode: Mode, refused: bool,
                                                    action: ViolationAction) -> None:
    ev = _launched()  # the evaluator's own mode does not matter: the answer's does
    v = ev.launched_syscall(L, "worker", "ptrace", 'blocked syscall: ptrace', 5.0, mode,
                            refused)
    assert v is not None
    assert (v.process, v.exe, v.pid, v.type, v.detail, v.severity, v.action, v.mode) == (
        "worker", "/usr/local/bin/job", L, ViolationType.SYSCALL, "blocked syscall: ptrace",
        Severity.CRITICAL, action, mode)
    assert ev.stats.by_type == {"syscall": 1}
    assert ev.stats.blocked == (1 if action is ViolationAction.BLOCKED else 0)
    assert ev.launched_syscall(L, "gone", "ptrace", "x", 5.0, mode, refused) is None


def test_a_launched_process_is_judged_as_launched() -> None:
    ev = _launched()
    # Its own program (and a re-exec of it) is the matched program for allowed_exec;
    # anything else is judged by the entry as usual.
    assert ev.on_exec(_exec(L, "/usr/local/bin/job")) == []
    assert [v.detail for v in ev.on_exec(_exec(L, "/opt/x/tool"))] == [
        "exec of /opt/x/tool not in allowed_exec"]
    # Children inherit it; the tracepoint path does not record a launched process's
    # syscalls a second time (seccomp has recorded them).
    ev.on_fork(ForkEvent(time=1.0, parent_pid=L, child_pid=L + 1))
    assert ev.watched[L + 1].launched and ev.watched[L + 1].program == "/usr/local/bin/job"
    assert ev.on_syscall(SyscallEvent(1.0, L + 1, 101, "ptrace")) == []
    # Executing the exe of another entry does not take it out of its launch.
    ev.on_exec(_exec(L + 1, "/opt/o/run"))
    assert ev.watched[L + 1].entry == "worker" and ev.watched[L + 1].launched
