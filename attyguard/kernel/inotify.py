"""inotify directory-creation watches, through ctypes: the group, its watches, its events.

This module owns the system calls only (inotify_init1, inotify_add_watch and
the event records). Python's standard library has no binding for them and
they are two calls plus a fixed record, so a dependency is not worth it. What
to do with a new directory is the file gate's business
(attyguard/policy/files.py says why it uses inotify rather than a fanotify
FID group).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["IN_ISDIR", "IN_Q_OVERFLOW", "DirEvent", "DirWatcher"]

IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_Q_OVERFLOW = 0x00004000
IN_IGNORED = 0x00008000
IN_ONLYDIR = 0x01000000
IN_DONT_FOLLOW = 0x02000000
IN_ISDIR = 0x40000000

_EVENT = struct.Struct("=iIII")  # wd, mask, cookie, len (then len bytes of name)

_libc = ctypes.CDLL(None, use_errno=True)
_libc.inotify_init1.argtypes = [ctypes.c_int]
_libc.inotify_init1.restype = ctypes.c_int
_libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
_libc.inotify_add_watch.restype = ctypes.c_int


@dataclass(frozen=True, slots=True)
class DirEvent:
    directory: str  # the watched directory's path as it was watched; "" on overflow
    name: str
    mask: int


class DirWatcher:
    """Watches directories for entries created in (or moved into) them; non-blocking."""

    def __init__(self) -> None:
        ctypes.set_errno(0)
        fd = _libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if fd < 0:
            err = ctypes.get_errno()
            raise OSError(err, f"inotify_init1: {os.strerror(err)}")
        self.fd: int = fd
        self.paths: dict[int, str] = {}  # watch descriptor -> the directory's path

    def watch(self, directory: str) -> None:
        """Watch `directory` (not through a symlink) for creations. Raises OSError
        (ENOSPC: past fs.inotify.max_user_watches)."""
        ctypes.set_errno(0)
        wd = _libc.inotify_add_watch(self.fd, os.fsencode(directory),
                                     IN_CREATE | IN_MOVED_TO | IN_ONLYDIR | IN_DONT_FOLLOW)
        if wd < 0:
            err = ctypes.get_errno()
            raise OSError(err, f"inotify_add_watch {directory}: {os.strerror(err)}")
        self.paths[wd] = directory

    def read(self) -> list[DirEvent]:
        """Every event queued now ([] when none): never blocks."""
        try:
            buf = os.read(self.fd, 64 * 1024)
        except BlockingIOError:
            return []
        return list(self._parse(buf))

    def _parse(self, buf: bytes) -> Iterator[DirEvent]:
        off = 0
        while off + _EVENT.size <= len(buf):
            wd, mask, _cookie, length = _EVENT.unpack_from(buf, off)
            raw = buf[off + _EVENT.size:off + _EVENT.size + length]
            off += _EVENT.size + length
            if mask & IN_Q_OVERFLOW:
                yield DirEvent("", "", mask)
                continue
            if mask & IN_IGNORED:  # the directory is gone (or unmounted)
                self.paths.pop(wd, None)
                continue
            directory = self.paths.get(wd)
            if directory is not None:
                yield DirEvent(directory, os.fsdecode(raw.split(b"\0", 1)[0]), mask)

    def close(self) -> None:
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = -1
