"""The enforce-mode file gate: fanotify FAN_OPEN_PERM on the paths a policy names.

This module owns which paths are marked (`plan_marks`, from the globs of
`blocked_files` and `allowed_files`), the gate's own fanotify group and the
thread that answers its permission events (`FileGate`), and whether an open
the syscall tracepoint saw is one the gate judges (`FileGate.covers`, so an
open is recorded once). What to answer is the runtime's business: it hands
the gate a `judge` (the pure evaluator under the runtime's lock) and a
`record` for the violations.

One record per open. In enforce the syscall tracepoint still reports every
open of a watched process. Where the gate covers the path, the runtime hands
that report to `reconcile` instead of judging it: the gate counts the opens
it judged by (pid, device, inode), and a deadline later the writer drops the
report if the gate judged that open, or judges it as seen after the fact
(`alerted`) if the gate never did (the opener was answered on the fast path
before the daemon knew it: the instant between a fork or exec and the
daemon learning of it).

Marks. A `blocked_files` glob is split at its first wildcard segment: the
directory before it (the fixed prefix) and the directories below it that
could still hold a match are marked as inodes with FAN_EVENT_ON_CHILD
(opens of the files directly in them). Directories are found by walking
the tree now; a glob whose walk would pass `max_marks` directories in all
gets a filesystem mark on its prefix's filesystem instead. `allowed_files`
means "nothing else", so a policy with one marks whole filesystems (those
under `fanotify.OPEN_PLACES`): then every open on them, by anyone, is a
permission event, answered on the fast path when the opener is not watched.
Directories created later (a new level under a `**`, a glob's fixed
directory that did not exist yet) are marked by the gate's watcher: it
watches the marked directories that a glob can reach below, and for a glob
whose fixed directory is missing its nearest existing ancestor, for new
directories (inotify), marks each new one a glob can reach (past `max_marks`,
its filesystem) and walks it once for the directories made inside it before
its watch was placed. An open in the instant between a directory's creation
and its mark is not seen by the gate.

Answers. One reader thread per gate, apart from the exec guard's group, so
file events never queue behind exec events. It answers in the order read:
an opener outside the watched trees on the fast path, a set lookup and, on
a miss, one read of the kernel's own `watched` map (`kernel_watches`: no
path, no glob, no lock); a watched one by `judge`, which must honour the
deadline it is given (the runtime's lock is taken with that timeout). The
kernel read is there because the kernel knows a child from its fork and a
matched program from its exec, before the daemon hears of either: without
it, a watched shell's `cat /etc/shadow` could open the file in the instant
between its fork and the daemon learning of it. An event the gate cannot judge
before its deadline is allowed and judged afterwards (reported `alerted`).
The reader never logs, formats a traceback, imports or opens a file: any of
those can open a file on a marked filesystem and wait on the reader itself.
Its notes go to a second thread, which also records the violations.
"""

from __future__ import annotations

import contextlib
import logging
import os
import posixpath
import queue
import re
import select
import stat
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Container
from dataclasses import dataclass, field
from typing import Any

from wcmatch import fnmatch as wcfnmatch

from attyguard.kernel import fanotify as fan
from attyguard.kernel.inotify import IN_ISDIR, IN_Q_OVERFLOW, DirWatcher
from attyguard.policy.model import OpenEvent, Policy

__all__ = ["DEFAULT_MAX_MARKS", "FileGate", "Mark", "MarkPlan", "fixed_prefix", "gate_wanted",
           "plan_marks"]

log = logging.getLogger("attyguard.daemon")

DEFAULT_MAX_MARKS = 4096  # directory (inode) marks per gate; then a filesystem mark
_JUDGED_KEPT = 4096  # (pid, dev, ino) of judged opens awaiting their tracepoint report
_RECONCILE_SLACK_S = 0.1
O_PATH = 0o10000000
_MAGIC = re.compile(r"[*?\[]")
_BATCH = 256  # events read at once

# judge(pid, path, when, deadline) -> a Violation (deny) or None (allow);
# raises TimeoutError when it cannot decide before `deadline` (monotonic).
Judge = Callable[[int, str, float, float], Any]
# late(pid, path, when): judge an open that was allowed without judging, and record.
Late = Callable[[int, str, float], None]
# kernel_watches(pid): whether the kernel's scope map has the process (the miss path).
KernelWatches = Callable[[int], bool]


@dataclass(frozen=True, slots=True)
class Mark:
    path: str
    how: str  # "inode": a directory (opens of its files) | "filesystem" (or "mount")
    why: str  # the glob, or "allowed_files"


@dataclass(frozen=True, slots=True)
class MarkPlan:
    marks: tuple[Mark, ...]
    notes: tuple[str, ...] = ()  # what is marked more widely than asked, or not at all
    # The blocked_files globs marked directory by directory: the gate watches their
    # trees for directories created later (FileGate's watcher).
    globs: tuple[str, ...] = ()

    def to_json(self) -> dict[str, object]:
        return {"marks": [{"path": m.path, "how": m.how, "why": m.why} for m in self.marks],
                "notes": list(self.notes)}


def fixed_prefix(pattern: str) -> tuple[str, tuple[str, ...]]:
    """(the directory before the first wildcard segment, the segments from there).

    A literal path is its parent directory and its name: the mark goes on the
    directory, FAN_EVENT_ON_CHILD reports the file (also once it is re-created).
    """
    segments = pattern.split("/")[1:]
    for i, segment in enumerate(segments):
        if _MAGIC.search(segment):
            return "/" + "/".join(segments[:i]), tuple(segments[i:])
    return "/" + "/".join(segments[:-1]), tuple(segments[-1:])


def _segment_matcher(segment: str) -> Callable[[str], bool]:
    if segment == "**":
        return lambda name: True
    flags = wcfnmatch.DOTMATCH | wcfnmatch.CASE
    return lambda name: wcfnmatch.fnmatch(name, segment, flags=flags)


def _closure(states: set[int], rest: tuple[str, ...]) -> set[int]:
    """`**` matches zero segments too: a state on it also stands on the next one."""
    out, todo = set(states), list(states)
    while todo:
        p = todo.pop()
        if p < len(rest) and rest[p] == "**" and p + 1 not in out:
            out.add(p + 1)
            todo.append(p + 1)
    return out


def _directories(pattern: str, budget: int) -> list[str] | None:
    """The directories that can hold a file matching `pattern` now (its fixed prefix
    and those below it whose path can still match), or None past `budget`."""
    base, rest = fixed_prefix(pattern)
    matchers = [_segment_matcher(s) for s in rest]
    out: list[str] = []
    start = _closure({0}, rest)
    stack: list[tuple[str, set[int]]] = [(base, start)]
    while stack:
        directory, states = stack.pop()
        try:
            st = os.stat(directory)
        except OSError:
            continue  # not there now: created later, the gate's watcher marks it
        if not stat.S_ISDIR(st.st_mode):
            continue
        out.append(directory)
        if len(out) > budget:
            return None
        # A directory segment consumes a state that is not the last (the file's own
        # segment), or stays on a `**`.
        if not any(p < len(rest) - 1 or (p < len(rest) and rest[p] == "**") for p in states):
            continue
        try:
            entries = list(os.scandir(directory))
        except OSError:
            continue
        for entry in entries:
            try:
                if not entry.is_dir(follow_symlinks=False):
                    continue  # a symlinked directory: its files' real paths are elsewhere
            except OSError:
                continue
            nxt: set[int] = set()
            for p in states:
                if p < len(rest) and rest[p] == "**":
                    nxt.add(p)
                elif p < len(rest) - 1 and matchers[p](entry.name):
                    nxt.add(p + 1)
            if nxt:
                stack.append((entry.path, _closure(nxt, rest)))
    return out


def plan_marks(policy: Policy, *, max_marks: int = DEFAULT_MAX_MARKS,
               filesystems: Callable[[], list[str]] = fan.open_filesystems) -> MarkPlan:
    """Which marks make every open the policy's file rules speak of a permission event."""
    marks: list[Mark] = []
    notes: list[str] = []
    whole: dict[int, str] = {}  # st_dev -> the path its filesystem mark is placed on

    def mark_filesystem(path: str, why: str) -> None:
        try:
            dev = os.stat(path).st_dev
        except OSError:
            return
        if dev not in whole:
            whole[dev] = path
            marks.append(Mark(path, "filesystem", why))

    if any(p.allowed_files is not None for p in policy.processes):
        for path in filesystems():
            mark_filesystem(path, "allowed_files")
    seen: set[str] = set()
    globs: list[str] = []
    budget = max_marks
    for proc in policy.processes:
        for glob in proc.blocked_files:
            found = _directories(glob.pattern, budget)
            if found is None:
                base, _ = fixed_prefix(glob.pattern)
                while base != "/" and not os.path.isdir(base):
                    base = posixpath.dirname(base)
                notes.append(f"{glob.source or proc.name}: {glob.pattern} needs more than "
                             f"{max_marks} directory marks; its filesystem is marked whole")
                mark_filesystem(base, glob.pattern)
                continue
            if glob.pattern not in globs:
                globs.append(glob.pattern)
            if not found:
                notes.append(f"{glob.source or proc.name}: {glob.pattern}: no directory of it "
                             "exists now; marked when one is created")
            for directory in found:
                try:
                    dev = os.stat(directory).st_dev
                except OSError:
                    continue
                if dev in whole or directory in seen:
                    continue  # already covered
                seen.add(directory)
                marks.append(Mark(directory, "inode", glob.pattern))
                budget -= 1
    return MarkPlan(tuple(marks), tuple(notes), tuple(globs))


def reach(pattern: str, directory: str) -> tuple[bool, bool]:
    """(whether `directory` can hold a file matching `pattern`: it is marked,
    whether a directory created in it can: it is watched). A directory above
    the glob's fixed prefix, on its path, is watched only."""
    base, rest = fixed_prefix(pattern)
    under = base.rstrip("/") + "/"
    if directory != base and not directory.startswith(under):
        return False, (base + "/").startswith(directory.rstrip("/") + "/")
    states = _closure({0}, rest)
    for name in directory[len(base):].strip("/").split("/") if directory != base else ():
        nxt: set[int] = set()
        for p in states:
            if p < len(rest) and rest[p] == "**":
                nxt.add(p)
            elif p < len(rest) - 1 and _segment_matcher(rest[p])(name):
                nxt.add(p + 1)
        states = _closure(nxt, rest)
        if not states:
            return False, False
    return True, any(p < len(rest) - 1 or (p < len(rest) and rest[p] == "**") for p in states)


@dataclass(slots=True)
class _Counters:
    events: int = 0
    fast_path: int = 0
    kernel_found: int = 0  # watched in the kernel before the daemon knew
    judged: int = 0
    denied: int = 0
    deadline_misses: int = 0
    errors: int = 0
    reports: int = 0  # tracepoint reports of covered opens handed to reconcile
    reports_dropped: int = 0  # ... the gate had judged that open
    reports_kept: int = 0  # ... it had not: recorded from the report
    watches: int = 0  # directories watched for directories created in them
    marked_later: int = 0  # directories created after the gate was built, then marked
    whole_later: int = 0  # ... past the mark budget: their filesystem marked whole

    def to_json(self) -> dict[str, int]:
        return {"events": self.events, "fast_path": self.fast_path,
                "kernel_found": self.kernel_found, "judged": self.judged,
                "denied": self.denied, "deadline_misses": self.deadline_misses,
                "errors": self.errors, "reports": self.reports,
                "reports_dropped": self.reports_dropped, "reports_kept": self.reports_kept,
                "watches": self.watches, "marked_later": self.marked_later,
                "whole_later": self.whole_later}


@dataclass(slots=True)
class FileGate:
    """One fanotify group of FAN_OPEN_PERM marks and the thread that answers it.

    `watched` is the set (any container of tgids) whose opens are judged; the
    runtime passes its evaluator's live dict, so the fast path is one lookup.
    """

    plan: MarkPlan
    watched: Container[int]
    judge: Judge
    record: Callable[[Any], None]
    late: Late
    deadline_s: float = 0.2
    kernel_watches: KernelWatches | None = None
    max_marks: int = DEFAULT_MAX_MARKS
    counters: _Counters = field(default_factory=_Counters)
    marked: list[tuple[str, str]] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    reader_error: str = ""
    _group: fan.FanotifyGroup | None = None
    _devs: set[int] = field(default_factory=set)  # filesystems marked whole
    _dirs: set[tuple[int, int]] = field(default_factory=set)  # directories marked
    _stop: threading.Event = field(default_factory=threading.Event)
    _wake: tuple[int, int] = (-1, -1)
    _reader: threading.Thread | None = None
    _notes: queue.SimpleQueue[tuple[str, Any]] = field(default_factory=queue.SimpleQueue)
    _writer: threading.Thread | None = None
    _dirwatch: DirWatcher | None = None
    _watcher: threading.Thread | None = None
    _judged: dict[tuple[int, int, int], int] = field(default_factory=dict)
    _jlock: threading.Lock = field(default_factory=threading.Lock)
    # Reports awaiting their check, in due order (every one waits the same time).
    # Only the first into an empty queue wakes the writer: a watched process's
    # opens do not each cost a thread switch.
    _checks: deque[tuple[float, tuple[int, int, int], OpenEvent,
                         Callable[[OpenEvent], None]]] = field(default_factory=deque)

    # ---- life cycle

    def start(self) -> None:
        """Create the group, place the marks, start the threads. Raises FanotifyError
        when no group can be made; a mark that fails is logged and listed."""
        group = fan.FanotifyGroup()
        try:
            for m in self.plan.marks:
                try:
                    how = fan.mark_open_perm(group, m.path, m.how)
                    st = os.stat(m.path)
                except OSError as exc:
                    self.failed.append(f"{m.path}: {exc.strerror or exc}")
                    log.warning("policy file gate: cannot mark %s (%s): %s", m.path, m.how,
                                exc.strerror or exc)
                    continue
                self.marked.append((m.path, how))
                if how == "inode":
                    self._dirs.add((st.st_dev, st.st_ino))
                else:
                    self._devs.add(st.st_dev)
        except BaseException:
            group.close()
            raise
        self._group = group
        self._wake = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._writer = threading.Thread(target=self._write_loop, name="policy-files-record",
                                        daemon=True)
        self._writer.start()
        self._reader = threading.Thread(target=self._run, name="policy-files", daemon=True)
        self._reader.start()
        if self.plan.globs:
            try:
                self._dirwatch = DirWatcher()
            except OSError as exc:
                self.failed.append(f"directories created later are not marked: {exc}")
                log.warning("policy file gate: directories created later are not marked: %s",
                            exc)
            else:
                self._watcher = threading.Thread(target=self._watch_loop,
                                                 name="policy-files-watch", daemon=True)
                self._watcher.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Stop reading and close the group: the kernel allows whatever still waits."""
        self._stop.set()
        if self._wake[1] >= 0:
            with contextlib.suppress(OSError):
                os.write(self._wake[1], b"x")
        if self._reader is not None and self._reader is not threading.current_thread():
            self._reader.join(timeout)
        if self._watcher is not None and self._watcher is not threading.current_thread():
            self._watcher.join(timeout)
        if self._dirwatch is not None:
            self._dirwatch.close()
            self._dirwatch = None
        if self._group is not None:
            self._group.close()
            self._group = None
        self._notes.put(("stop", None))
        if self._writer is not None and self._writer is not threading.current_thread():
            self._writer.join(timeout)
        for fd in self._wake:
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._wake = (-1, -1)

    @property
    def running(self) -> bool:
        return self._group is not None and not self.reader_error

    # ---- which opens the gate judges

    def cover_key(self, event: OpenEvent) -> tuple[int, int, int] | None:
        """(pid, dev, ino) when the gate got a permission event for this open (seen by
        the syscall tracepoint), else None. Not covered: O_PATH opens (no permission
        event), directories (not marked with FAN_ONDIR), files outside the marks, a
        path that cannot be resolved now (the open failed before any permission check)."""
        if not self.running or event.flags & O_PATH or not event.path.startswith("/"):
            return None
        try:
            path = event.path
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):  # judged where it points (rare: resolve it)
                path = os.path.realpath(path)
                st = os.stat(path)
            if stat.S_ISDIR(st.st_mode):
                return None
            if st.st_dev not in self._devs:
                # stat follows symlinks in the directory part: the real parent's inode
                parent = os.stat(posixpath.dirname(path))
                if (parent.st_dev, parent.st_ino) not in self._dirs:
                    return None
        except OSError:
            return None
        return (event.pid, st.st_dev, st.st_ino)

    def reconcile(self, key: tuple[int, int, int], event: OpenEvent,
                  unjudged: Callable[[OpenEvent], None]) -> None:
        """The tracepoint's report of a covered open: dropped if the gate judged that
        open, else `unjudged(event)`, checked one deadline from now (the writer)."""
        self.counters.reports += 1
        due = time.monotonic() + self.deadline_s + _RECONCILE_SLACK_S
        with self._jlock:
            wake = not self._checks
            self._checks.append((due, key, event, unjudged))
        if wake:
            self._notes.put(("check", None))

    def _count_judged(self, pid: int, event_fd: int) -> None:
        st = fan.stat_key(event_fd)
        if st is None:
            return
        key = (pid, *st)
        with self._jlock:
            self._judged[key] = self._judged.get(key, 0) + 1
            if len(self._judged) > _JUDGED_KEPT:  # reports that never came: forget the oldest
                del self._judged[next(iter(self._judged))]

    def _take_judged(self, key: tuple[int, int, int]) -> bool:
        with self._jlock:
            n = self._judged.get(key, 0)
            if n <= 0:
                return False
            if n == 1:
                del self._judged[key]
            else:
                self._judged[key] = n - 1
            return True

    # ---- the reader (see the module doc: no logging, no I/O but the group's)

    def _run(self) -> None:
        try:
            self._loop()
        except BaseException:
            self.reader_error = "file gate reader failed"
            self._notes.put(("error", traceback.format_exc()))
            group, self._group = self._group, None
            if group is not None:
                group.close()  # the kernel allows everything queued and stops asking

    def _loop(self) -> None:
        group = self._group
        assert group is not None
        gfd = group.fd
        poller = select.poll()
        poller.register(gfd, select.POLLIN)
        poller.register(self._wake[0], select.POLLIN)
        c = self.counters
        kernel_watches = self.kernel_watches
        while not self._stop.is_set():
            try:
                poller.poll(1000)
            except InterruptedError:
                continue
            if self._stop.is_set():
                return
            events = fan.read_perm_events(gfd, _BATCH)
            if not events:
                continue
            deadline = time.monotonic() + self.deadline_s
            for ev in events:
                c.events += 1
                if ev.pid not in self.watched:
                    if kernel_watches is None or not kernel_watches(ev.pid):
                        c.fast_path += 1
                        self._answer(gfd, ev.fd, True)
                        continue
                    c.kernel_found += 1
                self._judge(gfd, ev, deadline)

    def _judge(self, gfd: int, ev: fan.PermEvent, deadline: float) -> None:
        c = self.counters
        when = time.time()
        path = fan.fd_path(ev.fd)
        self._count_judged(ev.pid, ev.fd)  # judged now, or late: recorded by the gate either way
        if time.monotonic() >= deadline:
            c.deadline_misses += 1
            self._answer(gfd, ev.fd, True)
            self._notes.put(("late", (ev.pid, path, when)))
            return
        c.judged += 1
        try:
            violation = self.judge(ev.pid, path, when, deadline)
        except TimeoutError:
            c.deadline_misses += 1
            self._answer(gfd, ev.fd, True)
            self._notes.put(("late", (ev.pid, path, when)))
            return
        except Exception:
            c.errors += 1
            self._answer(gfd, ev.fd, True)  # fail open for this one event
            self._notes.put(("error", traceback.format_exc()))
            return
        if violation is None:
            self._answer(gfd, ev.fd, True)
            return
        c.denied += 1
        self._answer(gfd, ev.fd, False)
        self._notes.put(("record", violation))

    def _answer(self, gfd: int, event_fd: int, allow: bool) -> None:
        try:
            fan.answer_perm(gfd, event_fd, allow)
        except OSError as exc:
            self.counters.errors += 1
            self._notes.put(("error", f"fanotify response failed: {exc}"))

    # ---- the watcher: directories created after the gate was built
    #
    # Why inotify and not a fanotify notification group: this kernel (6.18) accepts
    # FAN_CREATE|FAN_ONDIR|FAN_EVENT_ON_CHILD on a FAN_REPORT_DFID_NAME group, but
    # its events name the parent by a file handle, which becomes a path only through
    # open_by_handle_at on a mount fd of each filesystem. An inotify watch descriptor
    # names the directory we watched and the event carries the new entry's name: the
    # path is one join. Its own thread, so a slow walk never delays an answer.

    def _watch_loop(self) -> None:
        try:
            self._cover_roots()
            watcher = self._dirwatch
            assert watcher is not None
            poller = select.poll()
            poller.register(watcher.fd, select.POLLIN)
            poller.register(self._wake[0], select.POLLIN)
            while not self._stop.is_set() and self._group is not None:
                try:
                    poller.poll(1000)
                except InterruptedError:
                    continue
                for ev in watcher.read():
                    if self._stop.is_set():
                        return
                    if ev.mask & IN_Q_OVERFLOW:  # creations were lost: walk everything again
                        self._cover_roots()
                    elif ev.mask & IN_ISDIR:
                        self._cover(posixpath.join(ev.directory, ev.name))
        except Exception:
            self._notes.put(("error", "directory watcher failed (directories created "
                             "later are not marked):\n" + traceback.format_exc()))

    def _cover_roots(self) -> None:
        """Each glob's fixed prefix, or its nearest existing ancestor: the walk from
        there marks and watches what `reach` says (marks already placed are kept)."""
        for pattern in self.plan.globs:
            base, _ = fixed_prefix(pattern)
            while base != "/" and not os.path.isdir(base):
                base = posixpath.dirname(base)
            self._cover(base)

    def _cover(self, top: str) -> None:
        """Mark and watch `top` and the directories below it a glob can still reach.
        Watched first, then scanned: a directory created under it before the watch
        is found by the scan, one created after by its event (`mkdir -p a/b/c`)."""
        watcher = self._dirwatch
        group = self._group
        if watcher is None or group is None:
            return
        stack = [top]
        while stack and not self._stop.is_set():
            directory = stack.pop()
            mark = watch = False
            for pattern in self.plan.globs:
                m, w = reach(pattern, directory)
                mark, watch = mark or m, watch or w
            if not (mark or watch):
                continue
            try:
                st = os.stat(directory)
            except OSError:
                continue  # gone again
            if not stat.S_ISDIR(st.st_mode) or st.st_dev in self._devs:
                continue  # its filesystem is marked whole: everything there is covered
            if mark and (st.st_dev, st.st_ino) not in self._dirs:
                self._mark_later(group, directory, st)
                if st.st_dev in self._devs:
                    continue
            if not watch:
                continue
            try:
                watcher.watch(directory)
            except OSError as exc:  # ENOSPC: past fs.inotify.max_user_watches
                self._notes.put(("error", f"cannot watch {directory} for new directories: "
                                 f"{exc.strerror or exc}"))
                continue
            self.counters.watches = len(watcher.paths)
            try:
                entries = list(os.scandir(directory))
            except OSError:
                continue
            for entry in entries:
                with contextlib.suppress(OSError):
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)

    def _mark_later(self, group: fan.FanotifyGroup, directory: str, st: os.stat_result) -> None:
        """An inode mark on a directory found after the gate was built; past the
        budget, its filesystem's mark instead (as plan_marks does)."""
        c = self.counters
        how = "inode" if len(self._dirs) < self.max_marks else "filesystem"
        try:
            how = fan.mark_open_perm(group, directory, how)
        except OSError as exc:
            self.failed.append(f"{directory}: {exc.strerror or exc}")
            self._notes.put(("error", f"cannot mark {directory}: {exc.strerror or exc}"))
            return
        self.marked.append((directory, how))
        if how == "inode":
            self._dirs.add((st.st_dev, st.st_ino))
            c.marked_later += 1
        else:
            self._devs.add(st.st_dev)
            c.whole_later += 1

    # ---- the writer: records and notes, off the reader

    def _write_loop(self) -> None:
        while True:
            with self._jlock:
                first = self._checks[0][0] if self._checks else None
            timeout = None if first is None else max(0.0, first - time.monotonic())
            try:
                kind, item = self._notes.get(timeout=timeout)
            except queue.Empty:
                kind, item = "", None
            try:
                if kind == "stop":
                    # The gate is going (a mode switch, a reload): reports still waiting
                    # are settled now; the reader has stopped, so its counts are final.
                    self._settle_due(float("inf"))
                    return
                if kind == "record":
                    self.record(item)
                elif kind == "late":
                    self.late(*item)
                elif kind == "error":
                    log.error("policy file gate: %s", item)
                self._settle_due(time.monotonic())
            except Exception:
                log.exception("policy file gate: recording failed")

    def _settle_due(self, now: float) -> None:
        while True:
            with self._jlock:
                if not self._checks or self._checks[0][0] > now:
                    return
                _, key, event, unjudged = self._checks.popleft()
            self._settle(key, event, unjudged)

    def _settle(self, key: tuple[int, int, int], event: OpenEvent,
                unjudged: Callable[[OpenEvent], None]) -> None:
        if self._take_judged(key):
            self.counters.reports_dropped += 1
            return
        self.counters.reports_kept += 1
        unjudged(event)

    # ---- reports

    def status(self) -> dict[str, Any]:
        return {"running": self.running, "deadline_ms": round(self.deadline_s * 1000),
                "marks": [{"path": p, "how": h} for p, h in self.marked],
                "failed": list(self.failed), "notes": list(self.plan.notes),
                "error": self.reader_error, **self.counters.to_json()}


def gate_wanted(policy: Policy) -> bool:
    """Whether any entry has file rules (else there is nothing to gate)."""
    return any(p.blocked_files or p.allowed_files is not None for p in policy.processes)

