"""The PID threat map: inheritance over the tree, PID reuse, exit cleanup, bounded size."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from attyguard.daemon.threats import ProcfsProcessTable, ProcInfo, ThreatLevel, ThreatMap


class FakeTable:
    """A synthetic process tree: pid -> (ppid, start_time, uid)."""

    def __init__(self, procs: dict[int, tuple[int, float, int]]) -> None:
        self.procs = dict(procs)
        self.reads = 0

    def info(self, pid: int) -> ProcInfo | None:
        self.reads += 1
        entry = self.procs.get(pid)
        return ProcInfo(pid, *entry) if entry else None


def tree() -> FakeTable:
    # 1 -> 10 (shell) -> 20 (bash) -> 30 (curl), 1 -> 11 (another user's shell)
    return FakeTable({1: (0, 1.0, 0), 10: (1, 5.0, 1000), 20: (10, 6.0, 1000),
                      30: (20, 7.0, 1000), 11: (1, 5.5, 1001)})


def test_descendants_inherit_the_highest_ancestor_level() -> None:
    threats = ThreatMap(tree())
    threats.mark(10, ThreatLevel.MEDIUM, "odd")
    threats.mark(20, ThreatLevel.LOW, "meh")
    assert threats.level_of(30)[0] is ThreatLevel.MEDIUM
    level, entry = threats.level_of(20)
    assert level is ThreatLevel.MEDIUM and entry is not None and entry.pid == 10
    assert threats.level_of(11) == (ThreatLevel.NONE, None)
    assert threats.level_of(1) == (ThreatLevel.NONE, None)
    assert len(threats) == 2  # descendants are computed, not stored


def test_marks_only_raise() -> None:
    threats = ThreatMap(tree())
    threats.mark(10, ThreatLevel.CRITICAL, "blocked")
    entry = threats.mark(10, ThreatLevel.LOW, "later")
    assert entry is not None and entry.level is ThreatLevel.CRITICAL and entry.reason == "blocked"
    assert threats.mark(999, ThreatLevel.HIGH, "no such") is None


def test_clear_forgets_only_that_mark() -> None:
    threats = ThreatMap(tree())
    threats.mark(10, ThreatLevel.CRITICAL, "blocked")
    threats.mark(20, ThreatLevel.LOW, "meh")
    entry = threats.clear(10)
    assert entry is not None and entry.level is ThreatLevel.CRITICAL
    assert threats.level_of(30)[0] is ThreatLevel.LOW
    assert threats.clear(10) is None


def test_empty_map_costs_no_process_reads() -> None:
    table = tree()
    threats = ThreatMap(table)
    assert threats.level_of(30) == (ThreatLevel.NONE, None)
    assert table.reads == 0


def test_unmarked_ancestors_are_cached_marked_ones_read_fresh() -> None:
    table = tree()
    threats = ThreatMap(table)
    threats.mark(10, ThreatLevel.MEDIUM, "odd")
    threats.level_of(30)
    before = table.reads
    assert threats.level_of(30)[0] is ThreatLevel.MEDIUM
    assert table.reads - before == 1  # only the marked ancestor, 10, was read again


def test_reused_pid_does_not_inherit_the_old_mark() -> None:
    table = tree()
    threats = ThreatMap(table)
    threats.mark(10, ThreatLevel.CRITICAL, "blocked")
    table.procs[10] = (1, 99.0, 1000)  # shell 10 exited; a new process got PID 10
    assert threats.level_of(30)[0] is ThreatLevel.NONE
    assert len(threats) == 0


def test_prune_drops_exited_processes() -> None:
    table = tree()
    threats = ThreatMap(table)
    threats.mark(10, ThreatLevel.HIGH, "x")
    threats.mark(11, ThreatLevel.HIGH, "y")
    del table.procs[11]
    assert threats.prune() == 1
    assert [e.pid for e in threats.entries()] == [10]


def test_size_is_bounded_and_critical_marks_go_last() -> None:
    table = FakeTable({pid: (1, float(pid), 1000) for pid in range(2, 200)})
    threats = ThreatMap(table, max_entries=16)
    threats.mark(2, ThreatLevel.CRITICAL, "blocked")
    for pid in range(3, 200):
        threats.mark(pid, ThreatLevel.LOW, "flood")
    assert len(threats) == 16
    assert threats.level_of(2)[0] is ThreatLevel.CRITICAL


def test_fork_loop_in_the_table_terminates() -> None:
    threats = ThreatMap(FakeTable({5: (6, 1.0, 0), 6: (5, 1.0, 0)}))
    threats.mark(5, ThreatLevel.LOW, "x")
    assert threats.level_of(6)[0] is ThreatLevel.LOW


def test_procfs_table_reads_real_processes() -> None:
    table = ProcfsProcessTable()
    me = table.info(os.getpid())
    assert me is not None
    assert me.ppid == os.getppid() and me.uid == os.geteuid()
    assert table.info(0) is None
    assert table.info(2**22 + 12345) is None


def test_real_tree_inheritance_and_exit_cleanup() -> None:
    # parent (python) -> child (sleep): mark the parent, the child inherits it.
    parent = subprocess.Popen(
        [sys.executable, "-c",
         "import subprocess; p = subprocess.Popen(['sleep', '60']); print(p.pid, flush=True); "
         "p.wait()"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        threats = ThreatMap(ProcfsProcessTable())
        assert threats.mark(parent.pid, ThreatLevel.HIGH, "test") is not None
        level, entry = threats.level_of(child)
        assert level is ThreatLevel.HIGH and entry is not None and entry.pid == parent.pid
        assert threats.level_of(os.getpid())[0] is ThreatLevel.NONE  # ancestors don't inherit
        os.kill(child, 9)
        parent.wait(10)
        deadline = time.monotonic() + 5
        while len(threats) and time.monotonic() < deadline:
            threats.prune()
        assert len(threats) == 0
    finally:
        parent.kill()
        parent.wait()


@pytest.mark.parametrize("text", ["critical", "Critical", " HIGH "])
def test_level_parse(text: str) -> None:
    assert ThreatLevel.parse(text) >= ThreatLevel.HIGH
