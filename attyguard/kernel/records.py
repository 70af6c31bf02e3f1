"""exec.h's ring-buffer records and map keys as ctypes, and their decoding to events.

Pure: bytes in, `attyguard.kernel.events` dataclasses out (no I/O). The
layouts mirror exec.h field for field; tests/test_kernel_bpf.py checks each
size against the compiled object's BTF, so a drift between the two fails a
test instead of decoding garbage.
"""

from __future__ import annotations

import ctypes
import socket
import time
from dataclasses import dataclass

from attyguard.kernel.events import (
    AlgSocketEvent,
    ConnectEvent,
    ExecEvent,
    ExitEvent,
    FdInfo,
    FdKind,
    ForkEvent,
    KernelEvent,
    Rung,
)

__all__ = [
    "AG_ARGS_SIZE",
    "AG_ARG_LEN",
    "AG_MAX_ARGS",
    "STAT_DROPPED",
    "STAT_LSM_DENIED",
    "STAT_SEEN",
    "STAT_SIGNAL_KILLED",
    "AgConfig",
    "AgDone",
    "AgExec",
    "AgExecState",
    "InodeKey",
    "Record",
    "decode",
    "kernel_dev",
]

AG_MAX_ARGS = 32
AG_ARG_LEN = 1024
AG_ARGS_SIZE = 8192
AG_FILENAME_LEN = 512

AG_EXEC, AG_FORK, AG_EXIT, AG_ALG, AG_CONNECT, AG_UNNAMED, AG_DONE = 1, 2, 3, 4, 5, 6, 7
F_ARGV_TRUNCATED, F_FILENAME_TRUNCATED, F_EXECVEAT, F_KILLED = 1, 2, 4, 8
F_EMPTY_PATH, F_UNNAMED = 16, 32
STAT_SEEN, STAT_DROPPED, STAT_SIGNAL_KILLED, STAT_LSM_DENIED = 0, 1, 2, 3

_FD_KINDS = {
    0: FdKind.NONE,
    1: FdKind.TTY,
    2: FdKind.PIPE,
    3: FdKind.SOCKET,
    4: FdKind.FILE,
    5: FdKind.OTHER,
}

u32, u64, s32, u8 = ctypes.c_uint32, ctypes.c_uint64, ctypes.c_int32, ctypes.c_uint8


class AgHdr(ctypes.Structure):
    _fields_ = [("type", u32), ("pid", u32), ("tgid", u32), ("uid", u32), ("ktime_ns", u64)]


class AgFd(ctypes.Structure):
    _fields_ = [("kind", u32), ("family", u32), ("ino", u64)]


class AgExec(ctypes.Structure):
    _fields_ = [
        ("hdr", AgHdr),
        ("ppid", u32),
        ("flags", u32),
        ("session_id", u32),
        ("argc", u32),
        ("cgroup_id", u64),
        ("args_size", u32),
        ("dfd", s32),
        ("fds", AgFd * 3),
        ("filename", ctypes.c_char * AG_FILENAME_LEN),
        ("args", ctypes.c_char * AG_ARGS_SIZE),
    ]


class AgFork(ctypes.Structure):
    _fields_ = [("hdr", AgHdr), ("child_tgid", u32), ("guarded_root", u32)]


class AgExit(ctypes.Structure):
    _fields_ = [("hdr", AgHdr), ("exit_code", u32), ("_pad", u32)]


class AgAlg(ctypes.Structure):
    _fields_ = [("hdr", AgHdr), ("sock_type", u32), ("protocol", u32)]


class AgConnect(ctypes.Structure):
    _fields_ = [
        ("hdr", AgHdr),
        ("family", u32),
        ("port", u32),
        ("addr", u8 * 108),
        ("addrlen", u32),
    ]


class AgUnnamed(ctypes.Structure):
    _fields_ = [("hdr", AgHdr), ("flags", u32), ("_pad", u32), ("ino", u64),
                ("name", ctypes.c_char * 64)]


class AgDone(ctypes.Structure):
    _fields_ = [("hdr", AgHdr), ("filename", ctypes.c_char * AG_FILENAME_LEN)]


class AgExecState(ctypes.Structure):
    _fields_ = [("seq", u32), ("done", u32)]


class AgConfig(ctypes.Structure):
    _fields_ = [
        ("self_tgid", u32),
        ("trace_all", u32),
        ("signal_kill", u32),
        ("lsm_enforce", u32),
        ("lazy_wakeup", u32),
        ("kill_unnamed", u32),
        ("done_records", u32),
    ]


class InodeKey(ctypes.Structure):
    _fields_ = [("dev", u64), ("ino", u64)]


# name in exec.h -> ctypes mirror (the BTF size test walks this)
MIRRORS: dict[str, type[ctypes.Structure]] = {
    "ag_hdr": AgHdr,
    "ag_fd": AgFd,
    "ag_exec": AgExec,
    "ag_fork": AgFork,
    "ag_exit": AgExit,
    "ag_alg": AgAlg,
    "ag_connect": AgConnect,
    "ag_unnamed": AgUnnamed,
    "ag_done": AgDone,
    "ag_exec_state": AgExecState,
    "ag_config": AgConfig,
    "ag_inode_key": InodeKey,
}

class _AgExecHead(ctypes.Structure):
    """ag_exec without its args: decoding copies 616 bytes, not 8.8 KB, per exec
    (figures: bench/README.md, "Figures behind design choices")."""

    _fields_ = AgExec._fields_[:-1]


_EXEC_HEAD = AgExec.args.offset
assert ctypes.sizeof(_AgExecHead) == _EXEC_HEAD


def kernel_dev(st_dev: int) -> int:
    """os.stat's st_dev as the kernel's internal dev_t (MAJOR << 20 | MINOR), as BPF sees it."""
    import os

    return (os.major(st_dev) << 20) | os.minor(st_dev)


@dataclass(frozen=True, slots=True)
class Record:
    """A decoded record: the event, plus what the layer itself needs from it."""

    event: KernelEvent
    killed: bool = False  # rung 3 SIGKILLed this exec in the kernel
    # sched_process_exec's report of a program with no name (memfd, deleted
    # file): `event` is an ExecEvent with just the tgid and that name, for the
    # layer to join with the execve record of the same task.
    unnamed: bool = False
    # sched_process_exec of a guarded task (AG_DONE): its exec ran. `event` is
    # an ExecEvent with the tgid and the filename as passed to execve; the
    # layer joins it with the task's last execve record (see KernelLayer).
    done: bool = False


class _Clock:
    """Maps bpf_ktime_get_boot_ns to wall time (CLOCK_BOOTTIME offset, taken once)."""

    def __init__(self) -> None:
        self.offset = time.time() - time.clock_gettime(time.CLOCK_BOOTTIME)

    def wall(self, ktime_ns: int) -> float:
        return self.offset + ktime_ns / 1e9


_clock = _Clock()


def _split_args(raw: bytes, argc: int) -> tuple[str, ...]:
    parts = raw.split(b"\0")
    if parts and parts[-1] == b"":
        parts.pop()
    return tuple(p.decode("utf-8", "surrogateescape") for p in parts[:argc])


def _address(family: int, raw: bytes) -> str:
    try:
        if family == socket.AF_INET:
            return socket.inet_ntop(socket.AF_INET, raw[:4])
        if family == socket.AF_INET6:
            return socket.inet_ntop(socket.AF_INET6, raw[:16])
    except (OSError, ValueError):
        return ""
    if family == socket.AF_UNIX:
        if raw[:1] == b"\0":  # abstract socket: shown as @name, as ss(8) does
            return "@" + raw[1:].split(b"\0", 1)[0].decode("utf-8", "replace")
        return raw.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
    return ""


def _exec_filename(raw: bytes, flags: int) -> str:
    name = raw.decode("utf-8", "surrogateescape")
    if flags & F_EMPTY_PATH and flags & F_UNNAMED:
        # the fd's dentry name, shown as /proc shows it: "/memfd:NAME (deleted)"
        return f"/{name} (deleted)"
    return name


def decode(data: bytes, rung: Rung = Rung.AUDIT) -> Record | None:
    """One ring-buffer record → a Record (None for a short or unknown record)."""
    if len(data) < ctypes.sizeof(AgHdr):
        return None
    hdr = AgHdr.from_buffer_copy(data)
    when = _clock.wall(hdr.ktime_ns)
    if hdr.type == AG_EXEC and len(data) >= _EXEC_HEAD:
        e = _AgExecHead.from_buffer_copy(data[:_EXEC_HEAD])
        size = min(e.args_size, len(data) - _EXEC_HEAD, AG_ARGS_SIZE)
        args = _split_args(data[_EXEC_HEAD : _EXEC_HEAD + size], e.argc)
        fds = tuple(FdInfo(_FD_KINDS.get(f.kind, FdKind.OTHER), f.ino, f.family) for f in e.fds)
        return Record(
            ExecEvent(
                time=when,
                pid=hdr.pid,
                tgid=hdr.tgid,
                ppid=e.ppid,
                uid=hdr.uid,
                filename=_exec_filename(e.filename, e.flags),
                argv=args,
                argv_truncated=bool(e.flags & F_ARGV_TRUNCATED),
                session_id=e.session_id,
                cgroup_id=e.cgroup_id,
                fds=(fds[0], fds[1], fds[2]),
                rung=rung,
                exe_unnamed=bool(e.flags & F_UNNAMED),
            ),
            killed=bool(e.flags & F_KILLED),
        )
    if hdr.type == AG_UNNAMED and len(data) >= ctypes.sizeof(AgUnnamed):
        u = AgUnnamed.from_buffer_copy(data)
        # As readlink(/proc/PID/exe) shows it: "/memfd:NAME (deleted)" for a memfd,
        # the base name only for a deleted file (BPF cannot build its path here).
        name = "/" + u.name.decode("utf-8", "surrogateescape") + " (deleted)"
        return Record(
            ExecEvent(time=when, pid=hdr.pid, tgid=hdr.tgid, ppid=0, uid=hdr.uid,
                      filename=name, argv=(), argv_truncated=True, rung=rung,
                      exe_unnamed=True),
            killed=bool(u.flags & F_KILLED), unnamed=True)
    if hdr.type == AG_DONE and len(data) >= ctypes.sizeof(AgDone):
        d = AgDone.from_buffer_copy(data)
        name = d.filename.decode("utf-8", "surrogateescape")
        return Record(
            ExecEvent(time=when, pid=hdr.pid, tgid=hdr.tgid, ppid=0, uid=hdr.uid,
                      filename=name, argv=(name,), argv_truncated=True, rung=rung,
                      no_record=True),
            done=True)
    if hdr.type == AG_FORK and len(data) >= ctypes.sizeof(AgFork):
        f = AgFork.from_buffer_copy(data)
        return Record(ForkEvent(time=when, parent_pid=hdr.tgid, child_pid=f.child_tgid))
    if hdr.type == AG_EXIT and len(data) >= ctypes.sizeof(AgExit):
        x = AgExit.from_buffer_copy(data)
        return Record(ExitEvent(time=when, pid=hdr.tgid, exit_code=x.exit_code))
    if hdr.type == AG_ALG and len(data) >= ctypes.sizeof(AgAlg):
        return Record(AlgSocketEvent(time=when, pid=hdr.tgid, uid=hdr.uid))
    if hdr.type == AG_CONNECT and len(data) >= ctypes.sizeof(AgConnect):
        c = AgConnect.from_buffer_copy(data)
        return Record(
            ConnectEvent(
                time=when,
                pid=hdr.tgid,
                uid=hdr.uid,
                family=c.family,
                address=_address(c.family, bytes(c.addr)),
                port=c.port,
            )
        )
    return None
