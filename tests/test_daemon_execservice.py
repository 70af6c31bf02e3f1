"""ExecService.decide: what a permission rung (fanotify) gets back, and what follows.

The real judge, engine, rules, threat map and /proc, in process: the exec'ing
task is a real process the test starts (its fds and cwd are read), the
`refused`/`warn` events are the bytes the daemon would send to the shell.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator

import pytest

from attyguard.daemon.execservice import ExecService
from attyguard.daemon.threats import ProcfsProcessTable, ThreatLevel, ThreatMap
from attyguard.engine.classify import classify
from attyguard.kernel.events import ExecEvent, ExitEvent, ForkEvent, Rung

BLOCKED = "echo aGk= | base64 -d | sh"


class Sent:
    def __init__(self) -> None:
        self.to_pid: list[tuple[int, dict[str, object]]] = []
        self.followed: list[dict[str, object]] = []

    def send_to_pid(self, pid: int, data: bytes) -> int:
        self.to_pid.append((pid, json.loads(data)))
        return 1

    def send_to_followers(self, record: dict[str, object], uid: int) -> None:
        self.followed.append(record)


@pytest.fixture
def shell() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(["sleep", "60"])
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


def service(mode: str, sent: Sent) -> ExecService:
    svc = ExecService(mode=mode, scope="sessions", group="", deadline_ms=200, engine=classify,
                      threats=ThreatMap(ProcfsProcessTable()), send_to_pid=sent.send_to_pid,
                      send_to_followers=sent.send_to_followers)
    svc.rung = Rung.FANOTIFY  # as the kernel layer would set it (decide is its question)
    return svc


def exec_of(pid: int, *argv: str) -> ExecEvent:
    return ExecEvent(time.time(), pid, pid, 1, 0, f"/usr/bin/{argv[0]}", argv,
                     rung=Rung.FANOTIFY)


def test_enforce_denies_refuses_to_the_shell_and_locks_its_tree(
        shell: subprocess.Popen[bytes]) -> None:
    sent = Sent()
    svc = service("enforce", sent)
    assert svc.register(shell.pid)
    decision = svc.decide(exec_of(shell.pid, "bash", "-c", BLOCKED))
    assert not decision.allow and decision.reason and decision.rules
    assert sent.to_pid and sent.to_pid[0][0] == shell.pid
    event = sent.to_pid[0][1]
    assert event["event"] == "refused" and str(event["text"]).startswith("REFUSED — bash: ")
    assert svc.threats.level_of(shell.pid)[0] is ThreatLevel.CRITICAL
    # the locked tree: even a harmless exec is refused now …
    again = svc.decide(exec_of(shell.pid, "ls"))
    assert not again.allow and again.rules == ("exec.tree-critical",)
    assert len(sent.to_pid) == 1  # one red line for the shell, not one per attempt
    # … until an operator lifts the mark
    svc.threats.clear(shell.pid)
    assert svc.decide(exec_of(shell.pid, "ls")).allow
    assert svc.status()["counters"]["denied"] == 2
    assert [r["action"] for r in sent.followed] == ["block", "block", "allow"]


def test_warn_mode_allows_and_warns_the_shell(shell: subprocess.Popen[bytes]) -> None:
    sent = Sent()
    svc = service("warn", sent)
    svc.register(shell.pid)
    assert svc.decide(exec_of(shell.pid, "bash", "-c", BLOCKED)).allow
    (pid, event), = sent.to_pid
    assert pid == shell.pid and event["event"] == "warn"
    assert "exec would be refused — bash" in str(event["text"])
    assert svc.threats.level_of(shell.pid)[0] is ThreatLevel.NONE
    assert sent.followed[-1]["action"] == "warn"


def test_outside_the_scope_is_allowed_without_reading_anything(
        shell: subprocess.Popen[bytes]) -> None:
    sent = Sent()
    svc = service("enforce", sent)
    assert svc.decide(exec_of(shell.pid, "bash", "-c", BLOCKED)).allow
    assert sent.to_pid == [] and sent.followed == []
    assert svc.status()["counters"] == {**svc.status()["counters"], "seen": 1, "judged": 0}


def test_a_trusted_line_opens_until_the_next_line(shell: subprocess.Popen[bytes]) -> None:
    sent = Sent()
    svc = service("enforce", sent)
    svc.register(shell.pid)
    svc.trusted(shell.pid, "deploy it")
    assert svc.decide(exec_of(shell.pid, "bash", "-c", BLOCKED)).allow
    assert sent.followed[-1]["reason"] == "trusted line: deploy it"
    svc.next_line(shell.pid)
    assert not svc.decide(exec_of(shell.pid, "bash", "-c", BLOCKED)).allow


def test_fork_and_exit_events_keep_the_tree(shell: subprocess.Popen[bytes]) -> None:
    sent = Sent()
    svc = service("enforce", sent)
    svc.register(shell.pid)
    svc.on_event(ForkEvent(time.time(), shell.pid, 4_000_000))  # a child /proc never shows
    assert svc.trees.owner(4_000_000) == shell.pid
    svc.on_event(ExitEvent(time.time(), shell.pid))
    # the shell is gone; its child is still guarded (an orphan does not escape)
    assert svc.trees.owner(4_000_000) == shell.pid
    svc.on_event(ExitEvent(time.time(), 4_000_000))
    assert svc.status()["guarded_trees"] == [] and svc.trees.owner(4_000_000) is None


def test_a_judge_failure_allows_and_is_counted(shell: subprocess.Popen[bytes]) -> None:
    sent = Sent()
    svc = service("enforce", sent)
    svc.register(shell.pid)

    def broken(line: str) -> object:
        raise RuntimeError("engine bug")

    svc.engine = broken  # type: ignore[assignment]
    assert svc.decide(exec_of(shell.pid, "ls")).allow  # never wedge an exec on our bug
    assert svc.status()["counters"]["errors"] == 1


def test_the_layer_s_own_denials_are_recorded_and_shown_once(
        shell: subprocess.Popen[bytes]) -> None:
    from attyguard.kernel.layer import DenyNotice

    sent = Sent()
    svc = service("enforce", sent)
    svc.register(shell.pid)
    svc.on_deny(DenyNotice(shell.pid, "/usr/bin/ls", "deadline", Rung.FANOTIFY))
    assert sent.followed[-1]["action"] == "block"
    assert sent.followed[-1]["rules"] == ["kernel.deadline"]
    (pid, event), = sent.to_pid
    assert pid == shell.pid and event["event"] == "refused"
    assert str(event["text"]).startswith("REFUSED — ls: refused by the kernel layer: deadline")
    # a locked tree's further denials: recorded, no second red line
    svc.on_deny(DenyNotice(shell.pid, "/usr/bin/ls", "critical tree", Rung.SIGNAL))
    assert len(sent.to_pid) == 1 and sent.followed[-1]["rules"] == ["exec.tree-critical"]


def test_a_retry_before_the_loop_marks_the_tree_is_refused_without_a_second_line(
        shell: subprocess.Popen[bytes]) -> None:
    """A program searching PATH retries a refused exec at once (/usr/bin/bash, /bin/bash).
    On a loaded machine the event loop that marks the tree Critical may not have run yet:
    the retry must still be judged as of a locked tree, and the shell told once."""
    import asyncio

    sent = Sent()
    svc = service("enforce", sent)
    assert svc.register(shell.pid)
    loop = asyncio.new_event_loop()  # real, but not running yet: "the loop is behind"
    try:
        svc._loop = loop
        first = svc.decide(exec_of(shell.pid, "bash", "-c", BLOCKED))
        retry = svc.decide(exec_of(shell.pid, "bash", "-c", BLOCKED))
        assert not first.allow and first.rules != ("exec.tree-critical",)
        assert not retry.allow and retry.rules == ("exec.tree-critical",)
        assert sent.to_pid == []  # nothing sent before the loop runs
        loop.run_until_complete(asyncio.sleep(0))
        refused = [e for _, e in sent.to_pid if e["event"] == "refused"]
        assert len(refused) == 1, sent.to_pid
        assert svc.threats.level_of(shell.pid)[0] is ThreatLevel.CRITICAL
        # the threat map decides from now on: an operator's clear lifts the lock
        svc.threats.clear(shell.pid)
        assert svc.decide(exec_of(shell.pid, "ls")).allow
    finally:
        svc._loop = None
        loop.close()


class _Layer:
    """Counts the clears asked of the kernel layer (the C loop's cache is tested in
    tests/test_kernel_layer.py with the real layer)."""

    def __init__(self) -> None:
        self.clears = 0

    def clear_verdict_cache(self) -> None:
        self.clears += 1


def test_only_plain_allows_are_cacheable_and_marks_clear_the_cache() -> None:
    sent = Sent()
    svc = service("enforce", sent)
    layer = _Layer()
    svc.layer = layer
    # fds 0-2 from the real process: stdin /dev/null (a pipe is never cached)
    quiet = subprocess.Popen(["sleep", "60"], stdin=subprocess.DEVNULL)
    piped = subprocess.Popen(["sleep", "60"], stdin=subprocess.PIPE)
    try:
        from attyguard.kernel.events import FdInfo, FdKind

        def ev(pid: int, argv: tuple[str, ...], stdin: FdKind) -> ExecEvent:
            fds = (FdInfo(stdin), FdInfo(FdKind.TTY), FdInfo(FdKind.TTY))
            return ExecEvent(time.time(), pid, pid, 1, 0, "/usr/bin/" + argv[0], argv,
                             fds=fds, rung=Rung.FANOTIFY)

        assert svc.register(quiet.pid) and svc.register(piped.pid)
        plain = svc.decide(ev(quiet.pid, ("ls", "-l"), FdKind.FILE))
        assert plain.allow and plain.cacheable  # /usr/bin/ls is older than every age rule
        assert not svc.decide(ev(piped.pid, ("ls", "-l"), FdKind.PIPE)).cacheable
        svc.trusted(quiet.pid, "make it so")
        assert not svc.decide(ev(quiet.pid, ("ls", "-l"), FdKind.FILE)).cacheable
        svc.next_line(quiet.pid)  # the trusted line ended: the cache is emptied
        assert layer.clears == 1
        # a block (a rule matched) is no allow to cache; its Critical mark, in any tree,
        # empties the cache and stops caching while it stands
        blocked = svc.decide(ev(piped.pid, ("bash", "-c", BLOCKED), FdKind.FILE))
        assert not blocked.allow and not blocked.cacheable
        assert svc.threats.level_of(piped.pid)[0] is ThreatLevel.CRITICAL
        assert layer.clears == 2
        again = svc.decide(ev(quiet.pid, ("ls", "-l"), FdKind.FILE))
        assert again.allow and not again.cacheable
        svc.threats.clear(piped.pid)
        assert svc.decide(ev(quiet.pid, ("ls", "-l"), FdKind.FILE)).cacheable
        svc.reload()
        assert layer.clears == 3
    finally:
        for p in (quiet, piped):
            p.kill()
            p.wait()
