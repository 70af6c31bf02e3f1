"""The daemon's seccomp supervisor: answers the notifications of `policy run` processes.

A process started with `attyguard policy run NAME -- CMD` runs under a
seccomp filter whose blocked calls wait in the kernel
(SECCOMP_RET_USER_NOTIF) until this thread answers on the listener the
launcher handed the daemon (attyguard/policy/launch.py). The answer comes
first, from state read without a lock (the mode, the entry's list), so no
lock holder, log or sink can hold a syscall: audit/alert let the call run
(SECCOMP_USER_NOTIF_FLAG_CONTINUE), enforce fails it with EPERM without
running it. The violation is recorded afterwards, by a second thread, from a
queue.

Before the launcher has exec'd the command its own calls (handing the
listener over, closing it, the execve itself) may hit the filter too: they
are let through without a record while the launcher's connection to the
daemon is still open (it is close-on-exec, so the exec itself ends that
window) and at most LAUNCH_WINDOW_S after the hand-over.

When the daemon dies or closes a listener, the kernel fails every waiting and
later notified call of that process tree with ENOSYS: fail closed, the
blocked call does not run.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import queue
import select
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from attyguard.policy.seccomp import (
    ARCH_NAMES,
    Listener,
    Notification,
    SeccompError,
    syscall_name,
)

__all__ = ["LAUNCH_WINDOW_S", "PATH_ARG", "Answer", "Launch", "Supervisor"]

log = logging.getLogger("attyguard.daemon")

LAUNCH_WINDOW_S = 10.0
_PATH_MAX = 4096
# Which argument is a path, for the record's detail (x86-64 and ia32 names alike).
PATH_ARG = {
    "open": 0, "creat": 0, "openat": 1, "openat2": 1, "unlink": 0, "unlinkat": 1,
    "rmdir": 0, "mkdir": 0, "mkdirat": 1, "rename": 0, "renameat": 1, "renameat2": 1,
    "link": 0, "linkat": 1, "symlink": 1, "symlinkat": 2, "chmod": 0, "fchmodat": 1,
    "chown": 0, "lchown": 0, "fchownat": 1, "truncate": 0, "execve": 0, "execveat": 1,
    "chdir": 0, "chroot": 0, "mount": 1, "umount2": 0, "mknod": 0, "mknodat": 1,
    "access": 0, "faccessat": 1, "faccessat2": 1, "stat": 0, "lstat": 0,
    "newfstatat": 1, "statx": 1, "readlink": 0, "readlinkat": 1, "utimensat": 1,
    "swapon": 0, "swapoff": 0, "pivot_root": 0, "acct": 0,
}


@dataclass(slots=True)
class Launch:
    """One `policy run`: its entry, the launcher's pid/uid, and its connection (a
    dup of the daemon's end: EOF there means the launcher exec'd or died)."""

    entry: str
    pid: int
    uid: int
    program: str
    conn: socket.socket | None
    listener: Listener
    accepted: float = field(default_factory=time.monotonic)
    execd: bool = False
    notifications: int = 0

    def launching(self) -> bool:
        """Still the launcher itself (not yet the command)?"""
        if self.execd:
            return False
        if self.conn is None or time.monotonic() - self.accepted > LAUNCH_WINDOW_S:
            self.execd = True
            return False
        try:
            data = self.conn.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            return True
        except OSError:
            data = b""
        if data:
            return True  # something unread: still open
        self.execd = True
        return False


@dataclass(frozen=True, slots=True)
class Answer:
    """The decision on one notification: `error` 0 lets the call run."""

    error: int
    record: bool  # a violation to record (False: the launcher's own call, or no longer blocked)
    name: str
    mode: str = ""


class Supervisor:
    def __init__(self, decide: Callable[[Launch, str], Answer],
                 record: Callable[[Launch, int, str, str, str, Answer, float], None],
                 on_exec: Callable[[Launch], None]) -> None:
        self.decide = decide
        self.record = record
        self.on_exec = on_exec
        self.launches: dict[int, Launch] = {}  # listener fd -> launch
        self._conns: dict[int, Launch] = {}  # connection fd -> launch (until its exec)
        self._new: list[Launch] = []
        self._lock = threading.Lock()
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._stop = threading.Event()
        self._queue: queue.SimpleQueue[tuple[Any, ...] | None] = queue.SimpleQueue()
        self.counters = {"launched": 0, "notifications": 0, "continued": 0, "refused": 0,
                         "launcher_calls": 0, "gone": 0, "errors": 0}
        self._thread = threading.Thread(target=self._run, name="policy-seccomp", daemon=True)
        self._recorder = threading.Thread(target=self._record_loop, name="policy-seccomp-rec",
                                          daemon=True)
        self._thread.start()
        self._recorder.start()

    def add(self, launch: Launch) -> None:
        with self._lock:
            self._new.append(launch)
            self.counters["launched"] += 1
        with contextlib.suppress(BlockingIOError):
            os.write(self._wake_w, b"x")

    def live_for(self, uid: int) -> int:
        """How many supervised launches (running or being taken) belong to `uid`."""
        with self._lock:
            return sum(1 for x in (*self.launches.values(), *self._new) if x.uid == uid)

    def stop(self) -> None:
        """Close every listener: the kernel then fails their blocked calls with ENOSYS."""
        self._stop.set()
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")
        self._thread.join(2.0)
        self._queue.put(None)
        self._recorder.join(2.0)
        with self._lock:
            launches = list(self.launches.values()) + self._new
            self.launches.clear()
            self._new.clear()
        for launch in launches:
            self._close(launch)
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)

    def status(self) -> dict[str, Any]:
        with self._lock:
            live = [{"entry": x.entry, "pid": x.pid, "program": x.program,
                     "notifications": x.notifications} for x in self.launches.values()]
        return {"listeners": len(live), "launches": live, **self.counters}

    # ---- the thread

    def _run(self) -> None:
        poller = select.poll()
        poller.register(self._wake_r, select.POLLIN)
        while not self._stop.is_set():
            try:
                events = poller.poll(500)
            except InterruptedError:
                continue
            for fd, ev in events:
                try:
                    if fd == self._wake_r:
                        self._take_new(poller)
                    elif fd in self._conns:
                        launch = self._conns[fd]
                        if not launch.launching():
                            self._exec_seen(poller, fd, launch)
                    elif fd in self.launches:
                        self._serve(poller, fd, ev)
                except Exception:
                    self.counters["errors"] += 1
                    log.exception("policy: seccomp supervisor failed on fd %d", fd)

    def _take_new(self, poller: Any) -> None:
        with contextlib.suppress(BlockingIOError):
            os.read(self._wake_r, 4096)
        with self._lock:
            new, self._new = self._new, []
            for launch in new:
                self.launches[launch.listener.fd] = launch
        for launch in new:
            poller.register(launch.listener.fd, select.POLLIN)
            if launch.conn is not None:
                self._conns[launch.conn.fileno()] = launch
                poller.register(launch.conn.fileno(), select.POLLIN | select.POLLRDHUP)

    def _exec_seen(self, poller: Any, fd: int, launch: Launch) -> None:
        poller.unregister(fd)
        del self._conns[fd]
        if launch.conn is not None:
            launch.conn.close()
            launch.conn = None
        try:
            self.on_exec(launch)
        except Exception:
            self.counters["errors"] += 1
            log.exception("policy: watching launched pid %d failed", launch.pid)

    def _serve(self, poller: Any, fd: int, ev: int) -> None:
        launch = self.launches[fd]
        failed = False
        if ev & select.POLLIN:
            try:
                self._answer(launch)
            except SeccompError as exc:
                # Never spin on a broken listener: dropping it makes the kernel fail
                # this tree's blocked calls with ENOSYS (closed, not open).
                self.counters["errors"] += 1
                log.error("policy: seccomp listener of pid %d (%s) dropped: %s", launch.pid,
                          launch.entry, exc)
                failed = True
        if failed or (not ev & select.POLLIN and \
                ev & (select.POLLHUP | select.POLLERR | select.POLLNVAL)):
            # Every process under this filter has exited.
            poller.unregister(fd)
            conn = launch.conn
            if conn is not None and conn.fileno() in self._conns:
                poller.unregister(conn.fileno())
                del self._conns[conn.fileno()]
            with self._lock:
                self.launches.pop(fd, None)
            self._close(launch)

    def _answer(self, launch: Launch) -> None:
        listener = launch.listener
        n = listener.receive()
        if n is None:
            self.counters["gone"] += 1
            return
        self.counters["notifications"] += 1
        launch.notifications += 1
        now = time.time()
        name = syscall_name(n.arch, n.nr)
        if n.pid == launch.pid and launch.launching():
            # The launcher's own call before its exec (module doc).
            self.counters["launcher_calls"] += 1
            listener.respond(n.id)
            return
        answer = self.decide(launch, name)
        path, exe, tgid = None, "", n.pid
        if answer.record:
            # Read while the caller waits in the call: once answered it may exit, and
            # /proc no longer says who it was.
            path = _path_of(n, name)
            exe, tgid = _exe_of(n.pid), _tgid_of(n.pid)
        # The pid may have been reused since the call; anything read about it is
        # trusted only if the call is still waiting.
        valid = listener.id_valid(n.id)
        if not listener.respond(n.id, error=answer.error) or not valid:
            self.counters["gone"] += 1
            path, exe = None, ""
        else:
            self.counters["refused" if answer.error else "continued"] += 1
        if answer.record:
            arch = ARCH_NAMES.get(n.arch, hex(n.arch))
            extra = [f'"{path}"'] if path is not None else []
            if arch != "x86-64":
                extra.append(arch)
            detail = f"blocked syscall: {name}" + (f" ({', '.join(extra)})" if extra else "")
            self._queue.put((launch, tgid, exe, name, detail, answer, now))

    def _record_loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            try:
                self.record(*item)
            except Exception:
                self.counters["errors"] += 1
                log.exception("policy: recording a seccomp violation failed")

    def _close(self, launch: Launch) -> None:
        if launch.conn is not None:
            launch.conn.close()
            launch.conn = None
        launch.listener.close()


def _exe_of(pid: int) -> str:
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return ""


def _tgid_of(tid: int) -> int:
    """The process of a thread (records name processes)."""
    try:
        with open(f"/proc/{tid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"Tgid:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return tid


def _path_of(n: Notification, name: str) -> str | None:
    """The path argument read from the caller's memory (bounded; None if unreadable)."""
    index = PATH_ARG.get(name)
    if index is None:
        return None
    address = n.args[index]
    if not address:
        return None
    try:
        fd = os.open(f"/proc/{n.pid}/mem", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        chunks: list[bytes] = []
        total = 0
        while total < _PATH_MAX:
            # Page by page: a read across the end of a mapping fails whole.
            size = min(_PATH_MAX - total, 4096 - (address + total) % 4096)
            try:
                chunk = os.pread(fd, size, address + total)
            except OSError as exc:
                if exc.errno in (errno.EIO, errno.EFAULT) and chunks:
                    break
                return None
            if not chunk:
                break
            end = chunk.find(b"\0")
            if end >= 0:
                chunks.append(chunk[:end])
                break
            chunks.append(chunk)
            total += len(chunk)
        text = b"".join(chunks).decode("utf-8", "backslashreplace")
        return text.replace('"', '\\"')
    finally:
        os.close(fd)
