"""libseccomp through ctypes: the `policy run` filter and the daemon's side of its listener.

Two users, one binding:

* the launcher (`attyguard policy run`, any user) builds a filter from an
  entry's `blocked_syscalls` and loads it on its own thread just before it
  execs the command: blocked calls return SECCOMP_RET_USER_NOTIF, everything
  else is allowed. libseccomp sets no_new_privs itself (so no root is
  needed) and asks the kernel for a listener (SECCOMP_FILTER_FLAG_NEW_LISTENER)
  because the filter has a NOTIFY action.
* the daemon's supervisor receives and answers notifications on a listener
  fd another process handed it (`Listener`).

Architectures (the x32/ia32 question): the filter carries the native x86-64
ABI *and* ia32 (`int $0x80` from a 64-bit process, or a 32-bit program), with
the same names resolved per ABI by libseccomp (ia32 `connect` also through
`socketcall`), so a 32-bit call cannot slip past and a 32-bit program still
runs. Any other ABI (x32 included: libseccomp's x86-64 filter sends
`nr >= 0x40000000` to the bad-arch action) kills the process: no policy name
can be judged there, and a mixed-ABI call is the classic filter bypass.

libseccomp (Debian `libseccomp2`, on every systemd machine) rather than
hand-written cBPF: it knows each ABI's numbers, socketcall multiplexing and
the x32 bit, which a hand-written filter would have to re-derive. No Python
binding is used: Debian's `python3-seccomp` is built for the system Python,
not the project's venv, and PyPI's `pyseccomp` lacks the notify calls, which
are a few plain C functions here.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import functools
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ARCH_NAMES",
    "Listener",
    "Notification",
    "SeccompError",
    "build_filter",
    "is_listener",
    "syscall_name",
    "unavailable_reason",
]

SCMP_ACT_ALLOW = 0x7FFF0000
SCMP_ACT_NOTIFY = 0x7FC00000
SCMP_ACT_KILL_PROCESS = 0x80000000
SCMP_FLTATR_ACT_BADARCH = 2
SCMP_FLTATR_CTL_NNP = 3
SCMP_ARCH_X86_64 = 0xC000003E  # AUDIT_ARCH_X86_64
SCMP_ARCH_X86 = 0x40000003  # AUDIT_ARCH_I386
ARCH_NAMES = {SCMP_ARCH_X86_64: "x86-64", SCMP_ARCH_X86: "ia32"}
SECCOMP_USER_NOTIF_FLAG_CONTINUE = 1
LISTENER_LINK = "anon_inode:seccomp notify"


class SeccompError(Exception):
    """libseccomp is missing, or refused (the message says which call and why)."""


class _Data(ctypes.Structure):
    _fields_ = [("nr", ctypes.c_int), ("arch", ctypes.c_uint32),
                ("instruction_pointer", ctypes.c_uint64), ("args", ctypes.c_uint64 * 6)]


class _Notif(ctypes.Structure):
    _fields_ = [("id", ctypes.c_uint64), ("pid", ctypes.c_uint32),
                ("flags", ctypes.c_uint32), ("data", _Data)]


class _Resp(ctypes.Structure):
    _fields_ = [("id", ctypes.c_uint64), ("val", ctypes.c_int64),
                ("error", ctypes.c_int32), ("flags", ctypes.c_uint32)]


@functools.cache
def _lib() -> Any:
    name = ctypes.util.find_library("seccomp") or "libseccomp.so.2"
    try:
        lib = ctypes.CDLL(name, use_errno=True)
    except OSError as exc:
        raise SeccompError(f"libseccomp not found ({exc}; Debian package libseccomp2)") from None
    vp, u32, c_int = ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int
    lib.seccomp_init.restype, lib.seccomp_init.argtypes = vp, [u32]
    lib.seccomp_release.restype, lib.seccomp_release.argtypes = None, [vp]
    lib.seccomp_arch_add.argtypes = [vp, u32]
    lib.seccomp_attr_set.argtypes = [vp, c_int, u32]
    lib.seccomp_rule_add.argtypes = [vp, u32, c_int, ctypes.c_uint]
    lib.seccomp_load.argtypes = [vp]
    lib.seccomp_notify_fd.argtypes = [vp]
    lib.seccomp_syscall_resolve_name_arch.argtypes = [u32, ctypes.c_char_p]
    lib.seccomp_syscall_resolve_num_arch.restype = vp  # malloc'd: freed with free()
    lib.seccomp_syscall_resolve_num_arch.argtypes = [u32, c_int]
    lib.seccomp_notify_alloc.argtypes = [ctypes.POINTER(ctypes.POINTER(_Notif)),
                                         ctypes.POINTER(ctypes.POINTER(_Resp))]
    lib.seccomp_notify_free.restype = None
    lib.seccomp_notify_free.argtypes = [ctypes.POINTER(_Notif), ctypes.POINTER(_Resp)]
    lib.seccomp_notify_receive.argtypes = [c_int, ctypes.POINTER(_Notif)]
    lib.seccomp_notify_respond.argtypes = [c_int, ctypes.POINTER(_Resp)]
    lib.seccomp_notify_id_valid.argtypes = [c_int, ctypes.c_uint64]
    # The notify calls answer EOPNOTSUPP until libseccomp has probed the kernel.
    if lib.seccomp_api_get() < 6:
        raise SeccompError("this kernel or libseccomp has no user notification "
                           f"(API level {lib.seccomp_api_get()}, 6 needed)")
    return lib


def unavailable_reason() -> str | None:
    try:
        _lib()
    except SeccompError as exc:
        return str(exc)
    return None


def build_filter(blocked: Sequence[str]) -> Any:
    """A libseccomp context (not loaded yet): `blocked` notify, the rest allowed.

    Raises SeccompError naming the syscall libseccomp does not know. The
    caller loads it with `load(ctx)` on the thread that will exec.
    """
    lib = _lib()
    ctx = lib.seccomp_init(SCMP_ACT_ALLOW)
    if not ctx:
        raise SeccompError("seccomp_init failed")
    try:
        _check(lib.seccomp_arch_add(ctx, SCMP_ARCH_X86), "adding the ia32 ABI")
        _check(lib.seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS),
               "setting the foreign-ABI action")
        _check(lib.seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 1), "asking for no_new_privs")
        for name in blocked:
            nr = lib.seccomp_syscall_resolve_name_arch(SCMP_ARCH_X86_64, name.encode())
            if nr < 0:
                raise SeccompError(f"libseccomp does not know the syscall {name!r}")
            # The native number: libseccomp translates it for ia32 (by name) and
            # skips an ABI that has no such call.
            _check(lib.seccomp_rule_add(ctx, SCMP_ACT_NOTIFY, nr, 0), f"a rule for {name}")
    except BaseException:
        lib.seccomp_release(ctx)
        raise
    return ctx


def load(ctx: Any) -> int:
    """Load on the calling thread (no TSYNC) and return the listener fd (O_CLOEXEC)."""
    lib = _lib()
    try:
        _check(lib.seccomp_load(ctx), "loading the filter")
        fd = int(lib.seccomp_notify_fd(ctx))
        if fd < 0:
            raise SeccompError(f"no listener: {os.strerror(-fd)}")
        return fd
    finally:
        lib.seccomp_release(ctx)


def release(ctx: Any) -> None:
    _lib().seccomp_release(ctx)


def _check(rc: int, what: str) -> None:
    if rc < 0:
        detail = ("another seccomp listener is already installed on this process (a "
                  "policy process cannot start another)" if -rc == errno.EBUSY
                  else os.strerror(-rc))
        raise SeccompError(f"{what}: {detail}")


@functools.cache
def syscall_name(arch: int, nr: int) -> str:
    """`unlinkat`, or `syscall 999` where libseccomp has no name for it."""
    lib = _lib()
    ptr = lib.seccomp_syscall_resolve_num_arch(arch, nr)
    if not ptr:
        return f"syscall {nr}"
    try:
        return ctypes.string_at(ptr).decode("ascii", "replace")
    finally:
        ctypes.CDLL(None).free(ctypes.c_void_p(ptr))


def is_listener(fd: int) -> bool:
    """Is `fd` (in this process) a seccomp notification listener?"""
    try:
        return os.readlink(f"/proc/self/fd/{fd}") == LISTENER_LINK
    except OSError:
        return False


@dataclass(frozen=True, slots=True)
class Notification:
    id: int
    pid: int  # the calling thread, in the daemon's pid namespace
    arch: int
    nr: int
    args: tuple[int, ...]


class Listener:
    """The daemon's end of one launched process tree's filter. Not thread-safe:
    one supervisor thread receives and answers."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        lib = _lib()
        self._req = ctypes.POINTER(_Notif)()
        self._resp = ctypes.POINTER(_Resp)()
        rc = lib.seccomp_notify_alloc(ctypes.byref(self._req), ctypes.byref(self._resp))
        _check(rc, "allocating notification buffers")

    def receive(self) -> Notification | None:
        """One notification; None when its caller is already gone (ENOENT) or
        the call was interrupted. Call only when poll() says the fd is readable."""
        # The kernel refuses (EINVAL) a buffer that still holds the last notification.
        ctypes.memset(self._req, 0, ctypes.sizeof(_Notif))
        ctypes.set_errno(0)
        rc = _lib().seccomp_notify_receive(self.fd, self._req)
        if rc < 0:
            # libseccomp reports a failed ioctl as ECANCELED; errno has the kernel's word.
            err = ctypes.get_errno() or -rc
            if err in (errno.ENOENT, errno.EINTR):
                return None
            raise SeccompError(f"receiving a notification: {os.strerror(err)}")
        n = self._req.contents
        return Notification(int(n.id), int(n.pid), int(n.data.arch), int(n.data.nr),
                            tuple(int(a) for a in n.data.args))

    def id_valid(self, notif_id: int) -> bool:
        """Is the caller still waiting in this call? (Before trusting anything read
        from its memory or /proc: the pid may have been reused.)"""
        return bool(_lib().seccomp_notify_id_valid(self.fd, notif_id) == 0)

    def respond(self, notif_id: int, *, error: int = 0) -> bool:
        """`error` 0: let the call run (SECCOMP_USER_NOTIF_FLAG_CONTINUE); else fail
        it with -error without running it. False when the caller is gone."""
        r = self._resp.contents
        ctypes.memset(ctypes.addressof(r), 0, ctypes.sizeof(_Resp))
        r.id = notif_id
        if error:
            r.error = -error
        else:
            r.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE
        return bool(_lib().seccomp_notify_respond(self.fd, self._resp) == 0)

    def close(self) -> None:
        if self._req:
            _lib().seccomp_notify_free(self._req, self._resp)
            self._req = ctypes.POINTER(_Notif)()
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
