"""SEC-002's kernel side: policy.bpf.o loaded through the kernel layer's generic loader.

`PolicySensor` owns the object's life (open → load → attach → ring buffer →
poll thread → close, as attyguard/kernel/bpf.py lays it out), the maps that
carry the policy into the kernel (watched processes, blocked syscall numbers
per entry, which entries want file/network arguments, the executables'
inodes, the enforce switch), and turning ring-buffer records into events
for the runtime. It judges nothing: globs and CIDR rules stay in the pure
evaluator; the kernel only filters (unwatched processes pay one lookup) and,
for blocked syscalls in enforce mode, kills.
"""

from __future__ import annotations

import ctypes
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from wcmatch import glob as wcglob

from attyguard.kernel.events import ConnectEvent
from attyguard.policy.model import OpenEvent, Policy, SyscallEvent
from attyguard.policy.syscalls import SyscallTable

__all__ = ["OBJECT", "KernelRecord", "PolicySensor"]

log = logging.getLogger("attyguard.daemon")

OBJECT = Path(__file__).resolve().parent.parent / "kernel" / "policy.bpf.o"
AGP_SYSCALL, AGP_OPEN, AGP_CONNECT, AGP_EXEC = 1, 2, 3, 4
AGP_WANT_OPEN, AGP_WANT_CONNECT = 1, 2
AGP_PATH_LEN = 256
AGP_MAX_ENTRIES = 256
_INODES_MAX = 4096
AT_FDCWD = -100
SYS_ENTER = "agp_sys_enter"


class Hdr(ctypes.Structure):
    _fields_ = [("type", ctypes.c_uint32), ("pid", ctypes.c_uint32),
                ("tgid", ctypes.c_uint32), ("entry", ctypes.c_uint32),
                ("ktime_ns", ctypes.c_uint64)]


class SyscallRec(ctypes.Structure):
    _fields_ = [("h", Hdr), ("nr", ctypes.c_uint32), ("killed", ctypes.c_uint32)]


class OpenRec(ctypes.Structure):
    _fields_ = [("h", Hdr), ("dfd", ctypes.c_int32), ("flags", ctypes.c_uint32),
                ("path", ctypes.c_char * AGP_PATH_LEN)]


class ConnectRec(ctypes.Structure):
    _fields_ = [("h", Hdr), ("family", ctypes.c_uint16), ("port", ctypes.c_uint16),
                ("pad", ctypes.c_uint32), ("addr", ctypes.c_uint8 * 16)]


class ExecRec(ctypes.Structure):
    _fields_ = [("h", Hdr), ("previous", ctypes.c_uint32), ("pad", ctypes.c_uint32)]


class BlockedKey(ctypes.Structure):
    _fields_ = [("entry", ctypes.c_uint32), ("nr", ctypes.c_uint32)]


class InodeKey(ctypes.Structure):
    _fields_ = [("dev", ctypes.c_uint64), ("ino", ctypes.c_uint64)]


KernelRecord = SyscallEvent | OpenEvent | ConnectEvent


def kernel_dev(st_dev: int) -> int:
    """stat's dev_t → the kernel's internal one (MAJOR << 20 | MINOR), as s_dev holds it."""
    return (os.major(st_dev) << 20) | os.minor(st_dev)


class PolicySensor:
    def __init__(self, on_event: Callable[[KernelRecord, str], None], table: SyscallTable,
                 path: Path = OBJECT) -> None:
        self.on_event = on_event
        self.table = table
        self.names = {nr: name for name, nr in table.numbers.items()}
        self.path = path
        self.obj: Any = None
        self.rb: Any = None
        self.index: dict[str, int] = {}  # entry name -> its index in the maps (1..255)
        self._retired: set[int] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._boot_offset = time.time() - time.clock_gettime(time.CLOCK_BOOTTIME)

    # ---- life cycle

    def start(self) -> None:
        """Load and attach; raises BpfError (with `.unsupported`) when the kernel refuses."""
        from attyguard.kernel.bpf import BpfObject, ensure_tracefs

        why = ensure_tracefs()
        if why:
            from attyguard.kernel.bpf import BpfError

            raise BpfError("tracefs", 2, why)
        obj = BpfObject.open(self.path)  # 1. open
        try:
            # 2. no rodata (everything that changes lives in maps); `watched` is
            # indexed by pid, so it is as long as pids go here.
            obj.set_max_entries("watched", _pid_max())
            obj.load()  # 3. load
            # 4. attach: the process-tracking programs now; the sys_enter hook,
            # which every syscall of every process pays for, only once a policy
            # entry needs it (configure).
            obj.attach([p for p, _sec in obj.programs() if p != SYS_ENTER])
            control = ctypes.c_uint32(os.getpid())
            obj.map_update("control", ctypes.c_uint32(1), control)
            self.rb = obj.ring_buffer("policy_events", self._on_record)  # 5.
        except Exception:
            obj.close()
            raise
        self.obj = obj
        self._thread = threading.Thread(target=self._poll, name="policy-bpf", daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.is_set():  # 6. poll until stopped
            try:
                self.rb.poll(100)
            except Exception:
                log.exception("policy: ring buffer poll failed")
                self._stop.wait(1.0)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)
        if self.obj is not None:
            self.obj.close()  # 7. detach, free, close
            self.obj = None

    # ---- the policy into the maps

    def configure(self, policy: Policy) -> None:
        """Entries, blocked syscalls, argument wishes and exe inodes; watched pids kept.

        An entry keeps its index across reloads (by name): processes the kernel
        watches under it stay right. A removed entry's index is retired with
        nothing blocked or wanted, so its leftover processes pay nothing and
        report nothing; indices are a byte, 255 names over the daemon's life.
        """
        assert self.obj is not None
        obj = self.obj
        names = {p.name for p in policy.processes}
        for name, old in list(self.index.items()):
            if name not in names:
                del self.index[name]
                self._retired.add(old)
                obj.map_update("entry_cfg", ctypes.c_uint32(old), ctypes.c_uint32(0))
        for proc in policy.processes:
            if proc.name not in self.index:
                used = set(self.index.values()) | self._retired
                free = next((n for n in range(1, AGP_MAX_ENTRIES) if n not in used), None)
                if free is None:
                    log.warning("policy: no kernel index left for %s (255 entry names used "
                                "since start); its kernel checks need a restart", proc.name)
                    continue
                self.index[proc.name] = free
        for key in obj.map_keys("blocked", BlockedKey):
            obj.map_delete("blocked", key)
        for key in obj.map_keys("inodes", InodeKey):
            obj.map_delete("inodes", key)
        if SYS_ENTER not in obj.attached and any(
                p.blocked_syscalls or p.allowed_files is not None or p.blocked_files
                or p.allowed_network is not None or p.blocked_network
                for p in policy.processes):
            obj.attach([SYS_ENTER])
        inodes = 0
        for proc in policy.processes:
            i = self.index.get(proc.name)
            if i is None:
                continue
            for name in proc.blocked_syscalls:
                number = self.table.number(name)
                if number is not None:
                    obj.map_update("blocked", BlockedKey(i, number), ctypes.c_uint8(1))
            want = 0
            if proc.allowed_files is not None or proc.blocked_files:
                want |= AGP_WANT_OPEN
            if proc.allowed_network is not None or proc.blocked_network:
                want |= AGP_WANT_CONNECT
            obj.map_update("entry_cfg", ctypes.c_uint32(i), ctypes.c_uint32(want))
            # Executables that exist now, by inode: an exec of one is watched in the
            # kernel from its first instruction (a new file is found by path later).
            for path in _expand(proc.exe.pattern):
                if inodes >= _INODES_MAX:
                    break
                try:
                    st = os.stat(path)
                except OSError:
                    continue
                obj.map_update("inodes", InodeKey(kernel_dev(st.st_dev), st.st_ino),
                               ctypes.c_uint32(i))
                inodes += 1

    def set_enforce(self, enforce: bool) -> None:
        if self.obj is not None:
            self.obj.map_update("control", ctypes.c_uint32(0), ctypes.c_uint32(int(enforce)))

    def watch(self, pid: int, entry: str) -> None:
        i = self.index.get(entry)
        if self.obj is not None and i is not None:
            self.obj.map_update("watched", ctypes.c_uint32(pid), ctypes.c_uint8(i))

    def counters(self) -> dict[str, Any]:
        if self.obj is None:
            return {}
        out: dict[str, Any] = {name: self.obj.percpu_sum("policy_stats", i)
                               for i, name in enumerate(("seen", "dropped", "killed"))}
        out["programs"] = list(self.obj.attached)
        return out

    # ---- records

    def _on_record(self, data: bytes) -> None:
        if len(data) < ctypes.sizeof(Hdr):
            return
        hdr = Hdr.from_buffer_copy(data)
        kind = hdr.type
        # The entry the kernel had for this process: the runtime adopts a process
        # whose fork it has not heard of yet (the proc connector is asynchronous).
        entry = next((n for n, i in self.index.items() if i == hdr.entry), "")
        now = time.time()
        if kind == AGP_SYSCALL and len(data) >= ctypes.sizeof(SyscallRec):
            s = SyscallRec.from_buffer_copy(data)
            name = self.names.get(s.nr, f"syscall {s.nr}")
            self.on_event(SyscallEvent(now, int(s.h.tgid), int(s.nr), name), entry)
        elif kind == AGP_OPEN and len(data) >= ctypes.sizeof(OpenRec):
            o = OpenRec.from_buffer_copy(data)
            raw = o.path.decode("utf-8", "surrogateescape")
            path = _absolute(int(o.h.tgid), int(o.dfd), raw)
            if path:
                self.on_event(OpenEvent(now, int(o.h.tgid), path, int(o.flags)), entry)
        elif kind == AGP_CONNECT and len(data) >= ctypes.sizeof(ConnectRec):
            c = ConnectRec.from_buffer_copy(data)
            family = int(c.family)
            raw_addr = bytes(c.addr)
            address = socket.inet_ntop(socket.AF_INET, raw_addr[:4]) \
                if family == socket.AF_INET else socket.inet_ntop(socket.AF_INET6, raw_addr)
            self.on_event(ConnectEvent(now, int(c.h.tgid), 0, family, address, int(c.port)),
                          entry)
        # AGP_EXEC (an exec of a watched inode) needs nothing here: the kernel
        # already watches it, and the proc connector's exec event follows.


def _pid_max() -> int:
    try:
        return max(32768, int(open("/proc/sys/kernel/pid_max").read()))
    except (OSError, ValueError):
        return 4 << 20  # the 64-bit maximum


def _expand(pattern: str) -> list[str]:
    """The files an exe glob names now (a literal path is itself)."""
    if not any(ch in pattern for ch in "*?["):
        return [pattern]
    try:
        return list(wcglob.iglob(pattern, flags=wcglob.GLOBSTAR | wcglob.DOTGLOB,
                                 limit=_INODES_MAX))[:_INODES_MAX]
    except Exception:  # wcmatch's pattern limit: a too-wide glob is matched by path only
        return []


def _absolute(pid: int, dfd: int, path: str) -> str:
    """A relative open made absolute from the process's cwd or dirfd (read now: racy,
    but the process is inside that very syscall)."""
    if path.startswith("/"):
        return path
    if not path:
        return ""
    base = f"/proc/{pid}/cwd" if dfd == AT_FDCWD else f"/proc/{pid}/fd/{dfd}"
    try:
        return os.path.join(os.readlink(base), path)
    except OSError:
        return ""
