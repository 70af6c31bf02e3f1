"""fanotify permission events for exec (rung 2): the group, its marks, reading, answering.

This module owns the system calls only (fanotify_init, fanotify_mark, the
event records and the response), through ctypes: Python has no binding for
them and they are three calls, so a dependency is not worth it. What to
answer is the layer's business (attyguard/kernel/layer.py).

Which filesystems are marked, and why: `FAN_OPEN_EXEC_PERM` fires when a file
is opened *for execution* (execve's binary, a script's interpreter, the ELF
loader), so a mark must cover every place a user can exec from: the
directories of PATH plus the standard system ones, and every place a user can
*write* and then exec — /tmp, /var/tmp, /dev/shm, /run/user, /home, /root,
/opt, /srv, /usr/local. Each distinct filesystem among them is marked once
with FAN_MARK_FILESYSTEM, not FAN_MARK_MOUNT: a filesystem mark covers every
mount of that filesystem, so a bind mount of /tmp elsewhere does not escape it.
Where the kernel refuses a filesystem mark the mount is marked instead.
Filesystems mounted after start are marked by the layer as they appear
(attyguard/kernel/mounts.py). memfd executables live on no mountable
filesystem (the kernel refuses a filesystem mark on the internal shmem mount):
the layer covers them from BPF instead (see layer.py).
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

__all__ = [
    "FAN_ALLOW",
    "FAN_DENY",
    "FanotifyError",
    "FanotifyGroup",
    "PermEvent",
    "default_exec_paths",
    "fanotify_unavailable_reason",
]

FAN_CLOEXEC = 0x01
FAN_NONBLOCK = 0x02
FAN_CLASS_CONTENT = 0x04
FAN_UNLIMITED_MARKS = 0x20
FAN_MARK_ADD = 0x01
FAN_MARK_MOUNT = 0x10
FAN_MARK_FILESYSTEM = 0x100
FAN_OPEN_EXEC_PERM = 0x00040000
FAN_Q_OVERFLOW = 0x00004000
FAN_ALLOW = 0x01
FAN_DENY = 0x02
FANOTIFY_METADATA_VERSION = 3
AT_FDCWD = -100

_META = struct.Struct("=IBBHQii")  # event_len, vers, reserved, metadata_len, mask, fd, pid
_RESPONSE = struct.Struct("=iI")  # fd, response

_libc = ctypes.CDLL(None, use_errno=True)
_libc.fanotify_init.argtypes = [ctypes.c_uint, ctypes.c_uint]
_libc.fanotify_init.restype = ctypes.c_int
_libc.fanotify_mark.argtypes = [
    ctypes.c_int,
    ctypes.c_uint,
    ctypes.c_uint64,
    ctypes.c_int,
    ctypes.c_char_p,
]
_libc.fanotify_mark.restype = ctypes.c_int


class FanotifyError(OSError):
    pass


@dataclass(frozen=True, slots=True)
class PermEvent:
    """One permission event: the file's fd (ours to close after answering) and the tgid."""

    fd: int
    pid: int
    mask: int


def _raise(what: str) -> None:
    err = ctypes.get_errno()
    raise FanotifyError(err, f"{what}: {os.strerror(err)}")


def default_exec_paths(path_env: str | None = None) -> list[str]:
    """Places people exec from, or can write to and then exec from (see the module doc)."""
    dirs = [p for p in (path_env if path_env is not None else os.environ.get("PATH", "")).split(":")
            if p.startswith("/")]
    dirs += ["/usr/bin", "/bin", "/usr/sbin", "/sbin", "/usr/local/bin", "/usr/local",
             "/usr/libexec", "/lib", "/usr/lib",
             "/tmp", "/var/tmp", "/dev/shm", "/run/user", "/home", "/root", "/opt", "/srv"]
    out: list[str] = []
    for d in dirs:
        if d not in out and os.path.isdir(d):
            out.append(d)
    return out


def distinct_filesystems(paths: Iterable[str]) -> list[str]:
    """One path per distinct st_dev, in order: each filesystem is marked once."""
    seen: set[int] = set()
    out: list[str] = []
    for p in paths:
        try:
            dev = os.stat(p).st_dev
        except OSError:
            continue
        if dev not in seen:
            seen.add(dev)
            out.append(p)
    return out


class FanotifyGroup:
    """A fanotify group of class CONTENT (permission events), non-blocking, close-on-exec."""

    def __init__(self) -> None:
        ctypes.set_errno(0)
        fd = _libc.fanotify_init(
            FAN_CLASS_CONTENT | FAN_CLOEXEC | FAN_NONBLOCK | FAN_UNLIMITED_MARKS,
            os.O_RDONLY | os.O_LARGEFILE | os.O_CLOEXEC,
        )
        if fd < 0:
            _raise("fanotify_init")
        self.fd: int = fd
        self.marks: list[tuple[str, str]] = []  # (path, "filesystem" | "mount" | "inode")

    def mark_exec(self, path: str, how: str = "filesystem") -> str:
        """Ask for FAN_OPEN_EXEC_PERM on path's filesystem (or mount, or the inode itself)."""
        flags = {"filesystem": FAN_MARK_FILESYSTEM, "mount": FAN_MARK_MOUNT, "inode": 0}[how]
        ctypes.set_errno(0)
        rc = _libc.fanotify_mark(self.fd, FAN_MARK_ADD | flags, FAN_OPEN_EXEC_PERM, AT_FDCWD,
                                 os.fsencode(path))
        if rc < 0:
            err = ctypes.get_errno()
            if how == "filesystem" and err in (errno.EINVAL, errno.EXDEV, errno.EOPNOTSUPP):
                return self.mark_exec(path, "mount")
            _raise(f"fanotify_mark {path}")
        self.marks.append((path, how))
        return how

    def read(self) -> list[PermEvent]:
        """Every event queued now ([] when none): never blocks."""
        try:
            buf = os.read(self.fd, 64 * _META.size)
        except BlockingIOError:
            return []
        return list(self._parse(buf))

    @staticmethod
    def _parse(buf: bytes) -> Iterator[PermEvent]:
        off = 0
        while off + _META.size <= len(buf):
            ev_len, vers, _res, _mlen, mask, fd, pid = _META.unpack_from(buf, off)
            if vers != FANOTIFY_METADATA_VERSION or ev_len < _META.size:
                return  # a kernel speaking another version: nothing to trust in the rest
            off += ev_len
            yield PermEvent(fd, pid, mask)

    def respond(self, event: PermEvent, allow: bool, *, close: bool = True) -> None:
        """Answer one permission event (once per event) and close its fd unless told not
        to (then `close_event` later: the fd still names the file)."""
        try:
            os.write(self.fd, _RESPONSE.pack(event.fd, FAN_ALLOW if allow else FAN_DENY))
        except OSError as exc:
            # ENOENT: the kernel no longer waits for it (the task was killed).
            if exc.errno != errno.ENOENT:
                raise
        finally:
            if close:
                close_event(event)

    def close(self) -> None:
        """Closing the group makes the kernel allow every event still waiting on it."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def fanotify_unavailable_reason() -> str | None:
    """None when FAN_OPEN_EXEC_PERM marks work here, else why not.

    Checked on an inode mark of a private temporary file, so that probing
    never makes anyone else's exec wait on a group nobody reads.
    """
    if os.geteuid() != 0:
        return "needs root (CAP_SYS_ADMIN) for fanotify permission events"
    try:
        group = FanotifyGroup()
    except FanotifyError as exc:
        return f"fanotify_init(FAN_CLASS_CONTENT) failed: {exc.strerror}"
    try:
        import tempfile

        with tempfile.NamedTemporaryFile(prefix="attyguard-probe-") as tmp:
            group.mark_exec(tmp.name, "inode")
    except FanotifyError as exc:
        if exc.errno == errno.EINVAL:
            return "FAN_OPEN_EXEC_PERM not supported by this kernel (needs >= 5.0)"
        return f"fanotify_mark(FAN_OPEN_EXEC_PERM) failed: {exc.strerror}"
    finally:
        group.close()
    return None


def close_event(event: PermEvent) -> None:
    if event.fd >= 0:
        os.close(event.fd)


def stat_key(fd: int) -> tuple[int, int] | None:
    """(st_dev, st_ino) of an event's file, None if it cannot be stat'ed."""
    try:
        st = os.fstat(fd)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def fd_path(fd: int) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return ""


