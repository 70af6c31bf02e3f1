"""Pure evaluation of kernel events against a policy: no I/O, no clock, no threads.

`Evaluator` keeps which PIDs are watched (matched by executable, or
descendants of a matched process) and turns events into `Violation`s. The
caller does the I/O: it reads the executable's SHA-256 when
`needs_sha256(path)` says a pin depends on it, samples memory/CPU, and
serialises calls (the daemon holds a lock).
"""

from __future__ import annotations

import posixpath
import socket
from collections import deque
from dataclasses import dataclass, field

from attyguard.kernel.events import ConnectEvent, ExecEvent, ExitEvent, ForkEvent
from attyguard.policy.model import (
    Mode,
    OpenEvent,
    Policy,
    ProcessPolicy,
    ResourceSample,
    Severity,
    SyscallEvent,
    Violation,
    ViolationAction,
    ViolationType,
    action_for,
)
from attyguard.policy.syscalls import CRITICAL_SYSCALLS, HIGH_SYSCALLS

__all__ = ["CPU_WINDOW_S", "Evaluator", "Stats", "Watched", "syscall_severity"]

CPU_WINDOW_S = 1.0  # max_cpu_percent is judged over this sliding window
_EPS = 1e-6  # sample times are floats: 1.2 - 0.2 < 1.0


def syscall_severity(name: str) -> Severity:
    """The seed's table: process-tampering and kernel-loading calls are CRITICAL."""
    if name in CRITICAL_SYSCALLS:
        return Severity.CRITICAL
    if name in HIGH_SYSCALLS:
        return Severity.HIGH
    return Severity.MEDIUM


@dataclass(slots=True)
class Watched:
    """A watched process: which entry governs it and what it runs."""

    entry: str
    exe: str
    root_pid: int  # the matched ancestor (itself when matched directly)
    cpu: deque[tuple[float, float]] = field(default_factory=deque)  # (time, cpu_seconds)
    over_memory: bool = False  # already reported; again only after it drops below
    over_cpu: bool = False
    # Started by `attyguard policy run` (or a descendant of one): its syscalls are
    # judged by the seccomp supervisor, and `program` (the command it exec'd) counts
    # as the matched program for allowed_exec.
    launched: bool = False
    program: str = ""


@dataclass(slots=True)
class Stats:
    total_events: int = 0
    violations: int = 0
    blocked: int = 0
    by_process: dict[str, int] = field(default_factory=dict)
    by_type: dict[str, int] = field(default_factory=dict)
    by_severity: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        return {"total_events": self.total_events, "violations": self.violations,
                "blocked": self.blocked, "by_process": dict(self.by_process),
                "by_type": dict(self.by_type), "by_severity": dict(self.by_severity)}


class Evaluator:
    """The policy applied to a stream of events. Not thread-safe: callers serialise."""

    def __init__(self, policy: Policy, *, mode: Mode | None = None,
                 blockable: frozenset[ViolationType] = frozenset()) -> None:
        self.policy = policy
        self.mode = mode or policy.mode
        # Which kinds of violation a rung can actually stop in this daemon (the
        # kernel layer's capabilities); the rest are `alerted` even in enforce.
        self.blockable = blockable
        # What "blocked" means, said in the record, where it is less than "refused":
        # the runtime's mechanism for a kind of violation (a syscall killed at
        # entry runs all the same on the kernel backend).
        self.blocked_notes: dict[ViolationType, str] = {}
        self.watched: dict[int, Watched] = {}
        self.stats = Stats()

    # ---- configuration

    def replace_policy(self, policy: Policy, mode: Mode | None = None) -> None:
        """A reload: re-judge who is watched by the new entries, keep the counters."""
        self.policy = policy
        self.mode = mode or policy.mode
        names = {p.name for p in policy.processes}
        self.watched = {pid: w for pid, w in self.watched.items() if w.entry in names}

    def entry_for_exe(self, path: str, sha256: str | None = None) -> ProcessPolicy | None:
        for proc in self.policy.processes:
            if proc.exe.matches(path) and (proc.sha256 is None or proc.sha256 == sha256):
                return proc
        return None

    def needs_sha256(self, path: str) -> bool:
        return any(p.sha256 is not None and p.exe.matches(path) for p in self.policy.processes)

    def watched_entry(self, pid: int) -> ProcessPolicy | None:
        w = self.watched.get(pid)
        return self.policy.entry(w.entry) if w is not None else None

    def adopt(self, pid: int, entry: str, exe: str) -> None:
        """The kernel says `pid` belongs to `entry` (it inherited it at fork) before the
        fork event reached us: watch it now so its events are judged."""
        proc = self.policy.entry(entry)
        if pid not in self.watched and proc is not None:
            if not exe and not any(ch in proc.exe.pattern for ch in "*?["):
                # Gone before /proc could be read: the kernel matched it by the inode
                # of this very path.
                exe = proc.exe.pattern
            self.watched[pid] = Watched(entry, exe, pid)

    # ---- events

    def on_exec(self, event: ExecEvent, sha256: str | None = None) -> list[Violation]:
        self.stats.total_events += 1
        pid = event.tgid or event.pid
        path = posixpath.normpath(event.filename) if event.filename.startswith("/") \
            else event.filename
        own = self.entry_for_exe(path, sha256) if path.startswith("/") else None
        current = self.watched.get(pid)
        if current is None and event.ppid in self.watched:
            # Fork not seen (a fallback sampler, a lost event): the parent decides.
            parent = self.watched[event.ppid]
            current = Watched(parent.entry, parent.exe, parent.root_pid,
                              launched=parent.launched, program=parent.program)
            self.watched[pid] = current
        out: list[Violation] = []
        if current is not None:
            entry = self.policy.entry(current.entry)
            if (own is not None and own.name == current.entry) or \
                    (current.launched and path == current.program):
                pass  # the matched program itself (or re-exec of it) is never "not allowed"
            elif entry is not None and entry.allowed_exec is not None and \
                    not any(g.matches(path) for g in entry.allowed_exec):
                # An audit sensor can lose the race with a short-lived program: say so
                # rather than guess (it may have been allowed).
                what = path or "a program that exited before it could be identified"
                # Seen after the fact, so it was not stopped: never `blocked` here, even
                # when a gate exists (it refuses in `exec_denial`, before the exec; an
                # exec that still happened, e.g. answered late, is reported as it is).
                out.append(self._violation(entry, current.exe, pid, ViolationType.EXEC,
                                           f"exec of {what} not in allowed_exec",
                                           Severity.HIGH, event.time, stoppable=False))
            if own is not None and own.name != current.entry and not current.launched:
                self.watched[pid] = Watched(own.name, path, pid)
            else:
                current.exe = path
                current.cpu.clear()
        elif own is not None:
            self.watched[pid] = Watched(own.name, path, pid)
        return out

    def exec_denial(self, event: ExecEvent, sha256: str | None = None) -> Violation | None:
        """At an exec gate, before the exec: the violation that refuses it, or None.

        Only when enforcing with a gate (EXEC blockable); nothing about who is
        watched changes here (a refused exec leaves the process as it was; an
        allowed one is seen again by `on_exec` when it has happened).
        """
        if self.mode is not Mode.ENFORCE or ViolationType.EXEC not in self.blockable:
            return None
        pid = event.tgid or event.pid
        current = self.watched.get(pid)
        if current is None or not event.filename.startswith("/"):
            return None
        entry = self.policy.entry(current.entry)
        path = posixpath.normpath(event.filename)
        own = self.entry_for_exe(path, sha256)
        if entry is None or entry.allowed_exec is None or \
                (own is not None and own.name == current.entry) or \
                (current.launched and path == current.program) or \
                any(g.matches(path) for g in entry.allowed_exec):
            return None
        self.stats.total_events += 1
        return self._violation(entry, current.exe, pid, ViolationType.EXEC,
                               f"exec of {path} not in allowed_exec", Severity.HIGH, event.time)

    def on_fork(self, event: ForkEvent) -> list[Violation]:
        self.stats.total_events += 1
        parent = self.watched.get(event.parent_pid)
        if parent is not None and event.child_pid not in self.watched:
            self.watched[event.child_pid] = Watched(parent.entry, parent.exe, parent.root_pid,
                                                    launched=parent.launched,
                                                    program=parent.program)
        return []

    def on_exit(self, event: ExitEvent) -> list[Violation]:
        self.stats.total_events += 1
        self.watched.pop(event.pid, None)
        return []

    def on_syscall(self, event: SyscallEvent) -> list[Violation]:
        self.stats.total_events += 1
        found = self._lookup(event.pid)
        if found is None:
            return []
        entry, watched = found
        # A launched process's calls are judged by its seccomp filter (one record each).
        if event.name not in entry.blocked_syscalls or watched.launched:
            return []
        return [self._violation(entry, watched.exe, event.pid, ViolationType.SYSCALL,
                                f"blocked syscall: {event.name}",
                                syscall_severity(event.name), event.time)]

    def watch_launched(self, pid: int, entry: str, exe: str, root_pid: int,
                       program: str) -> None:
        """A `policy run` process (or a descendant the seccomp supervisor met first):
        watched under `entry` whatever its executable matches."""
        current = self.watched.get(pid)
        if current is not None and current.launched and current.entry == entry:
            return
        self.watched[pid] = Watched(entry, exe, root_pid, launched=True, program=program)

    def launched_syscall(self, pid: int, entry_name: str, name: str, detail: str,
                         when: float, mode: Mode, refused: bool) -> Violation | None:
        """A blocked call the seccomp supervisor has already answered (`refused`:
        failed with EPERM, it did not run) in `mode`, the mode it was answered in."""
        self.stats.total_events += 1
        entry = self.policy.entry(entry_name)
        if entry is None:
            return None
        watched = self.watched.get(pid)
        exe = watched.exe if watched is not None else ""
        action = ViolationAction.LOGGED if mode is Mode.AUDIT else \
            ViolationAction.BLOCKED if refused else ViolationAction.ALERTED
        return self._count(Violation(when, entry.name, exe, pid, ViolationType.SYSCALL, detail,
                                     syscall_severity(name), action, mode))

    def on_open(self, event: OpenEvent, *, stoppable: bool = True) -> list[Violation]:
        """`stoppable`: whether this open is being judged at a gate that can refuse it
        (the file gate) rather than seen after the fact (the syscall tracepoint)."""
        self.stats.total_events += 1
        found = self._lookup(event.pid)
        if found is None:
            return []
        entry, watched = found
        path = posixpath.normpath(event.path)
        for glob in entry.blocked_files:
            if glob.matches(path):
                return [self._violation(entry, watched.exe, event.pid, ViolationType.FILE,
                                        f"blocked file access: {path} (pattern {glob.pattern})",
                                        Severity.HIGH, event.time, stoppable=stoppable)]
        if entry.allowed_files is not None and \
                not any(g.matches(path) for g in entry.allowed_files):
            return [self._violation(entry, watched.exe, event.pid, ViolationType.FILE,
                                    f"file access outside allowed_files: {path}",
                                    Severity.MEDIUM, event.time, stoppable=stoppable)]
        return []

    def on_connect(self, event: ConnectEvent) -> list[Violation]:
        self.stats.total_events += 1
        found = self._lookup(event.pid)
        # Unix sockets are local IPC, not "network": the rules speak of addresses and ports.
        if found is None or event.family not in (socket.AF_INET, socket.AF_INET6):
            return []
        entry, watched = found
        where = f"[{event.address}]:{event.port}" if ":" in event.address \
            else f"{event.address}:{event.port}"
        for rule in entry.blocked_network:
            if rule.matches(event.address, event.port):
                return [self._violation(entry, watched.exe, event.pid, ViolationType.NETWORK,
                                        f"connect to {where} matches blocked_network "
                                        f"{rule.text}", Severity.HIGH, event.time)]
        if entry.allowed_network is not None and \
                not any(r.matches(event.address, event.port) for r in entry.allowed_network):
            # The seed's rule: a process allowed no network at all is CRITICAL when it tries.
            severity = Severity.CRITICAL if not entry.allowed_network else Severity.HIGH
            return [self._violation(entry, watched.exe, event.pid, ViolationType.NETWORK,
                                    f"connect to {where} outside allowed_network",
                                    severity, event.time)]
        return []

    def on_sample(self, sample: ResourceSample, wall_time: float) -> list[Violation]:
        """One memory/CPU reading (`sample.time` monotonic; `wall_time` for the record).

        A limit crossed is reported once, and again only after the process went
        back under it: a process sitting above its limit is one violation, not
        one per sample.
        """
        self.stats.total_events += 1
        found = self._lookup(sample.pid)
        if found is None:
            return []
        entry, watched = found
        out: list[Violation] = []
        if entry.max_memory_mb:
            rss_mb = sample.rss_bytes / (1 << 20)
            over = rss_mb > entry.max_memory_mb
            if over and not watched.over_memory:
                out.append(self._violation(
                    entry, watched.exe, sample.pid, ViolationType.RESOURCE,
                    f"memory limit exceeded: {rss_mb:.0f}MB > {entry.max_memory_mb}MB",
                    Severity.HIGH, wall_time))
            watched.over_memory = over
        if entry.max_cpu_percent:
            history = watched.cpu
            history.append((sample.time, sample.cpu_seconds))
            while len(history) > 2 and sample.time - history[1][0] >= CPU_WINDOW_S - _EPS:
                history.popleft()
            first_time, first_cpu = history[0]
            span = sample.time - first_time
            if span >= CPU_WINDOW_S - _EPS:  # judge only a full window
                percent = 100.0 * (sample.cpu_seconds - first_cpu) / span
                over = percent > entry.max_cpu_percent
                if over and not watched.over_cpu:
                    out.append(self._violation(
                        entry, watched.exe, sample.pid, ViolationType.RESOURCE,
                        f"CPU limit exceeded: {percent:.0f}% > {entry.max_cpu_percent}% "
                        f"over {span:.1f}s", Severity.MEDIUM, wall_time))
                watched.over_cpu = over
        return out

    # ---- helpers

    def _lookup(self, pid: int) -> tuple[ProcessPolicy, Watched] | None:
        watched = self.watched.get(pid)
        if watched is None:
            return None
        entry = self.policy.entry(watched.entry)
        return (entry, watched) if entry is not None else None

    def _violation(self, entry: ProcessPolicy, exe: str, pid: int, kind: ViolationType,
                   detail: str, severity: Severity, when: float, *,
                   stoppable: bool = True) -> Violation:
        action = action_for(self.mode, stoppable and kind in self.blockable)
        if action is ViolationAction.BLOCKED and kind in self.blocked_notes:
            detail = f"{detail} ({self.blocked_notes[kind]})"
        return self._count(Violation(when, entry.name, exe, pid, kind, detail, severity, action,
                                     self.mode))

    def _count(self, v: Violation) -> Violation:
        action, kind, severity = v.action, v.type, v.severity
        s = self.stats
        s.violations += 1
        if action is ViolationAction.BLOCKED:
            s.blocked += 1
        s.by_process[v.process] = s.by_process.get(v.process, 0) + 1
        s.by_type[kind.value] = s.by_type.get(kind.value, 0) + 1
        s.by_severity[severity.name] = s.by_severity.get(severity.name, 0) + 1
        return v
