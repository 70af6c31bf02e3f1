"""Kernel events as plain frozen data: the contract between sensors and the daemon.

Every sensor (eBPF ring buffer, fanotify, netlink proc connector) produces
these; the daemon's exec judge and the SEC-002 policy engine consume them.
Nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "ALLOW",
    "AlgSocketEvent",
    "ConnectEvent",
    "ExecDecision",
    "ExecEvent",
    "ExitEvent",
    "FdInfo",
    "FdKind",
    "ForkEvent",
    "KernelEvent",
    "Rung",
]


class Rung(StrEnum):
    """The enforcement ladder, strongest first (issue: the kernel layer)."""

    LSM = "lsm"  # bprm_check_security denies in the kernel from maps
    FANOTIFY = "fanotify"  # FAN_OPEN_EXEC_PERM answered by the daemon
    SIGNAL = "signal"  # execve tracepoint + bpf_send_signal(SIGKILL)
    AUDIT = "audit"  # events only (netlink proc connector)


class FdKind(StrEnum):
    NONE = "none"  # not open
    TTY = "tty"
    PIPE = "pipe"
    SOCKET = "socket"
    FILE = "file"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class FdInfo:
    kind: FdKind
    inode: int = 0  # pipe/socket/file inode (0 when unknown)
    family: int = 0  # socket address family (AF_INET=2, AF_INET6=10, AF_UNIX=1…), else 0


@dataclass(frozen=True, slots=True)
class ExecEvent:
    time: float  # wall clock, seconds since the epoch
    pid: int  # thread id of the exec'ing task (== tgid after exec)
    tgid: int
    ppid: int
    uid: int
    filename: str  # as passed to execve (may be relative); resolved path when known
    argv: tuple[str, ...]
    argv_truncated: bool = False  # argv cut at the sensor's documented bound
    session_id: int = 0
    cgroup_id: int = 0
    fds: tuple[FdInfo, FdInfo, FdInfo] | None = None  # fds 0/1/2, None when not seen
    rung: Rung = Rung.AUDIT  # the sensor that saw it
    # The program has no name left: a memfd (fexecve, execveat AT_EMPTY_PATH,
    # /proc/self/fd/N) or a deleted file. Seen by the BPF sensors only.
    exe_unnamed: bool = False
    # A permission event came with no execve record of its task (dropped, or
    # late): argv is only the path. The daemon may ask the layer for the record.
    no_record: bool = False


@dataclass(frozen=True, slots=True)
class ForkEvent:
    time: float
    parent_pid: int
    child_pid: int


@dataclass(frozen=True, slots=True)
class ExitEvent:
    time: float
    pid: int
    exit_code: int = 0


@dataclass(frozen=True, slots=True)
class AlgSocketEvent:
    """socket(AF_ALG, …): the kernel crypto API, used by some miners and loaders."""

    time: float
    pid: int
    uid: int


@dataclass(frozen=True, slots=True)
class ConnectEvent:
    time: float
    pid: int
    uid: int
    family: int
    address: str  # printable address ("127.0.0.1", "::1", or a Unix path)
    port: int = 0


@dataclass(frozen=True, slots=True)
class ExecDecision:
    """The daemon's answer to a permission rung: allow, or deny with its reason."""

    allow: bool
    reason: str = ""  # one line, shown as `REFUSED — <program>: <reason>`
    rules: tuple[str, ...] = ()  # rule ids behind a deny (or a warn-mode event)
    # An allow that holds for any exec with the same program file (dev, inode,
    # mtime, ctime), argv, uid and kinds of fds 0-2, for a few seconds: rung 2's
    # C loop then answers such repeats without asking again. Only for verdicts
    # that read nothing else (no script text, no pipe writers, no file ages).
    cacheable: bool = False


ALLOW = ExecDecision(True)

KernelEvent = ExecEvent | ForkEvent | ExitEvent | AlgSocketEvent | ConnectEvent
