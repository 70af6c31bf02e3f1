"""The PID -> ThreatLevel map over the process tree (seed V2-A).

Only processes that were *marked* are stored; a process's effective level is
the highest level among itself and its ancestors, computed on lookup by
walking the live parent chain. So a marked shell taints every child it starts
(and their children) without the map ever holding the descendants, and memory
is bounded by the number of marks (`max_entries`), not by the size of the tree.

PIDs are reused by the kernel, so an entry remembers its process's start time
and is discarded as soon as the PID names a different process; `prune()`
(run periodically by the server) drops entries whose process has exited.

The process table is a parameter (`ProcessTable`), so the logic is tested with
a synthetic tree and the daemon uses `ProcfsProcessTable`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import IntEnum
from typing import Protocol

__all__ = [
    "PRIOR_DEPTH_LIMIT",
    "ProcInfo",
    "ProcessTable",
    "ProcfsProcessTable",
    "ThreatEntry",
    "ThreatLevel",
    "ThreatMap",
]

# Deeper trees than this are cut short (a fork bomb must not make lookups slow).
PRIOR_DEPTH_LIMIT = 128
# Unmarked ancestors' /proc data is reused this long (seconds) by level_of.
_INFO_CACHE_TTL = 1.0
_INFO_CACHE_MAX = 8192


class ThreatLevel(IntEnum):
    NONE = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @classmethod
    def parse(cls, text: str) -> ThreatLevel:
        """'critical' / 'Critical' -> CRITICAL; KeyError for anything else."""
        return cls[text.strip().upper()]

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class ProcInfo:
    pid: int
    ppid: int
    start_time: float  # clock ticks after boot: tells this process from others with its PID
    uid: int  # real uid: who may mark it


class ProcessTable(Protocol):
    def info(self, pid: int) -> ProcInfo | None:
        """The live process `pid`, or None if there is none (or it is unreadable)."""
        ...


class ProcfsProcessTable:
    """The live process table, read straight from /proc/PID/stat.

    Hand-written rather than psutil: the ancestor walk runs on every classify
    request, and psutil.Process() + oneshot() costs several times one read of
    /proc/PID/stat (bench/README.md, "Figures behind design choices"). The uid
    is the owner of /proc/PID (the process's effective uid; root for non-dumpable ones,
    which only makes `mark` stricter). Zombies count as exited.
    """

    def __init__(self, proc: str = "/proc") -> None:
        self.proc = proc

    def info(self, pid: int) -> ProcInfo | None:
        if pid <= 0:
            return None
        path = f"{self.proc}/{pid}"
        try:
            with open(f"{path}/stat", "rb") as stat_file:
                data = stat_file.read()
            uid = os.stat(path).st_uid
        except OSError:
            return None
        # "pid (comm) state ppid ... starttime(22) ...": comm may hold spaces and ')'.
        fields = data[data.rfind(b")") + 2 :].split()
        if len(fields) < 20 or fields[0] == b"Z":
            return None
        try:
            return ProcInfo(pid, int(fields[1]), float(int(fields[19])), uid)
        except ValueError:
            return None


@dataclass(frozen=True, slots=True)
class ThreatEntry:
    pid: int
    start_time: float
    uid: int
    level: ThreatLevel
    reason: str
    since: float  # wall-clock time of the mark that set this level

    def to_json(self) -> dict[str, object]:
        return {"pid": self.pid, "uid": self.uid, "level": self.level.label,
                "reason": self.reason, "since": round(self.since, 3)}


class ThreatMap:
    def __init__(self, table: ProcessTable, max_entries: int = 65536) -> None:
        self.table = table
        self.max_entries = max(1, max_entries)
        self._entries: dict[int, ThreatEntry] = {}
        self._info_cache: dict[int, tuple[float, ProcInfo]] = {}
        # Told of every Critical mark (the exec guard forgets cached allows on it).
        self.on_critical: Callable[[int], None] | None = None

    def __len__(self) -> int:
        return len(self._entries)

    def mark(self, pid: int, level: ThreatLevel, reason: str,
             info: ProcInfo | None = None) -> ThreatEntry | None:
        """Raise `pid`'s own level (never lowers it); None if there is no such process."""
        info = info if info is not None else self.table.info(pid)
        if info is None:
            return None
        current = self._valid_entry(pid, info)
        if current is not None and current.level >= level:
            return current
        if level is ThreatLevel.NONE:
            return current
        if current is None and len(self._entries) >= self.max_entries:
            self.prune()
            if len(self._entries) >= self.max_entries:
                self._evict_one()
        entry = ThreatEntry(pid, info.start_time, info.uid, level, reason[:200], time.time())
        self._entries[pid] = entry
        if level >= ThreatLevel.CRITICAL and self.on_critical is not None:
            self.on_critical(pid)
        return entry

    def clear(self, pid: int) -> ThreatEntry | None:
        """Forget `pid`'s own mark (an operator's decision); the removed entry, if any."""
        return self._entries.pop(pid, None)

    def level_of(self, pid: int) -> tuple[ThreatLevel, ThreatEntry | None]:
        """The effective level of `pid`: the highest of itself and its live ancestors.

        Returns the level and the entry it comes from (None for NONE).
        """
        if not self._entries:  # the common case costs no /proc reads at all
            return ThreatLevel.NONE, None
        best: ThreatEntry | None = None
        seen: set[int] = set()
        current = pid
        for _ in range(PRIOR_DEPTH_LIMIT):
            if current <= 0 or current in seen:
                break
            seen.add(current)
            # A marked PID is read fresh (its start time must still match: PID
            # reuse); the unmarked links of the chain (bash, sshd, systemd…)
            # change rarely and come from a short-lived cache.
            info = self.table.info(current) if current in self._entries \
                else self._cached_info(current)
            if info is None:
                break
            entry = self._valid_entry(current, info)
            if entry is not None and (best is None or entry.level > best.level):
                best = entry
                if best.level is ThreatLevel.CRITICAL:
                    break
            current = info.ppid
        return (best.level, best) if best is not None else (ThreatLevel.NONE, None)

    def _cached_info(self, pid: int) -> ProcInfo | None:
        now = time.monotonic()
        hit = self._info_cache.get(pid)
        if hit is not None and hit[0] > now:
            return hit[1]
        info = self.table.info(pid)
        if len(self._info_cache) >= _INFO_CACHE_MAX:
            self._info_cache.clear()  # crude but bounded; refills in one walk
        if info is not None:
            self._info_cache[pid] = (now + _INFO_CACHE_TTL, info)
        return info

    def entries(self) -> list[ThreatEntry]:
        return sorted(self._entries.values(), key=lambda e: (-e.level, e.pid))

    def pids(self) -> list[int]:
        return list(self._entries)

    def prune(self, pids: Iterable[int] | None = None) -> int:
        """Drop entries whose process exited (or whose PID now names another process).

        `pids` limits the check to those entries, so the server can prune a
        large map in slices between requests instead of stalling them.
        """
        gone = []
        for pid in list(self._entries) if pids is None else pids:
            entry = self._entries.get(pid)
            if entry is None:
                continue
            info = self.table.info(pid)
            if info is None or info.start_time != entry.start_time:
                gone.append(pid)
        for pid in gone:
            del self._entries[pid]
        return len(gone)

    def _valid_entry(self, pid: int, info: ProcInfo) -> ThreatEntry | None:
        entry = self._entries.get(pid)
        if entry is not None and entry.start_time != info.start_time:
            del self._entries[pid]  # the PID was reused: the old mark is not this process's
            return None
        return entry

    def _evict_one(self) -> None:
        # Full of live marks: forget the least serious, oldest one. Critical marks
        # go last, so flooding the map with LOW marks cannot free a Critical shell.
        victim = min(self._entries.values(), key=lambda e: (e.level, e.since))
        del self._entries[victim.pid]
