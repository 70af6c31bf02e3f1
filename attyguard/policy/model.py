"""The policy and its violations as frozen data: no I/O, no parsing.

A policy is a set of named process entries, each matched by executable path
(a glob, optionally pinned by SHA-256) and carrying the checks that apply to
that process and its descendants. `allowed_*` lists follow one rule: absent
means "not checked", present means "only these" (so `allowed_network: []` is
"no network at all", the seed's intent for its correlator).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from enum import StrEnum

from attyguard.engine.verdict import Severity

__all__ = [
    "Glob",
    "Mode",
    "NetRule",
    "OpenEvent",
    "Policy",
    "ProcessPolicy",
    "ResourceSample",
    "Severity",
    "SyscallEvent",
    "Violation",
    "ViolationAction",
    "ViolationType",
    "action_for",
]


class Mode(StrEnum):
    AUDIT = "audit"  # record, never block, send nothing
    ALERT = "alert"  # record and send to the alert sinks
    ENFORCE = "enforce"  # stop it where a rung can, record and send


class ViolationType(StrEnum):
    EXEC = "exec"
    SYSCALL = "syscall"
    FILE = "file"
    NETWORK = "network"
    RESOURCE = "resource"


class ViolationAction(StrEnum):
    LOGGED = "logged"
    ALERTED = "alerted"
    BLOCKED = "blocked"


def action_for(mode: Mode, blockable: bool) -> ViolationAction:
    """One rule for every check (the seed set it differently per check).

    `blocked` only when enforcing *and* a rung can actually stop this kind of
    violation here; an enforce-mode violation that could not be stopped is
    reported as `alerted`, never as a block that did not happen.
    """
    if mode is Mode.AUDIT:
        return ViolationAction.LOGGED
    if mode is Mode.ENFORCE and blockable:
        return ViolationAction.BLOCKED
    return ViolationAction.ALERTED


@dataclass(frozen=True, slots=True)
class Glob:
    """An anchored glob over normalised absolute paths (or a basename, see `basename`)."""

    pattern: str
    regex: re.Pattern[str] = field(compare=False)
    source: str = ""  # file:line
    basename: bool = False  # a pattern without '/' matches the program's file name

    def matches(self, path: str) -> bool:
        subject = path.rsplit("/", 1)[-1] if self.basename else path
        return self.regex.match(subject) is not None


@dataclass(frozen=True, slots=True)
class NetRule:
    """`CIDR`, `CIDR:PORTS`, `[v6-CIDR]:PORTS`, `*:PORTS` or `*`; PORTS = `N` | `N-M`."""

    text: str
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None  # None: any address
    ports: tuple[tuple[int, int], ...] = ()  # () : any port
    source: str = ""

    def matches(self, address: str, port: int) -> bool:
        if self.network is not None:
            try:
                ip = ipaddress.ip_address(address)
            except ValueError:
                return False
            if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None \
                    and self.network.version == 4:
                ip = ip.ipv4_mapped  # ::ffff:10.0.0.1 is 10.0.0.1 for the rule's purpose
            if ip.version != self.network.version or ip not in self.network:
                return False
        return not self.ports or any(lo <= port <= hi for lo, hi in self.ports)


@dataclass(frozen=True, slots=True)
class ProcessPolicy:
    name: str
    exe: Glob
    source: str = ""
    description: str = ""
    sha256: str | None = None  # lower-case hex; pins the executable's content
    allowed_exec: tuple[Glob, ...] | None = None
    blocked_syscalls: tuple[str, ...] = ()
    allowed_files: tuple[Glob, ...] | None = None
    blocked_files: tuple[Glob, ...] = ()
    allowed_network: tuple[NetRule, ...] | None = None
    blocked_network: tuple[NetRule, ...] = ()
    max_memory_mb: int = 0  # 0: unchecked
    max_cpu_percent: int = 0  # 0: unchecked; 100 = one core

    def watches(self) -> dict[str, object]:
        """What this entry checks, for `attyguard policy check` and `policy status`."""
        def globs(items: tuple[Glob, ...] | None) -> list[str] | None:
            return None if items is None else [g.pattern for g in items]

        def nets(items: tuple[NetRule, ...] | None) -> list[str] | None:
            return None if items is None else [r.text for r in items]

        return {
            "name": self.name,
            "description": self.description,
            "exe": self.exe.pattern,
            "sha256": self.sha256,
            "source": self.source,
            "allowed_exec": globs(self.allowed_exec),
            "blocked_syscalls": list(self.blocked_syscalls),
            "allowed_files": globs(self.allowed_files),
            "blocked_files": globs(self.blocked_files),
            "allowed_network": nets(self.allowed_network),
            "blocked_network": nets(self.blocked_network),
            "max_memory_mb": self.max_memory_mb,
            "max_cpu_percent": self.max_cpu_percent,
        }


@dataclass(frozen=True, slots=True)
class Policy:
    version: str
    mode: Mode
    processes: tuple[ProcessPolicy, ...]
    on_violation: tuple[str, ...] = ()
    on_critical: tuple[str, ...] = ()
    path: str = ""

    def entry(self, name: str) -> ProcessPolicy | None:
        for proc in self.processes:
            if proc.name == name:
                return proc
        return None


# ---- events the policy sensors add to attyguard.kernel.events (policy-owned)


@dataclass(frozen=True, slots=True)
class SyscallEvent:
    time: float
    pid: int
    nr: int
    name: str


@dataclass(frozen=True, slots=True)
class OpenEvent:
    time: float
    pid: int
    path: str  # absolute, as the sensor resolved it
    flags: int = 0


@dataclass(frozen=True, slots=True)
class ResourceSample:
    """One reading of a process: resident memory and cumulative CPU seconds."""

    time: float  # monotonic seconds
    pid: int
    rss_bytes: int
    cpu_seconds: float  # user + system since the process started


@dataclass(frozen=True, slots=True)
class Violation:
    timestamp: float
    process: str  # the policy entry's name
    exe: str
    pid: int
    type: ViolationType
    detail: str
    severity: Severity
    action: ViolationAction
    mode: Mode

    def to_json(self) -> dict[str, object]:
        return {
            "timestamp": round(self.timestamp, 6),
            "process": self.process,
            "exe": self.exe,
            "pid": self.pid,
            "type": self.type.value,
            "detail": self.detail,
            "severity": self.severity.name,
            "action": self.action.value,
            "mode": self.mode.value,
        }
