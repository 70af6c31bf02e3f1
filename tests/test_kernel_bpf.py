"""The libbpf loader and exec.bpf.o: freshness, layout, real loads, the ring buffer."""

from __future__ import annotations

import ctypes
import errno
import os
import subprocess
import threading
from pathlib import Path

import pytest

from attyguard.kernel import build, records
from attyguard.kernel.bpf import BpfObject, Unsupported, ensure_tracefs, try_open_load
from attyguard.kernel.events import ExecEvent, FdKind, ForkEvent
from tests.kernel_support import EXEC_OBJECT, require_bpf, wait_for

ALL_BUT_LSM = [
    "ag_execve",
    "ag_execveat",
    "ag_exec_done",
    "ag_fork",
    "ag_exit",
    "ag_socket",
    "ag_connect",
]


def test_committed_object_matches_its_sources() -> None:
    stamp = build.stamp_path("exec.bpf.o").read_text().strip()
    assert stamp == build.source_digest("exec.bpf.o"), (
        "exec.bpf.c/exec.h changed: rebuild with python -m attyguard.kernel.build"
    )


def _shape(path: Path) -> tuple[list[tuple[str, str]], list[tuple[str, int, int, int, int]]]:
    with BpfObject.open(path) as obj:
        return sorted(obj.programs()), sorted(m for m in obj.maps() if "." not in m[0])


def test_rebuild_exposes_the_same_programs_and_maps(tmp_path: Path) -> None:
    result = build.build(tmp_path)
    if isinstance(result, build.ToolchainMissing):
        pytest.skip(result.reason)
    assert _shape(tmp_path / "exec.bpf.o") == _shape(EXEC_OBJECT)


def test_object_programs_and_sections() -> None:
    progs = dict(BpfObject.open(EXEC_OBJECT).programs())
    assert progs["ag_bprm_check"] == "lsm/bprm_check_security"
    assert progs["ag_execve"] == "tracepoint/syscalls/sys_enter_execve"
    assert progs["ag_execveat"] == "tracepoint/syscalls/sys_enter_execveat"
    assert progs["ag_fork"] == "tp_btf/sched_process_fork"
    assert progs["ag_exec_done"] == "tracepoint/sched/sched_process_exec"
    assert progs["ag_exit"] == "tracepoint/sched/sched_process_exit"
    assert progs["ag_socket"] == "tracepoint/syscalls/sys_enter_socket"
    assert progs["ag_connect"] == "tracepoint/syscalls/sys_enter_connect"


@pytest.mark.parametrize("name", sorted(records.MIRRORS))
def test_ctypes_mirror_matches_btf(name: str) -> None:
    with BpfObject.open(EXEC_OBJECT) as obj:
        size = obj.btf_type_size(name)
    assert size is not None, f"struct {name} missing from the object's BTF"
    assert size == ctypes.sizeof(records.MIRRORS[name])


def test_open_missing_object_is_a_typed_result(tmp_path: Path) -> None:
    result = try_open_load(tmp_path / "absent.bpf.o")
    assert isinstance(result, Unsupported)
    assert result.errno == errno.ENOENT


@pytest.mark.root
def test_lsm_program_load_is_attempted_and_reported() -> None:
    require_bpf()
    obj = BpfObject.open(EXEC_OBJECT)
    names = [n for n, _ in obj.programs()]
    obj.close()
    result = try_open_load(EXEC_OBJECT, autoload={n: n == "ag_bprm_check" for n in names})
    if isinstance(result, Unsupported):
        # This project's VMs refuse BPF trampolines: EPERM at load.
        assert result.errno == errno.EPERM, result
        assert "load" in result.step
    else:
        result.attach(["ag_bprm_check"])
        assert result.attached == ("ag_bprm_check",)
        result.close()


@pytest.mark.root
@pytest.mark.parametrize("program", ALL_BUT_LSM)
def test_each_program_loads_and_attaches(program: str) -> None:
    require_bpf()
    assert ensure_tracefs() is None
    names = ["ag_bprm_check", *ALL_BUT_LSM]
    obj = try_open_load(EXEC_OBJECT, autoload={n: n == program for n in names})
    assert not isinstance(obj, Unsupported), obj
    try:
        obj.attach()
        assert obj.attached == (program,)
    finally:
        obj.close()
    obj.close()  # idempotent


@pytest.mark.root
def test_ring_buffer_delivers_a_guarded_childs_exec_with_argv_and_fds() -> None:
    require_bpf()
    assert ensure_tracefs() is None
    cfg = records.AgConfig(self_tgid=0)
    obj = try_open_load(EXEC_OBJECT, rodata=bytes(cfg), autoload={"ag_bprm_check": False})
    assert not isinstance(obj, Unsupported), obj
    seen: list[records.Record] = []
    lock = threading.Lock()

    def on_record(data: bytes) -> None:
        rec = records.decode(data)
        if rec is not None:
            with lock:
                seen.append(rec)

    stop = threading.Event()
    try:
        obj.attach()
        rb = obj.ring_buffer("events", on_record)
        # A parent we guard (sleeping on a pipe) forks the child we watch:
        # membership is inherited in the kernel.
        parent = subprocess.Popen(
            ["/bin/sh", "-c", 'read go; exec /bin/echo "marker arg" second'],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        try:
            obj.map_update("guarded", ctypes.c_uint32(parent.pid), ctypes.c_uint32(parent.pid))
            assert parent.stdin is not None
            parent.stdin.write(b"go\n")
            parent.stdin.close()
            parent.wait(10)
        finally:
            parent.kill()
            parent.wait()

        def found() -> ExecEvent | None:
            rb.poll(50)
            with lock:
                for r in seen:
                    ev = r.event
                    if isinstance(ev, ExecEvent) and ev.argv[:1] == ("/bin/echo",):
                        return ev
            return None

        ev = wait_for(found, what="the echo exec event")
        assert isinstance(ev, ExecEvent)
        assert ev.argv == ("/bin/echo", "marker arg", "second")
        assert ev.filename == "/bin/echo"
        assert ev.tgid == parent.pid
        assert ev.ppid == os.getpid()
        assert not ev.argv_truncated
        assert ev.fds is not None
        assert ev.fds[0].kind is FdKind.PIPE and ev.fds[0].inode > 0
        assert ev.fds[1].kind is FdKind.PIPE
        # nothing from processes outside the guarded tree
        with lock:
            assert all(
                not isinstance(r.event, ForkEvent) or r.event.parent_pid == parent.pid
                for r in seen
            )
        assert obj.percpu_sum("stats", records.STAT_DROPPED) == 0
        assert obj.percpu_sum("stats", records.STAT_SEEN) >= 1
    finally:
        stop.set()
        obj.close()
