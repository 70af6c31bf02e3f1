"""Which mounts the fanotify rung marks, and noticing mounts that come and go.

This module owns the *mount policy* of rung 2 (a pure function over
/proc/self/mountinfo) and `MountWatcher`, which tells the layer when the mount
table changed (the kernel flags /proc/self/mountinfo with POLLPRI on every
mount or unmount in the reader's namespace; that is what systemd and
util-linux's libmount use, and it needs no kernel newer than 2.6.15, where the
fanotify mount notifications of 6.15 would). The marking itself is the
layer's (attyguard/kernel/layer.py).

The policy, the same at start and for every later mount: a mount is marked
when it holds one of the exec roots (the directories of PATH, the system
ones and the places a user can write and then exec: `fanotify.default_exec_paths`,
or the layer's `mark_paths`), or when it is mounted at or below one of them
(a tmpfs mounted on /tmp/x, a user's /run/user/1000). Each filesystem is
marked once (a filesystem mark covers all its mounts). Pseudo filesystems
that hold no programs (proc, sysfs, cgroup…) are never marked; the kernel
refuses permission marks on some of them anyway.

Not seen here: mounts in another mount namespace (`unshare -m`), which
/proc/self/mountinfo of the daemon does not list.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "Mount",
    "MountWatcher",
    "marked_by_policy",
    "parse_mountinfo",
]

# Filesystems that hold no executables a user could run (and some on which the
# kernel refuses permission events): never marked.
PSEUDO_FSTYPES = frozenset({
    "proc", "sysfs", "cgroup", "cgroup2", "devpts", "mqueue", "bpf", "tracefs", "debugfs",
    "securityfs", "pstore", "efivarfs", "configfs", "fusectl", "binfmt_misc", "autofs",
    "nsfs", "hugetlbfs", "rpc_pipefs", "nfsd", "selinuxfs",
})

_ESCAPE = re.compile(r"\\([0-7]{3})")


@dataclass(frozen=True, slots=True)
class Mount:
    """One line of /proc/self/mountinfo (the fields the policy needs)."""

    mount_id: int
    dev: str  # "major:minor" of the filesystem
    mount_point: str
    fstype: str
    source: str


def _unescape(field: str) -> str:
    # mountinfo writes space, tab, newline and backslash in paths as octal escapes
    return _ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), field)


def parse_mountinfo(text: str) -> tuple[Mount, ...]:
    """Parse mountinfo(5) text; lines that are not well formed are skipped."""
    out: list[Mount] = []
    for line in text.splitlines():
        fields = line.split()
        try:
            sep = fields.index("-", 6)
            out.append(Mount(
                mount_id=int(fields[0]),
                dev=fields[2],
                mount_point=_unescape(fields[4]),
                fstype=fields[sep + 1],
                source=_unescape(fields[sep + 2]) if len(fields) > sep + 2 else "",
            ))
        except (ValueError, IndexError):
            continue
    return tuple(out)


def _under(path: str, root: str) -> bool:
    root = root.rstrip("/") or "/"
    return path == root or path.startswith(root + "/") or root == "/"


def holder(mounts: Sequence[Mount], path: str) -> Mount | None:
    """The mount a path lies on: the last-listed mount whose mount point is its longest prefix."""
    best: Mount | None = None
    for m in mounts:
        if _under(path, m.mount_point) and (
                best is None or len(m.mount_point) >= len(best.mount_point)):
            best = m
    return best


def marked_by_policy(mounts: Sequence[Mount], roots: Iterable[str]) -> dict[str, Mount]:
    """dev -> the mount to mark for it: mounts holding a root, and mounts at or under one.

    One mount per filesystem (the first one the policy meets), in a stable order.
    """
    roots = [os.path.normpath(r) for r in roots if r.startswith("/")]
    chosen: dict[str, Mount] = {}

    def take(m: Mount | None) -> None:
        if m is not None and m.fstype not in PSEUDO_FSTYPES and m.dev not in chosen:
            chosen[m.dev] = m

    for r in roots:
        take(holder(mounts, r))
    for m in mounts:
        if any(_under(m.mount_point, r) for r in roots if r != "/"):
            take(m)
    return chosen


class MountWatcher:
    """/proc/self/mountinfo, open: its fd polls POLLPRI when the mount table changes."""

    PATH = "/proc/self/mountinfo"

    def __init__(self) -> None:
        self.fd = os.open(self.PATH, os.O_RDONLY | os.O_CLOEXEC)

    def read(self) -> tuple[Mount, ...]:
        """The current table (re-reading from the start also re-arms POLLPRI)."""
        chunks: list[bytes] = []
        os.lseek(self.fd, 0, os.SEEK_SET)
        while True:
            chunk = os.read(self.fd, 1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
        return parse_mountinfo(b"".join(chunks).decode("utf-8", "surrogateescape"))

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
