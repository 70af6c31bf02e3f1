"""fanotify permission events for exec (rung 2): the group, its marks, reading, answering.

This module owns the system calls only (fanotify_init, fanotify_mark, the
event records and the response), through ctypes: Python has no binding for
them and they are three calls, so a dependency is not worth it. What to
answer is the layer's business (attyguard/kernel/layer.py). It also owns the
binding of the C answering loop (fanswer.c, `CAnswerer`): why C and what it
answers by itself is said at the head of fanswer.c.

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

import contextlib
import ctypes
import errno
import os
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from attyguard.kernel.mounts import PSEUDO_FSTYPES, holder, parse_mountinfo

__all__ = [
    "FAN_ALLOW",
    "FAN_DENY",
    "HINT_NO_RECORD",
    "CAnswerer",
    "FanotifyError",
    "FanotifyGroup",
    "PermEvent",
    "default_exec_paths",
    "fanotify_unavailable_reason",
]

FAN_CLOEXEC = 0x01
FAN_NONBLOCK = 0x02
FAN_CLASS_NOTIF = 0x00
FAN_CLASS_CONTENT = 0x04
FAN_UNLIMITED_MARKS = 0x20
FAN_MARK_ADD = 0x01
FAN_MARK_MOUNT = 0x10
FAN_MARK_FILESYSTEM = 0x100
FAN_OPEN_EXEC = 0x00001000
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
    """One permission event: the file's fd (ours to close after answering) and the tgid.

    Handed over by the C loop: `id` names it there (answer through
    `CAnswerer.answer`, which closes the fd) and `hint` says why C did not
    answer it itself (HINT_*).
    """

    fd: int
    pid: int
    mask: int
    id: int = 0
    hint: int = 0
    rseq: int = 0  # C's count of records queued when it handed this event (mod 2^32)


# Why fanswer.c handed an event to Python (its enum H_*).
HINT_FIRST, HINT_NO_RECORD, HINT_DENIED, HINT_UID, HINT_ALL = 1, 2, 3, 4, 5
# fanswer.c's counters, in its enum order.
C_COUNTERS = ("permission_events", "fast_path", "follow_ups", "cached", "handed",
              "deadline_answers", "queue_full_answers", "records", "records_lost",
              "loop_turns", "warn_notes")


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
    """A fanotify group of class CONTENT (permission events), non-blocking, close-on-exec.

    `permission=False`: a notification group (FAN_OPEN_EXEC) instead, for warn
    mode: the exec never waits, the event only says which file was exec'd.
    """

    def __init__(self, permission: bool = True) -> None:
        ctypes.set_errno(0)
        fd = _libc.fanotify_init(
            (FAN_CLASS_CONTENT if permission else FAN_CLASS_NOTIF)
            | FAN_CLOEXEC | FAN_NONBLOCK | FAN_UNLIMITED_MARKS,
            os.O_RDONLY | os.O_LARGEFILE | os.O_CLOEXEC,
        )
        if fd < 0:
            _raise("fanotify_init")
        self.fd: int = fd
        self.permission = permission
        self.mask = FAN_OPEN_EXEC_PERM if permission else FAN_OPEN_EXEC
        self.marks: list[tuple[str, str]] = []  # (path, "filesystem" | "mount" | "inode")

    def mark_exec(self, path: str, how: str = "filesystem") -> str:
        """Ask for FAN_OPEN_EXEC_PERM on path's filesystem (or mount, or the inode itself)."""
        flags = {"filesystem": FAN_MARK_FILESYSTEM, "mount": FAN_MARK_MOUNT, "inode": 0}[how]
        ctypes.set_errno(0)
        rc = _libc.fanotify_mark(self.fd, FAN_MARK_ADD | flags, self.mask, AT_FDCWD,
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
        if not self.permission:  # a notification: nothing waits for an answer
            if close:
                close_event(event)
            return
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




# ---- FAN_OPEN_PERM for the SEC-002 file gate (attyguard/policy/files.py)
#
# Kept apart from the exec group's methods above: the file gate has its own
# group, fd and reader thread, and talks to the group through these
# functions only, so the exec path can change without touching it.

FAN_OPEN_PERM = 0x00010000
FAN_EVENT_ON_CHILD = 0x08000000
FAN_MARK_ONLYDIR = 0x08

# Filesystems never marked for opens: the kernel interfaces the exec rung never
# marks either (mounts.PSEUDO_FSTYPES), whose "files" are not data a policy
# speaks of and where every process opens something all the time (procfs: the
# gate's own reader resolves paths there); and FUSE and network filesystems,
# whose server may itself be a process whose opens wait on us.
PSEUDO_FILESYSTEMS = PSEUDO_FSTYPES | frozenset({
    "fuse", "fuseblk", "nfs", "nfs4", "cifs", "smb3",
})


def mark_open_perm(group: FanotifyGroup, path: str, how: str) -> str:
    """Ask for FAN_OPEN_PERM: `inode` on a directory (opens of the files in it,
    FAN_EVENT_ON_CHILD), or on `path`'s whole `filesystem` (or `mount` where the
    kernel refuses a filesystem mark). Returns how it was marked."""
    if how == "inode":
        flags, mask = FAN_MARK_ONLYDIR, FAN_OPEN_PERM | FAN_EVENT_ON_CHILD
    else:
        flags = FAN_MARK_FILESYSTEM if how == "filesystem" else FAN_MARK_MOUNT
        mask = FAN_OPEN_PERM
    ctypes.set_errno(0)
    rc = _libc.fanotify_mark(group.fd, FAN_MARK_ADD | flags, mask, AT_FDCWD, os.fsencode(path))
    if rc < 0:
        err = ctypes.get_errno()
        if how == "filesystem" and err in (errno.EINVAL, errno.EXDEV, errno.EOPNOTSUPP):
            return mark_open_perm(group, path, "mount")
        _raise(f"fanotify_mark {path}")
    group.marks.append((path, how))
    return how


def read_perm_events(group_fd: int, max_events: int = 256) -> list[PermEvent]:
    """Every event queued on the group now, up to max_events ([] when none): never blocks."""
    try:
        buf = os.read(group_fd, max_events * _META.size)
    except BlockingIOError:
        return []
    return list(FanotifyGroup._parse(buf))


def answer_perm(group_fd: int, event_fd: int, allow: bool) -> None:
    """Answer one permission event and close its fd. ENOENT (the task is gone,
    or the kernel answered already) is not an error."""
    try:
        os.write(group_fd, _RESPONSE.pack(event_fd, FAN_ALLOW if allow else FAN_DENY))
    except OSError as exc:
        if exc.errno != errno.ENOENT:
            raise
    finally:
        if event_fd >= 0:
            os.close(event_fd)


# Where files live on a usual system: each distinct filesystem among these is
# marked whole when a policy has an allow list (anything outside it is a
# violation). A fixed list rather than every mount: mounts elsewhere (a data
# disk under /mnt, a container's overlay) are someone else's business unless a
# policy names them (docs/policy.md says so), and marking a filesystem puts
# every open on it, by anyone, through the gate.
OPEN_PLACES = ("/", "/etc", "/usr", "/var", "/tmp", "/var/tmp", "/dev", "/dev/shm", "/run",
               "/run/user", "/home", "/root", "/opt", "/srv", "/boot", "/mnt", "/media")


def open_filesystems(places: Iterable[str] = OPEN_PLACES,
                     mountinfo: str = "/proc/self/mountinfo") -> list[str]:
    """One path per distinct filesystem among `places` that holds files a policy can
    name (not PSEUDO_FILESYSTEMS)."""
    try:
        with open(mountinfo, "rb") as f:
            table = parse_mountinfo(f.read().decode("utf-8", "surrogateescape"))
    except OSError:
        table = ()

    def fstype(path: str) -> str:
        m = holder(table, path)
        return m.fstype if m is not None else ""

    return distinct_filesystems(p for p in places
                                if os.path.isdir(p) and fstype(p) not in PSEUDO_FILESYSTEMS)
class _Handed(ctypes.Structure):
    _fields_ = [("id", ctypes.c_uint64), ("mask", ctypes.c_uint64), ("fd", ctypes.c_int32),
                ("pid", ctypes.c_uint32), ("hint", ctypes.c_uint32), ("rseq", ctypes.c_uint32)]


_helper: ctypes.CDLL | None = None
_helper_error: str | None = None


def load_helper() -> ctypes.CDLL | str:
    """The compiled answering loop, or why it cannot be used (the Python reader is then)."""
    global _helper, _helper_error
    if _helper is not None:
        return _helper
    if _helper_error is not None:
        return _helper_error
    if os.environ.get("ATTYGUARD_FANSWER") == "off":  # an operator's (or a bench's) choice
        return "turned off (ATTYGUARD_FANSWER=off)"
    from attyguard.kernel import build

    reason = build.helper_stale_reason()
    if reason is None:
        try:
            from attyguard.kernel.bpf import libbpf

            libbpf()  # the helper links libbpf.so.1: load it (and its declarations) first
            lib = ctypes.CDLL(str(build.helper_path()))
            vp, ci, u32, u64 = ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32, ctypes.c_uint64
            for name, res, args in (
                ("ag_fan_new", vp, [ci, ci, ci, ci, ci, u32, ci, u32, u32, ci]),
                ("ag_fan_start", ci, [vp]),
                ("ag_fan_set", None, [vp, ci, ci, ci, ci]),
                ("ag_fan_set_exec_state", None, [vp, ci, ci]),
                ("ag_fan_pop_records", ci, [vp, ctypes.c_char_p, ci]),
                ("ag_fan_pop_perm", ci, [vp, ctypes.POINTER(_Handed)]),
                ("ag_fan_answer", ci, [vp, u64, ci, ci]),
                ("ag_fan_cache_clear", None, [vp]),
                ("ag_fan_counters", ci, [vp, ctypes.POINTER(u64), ci]),
                ("ag_fan_stop", None, [vp]),
                ("ag_fan_free", None, [vp]),
            ):
                fn = getattr(lib, name)
                fn.restype = res
                fn.argtypes = args
            _helper = lib
            return lib
        except (OSError, AttributeError) as exc:
            reason = f"cannot load {build.helper_path().name}: {exc}"
    _helper_error = reason
    return reason


class CAnswerer:
    """fanswer.c's loop over one fanotify group (and the ring buffer), on its own thread.

    `notify_fd` (an eventfd) is written when an event is handed over or records
    pile up; the caller pops them (`pop_records`, `pop_perm`) and answers each
    handed event exactly once with `answer`. `close` stops the thread (allowing
    whatever still waits) and frees everything; answers after it are no-ops.
    """

    def __init__(self, lib: ctypes.CDLL, *, fan_fd: int, ring_map_fd: int, guarded_fd: int,
                 denied_fd: int, deadline_ms: int, deadline_deny: bool,
                 cache_ttl_ms: int = 10_000, queue_max: int = 32 << 20,
                 notify_only: bool = False) -> None:
        self._lib = lib
        self.notify_fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        h = lib.ag_fan_new(fan_fd, ring_map_fd, guarded_fd, denied_fd, self.notify_fd,
                           max(1, deadline_ms), int(deadline_deny), cache_ttl_ms, queue_max,
                           int(notify_only))
        if not h:
            os.close(self.notify_fd)
            raise FanotifyError(errno.ENOMEM, "ag_fan_new failed (ring buffer or memory)")
        self._h: int | None = h
        self._buf = ctypes.create_string_buffer(1 << 18)
        self._handed = _Handed()
        self.records_popped = 0  # mod 2^32, as C counts them

    def start(self) -> None:
        assert self._h is not None
        rc = self._lib.ag_fan_start(self._h)
        if rc < 0:
            raise FanotifyError(-rc, f"pthread_create: {os.strerror(-rc)}")

    def configure(self, *, trace_all: bool, uid_scope: bool, hand_all: bool,
                  any_denied: bool) -> None:
        if self._h is not None:
            self._lib.ag_fan_set(self._h, int(trace_all), int(uid_scope), int(hand_all),
                                 int(any_denied))

    def set_exec_state(self, exec_state_fd: int, *, warn_by_records: bool) -> None:
        """Before start: the BPF `exec_state` map (bounds each exec's follow-ups), and
        whether warn judges AG_DONE records instead of notifications (see fanswer.c)."""
        if self._h is not None:
            self._lib.ag_fan_set_exec_state(self._h, exec_state_fd, int(warn_by_records))

    def wait_clear(self) -> None:
        with contextlib.suppress(BlockingIOError):
            os.eventfd_read(self.notify_fd)

    def pop_records(self) -> Iterator[bytes]:
        while self._h is not None:
            n = self._lib.ag_fan_pop_records(self._h, self._buf, len(self._buf))
            if n <= 0:
                return
            raw = self._buf.raw[:n]
            off = 0
            while off + 4 <= n:
                (size,) = struct.unpack_from("=I", raw, off)
                # the index C gave it (see PermEvent.rseq): every queued record is popped
                self.records_popped = (self.records_popped + 1) & 0xFFFFFFFF
                yield raw[off + 4 : off + 4 + size]
                off += 4 + size

    def pop_perm(self) -> PermEvent | None:
        if self._h is None or not self._lib.ag_fan_pop_perm(self._h, ctypes.byref(self._handed)):
            return None
        e = self._handed
        return PermEvent(e.fd, e.pid, e.mask, e.id, e.hint, e.rseq)

    def answer(self, event: PermEvent, allow: bool, *, cache: bool = False) -> int:
        """1: answered now; 2: C answered it at its deadline already; 0: unknown/closed."""
        if self._h is None:
            return 0
        return int(self._lib.ag_fan_answer(self._h, event.id, int(allow), int(cache)))

    def clear_cache(self) -> None:
        if self._h is not None:
            self._lib.ag_fan_cache_clear(self._h)

    def counters(self) -> dict[str, int]:
        if self._h is None:
            return {}
        out = (ctypes.c_uint64 * len(C_COUNTERS))()
        self._lib.ag_fan_counters(self._h, out, len(C_COUNTERS))
        return dict(zip(C_COUNTERS, (int(v) for v in out), strict=True))

    def close(self) -> None:
        h, self._h = self._h, None
        if h is not None:
            self._lib.ag_fan_free(h)
            os.close(self.notify_fd)
