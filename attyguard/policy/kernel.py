"""SEC-002's kernel side: policy.bpf.o loaded through the kernel layer's generic loader.

`PolicySensor` owns the object's life (open → load → attach → ring buffer →
poll thread → close, as attyguard/kernel/bpf.py lays it out), the maps that
carry the policy into the kernel (watched processes, blocked syscall numbers
per entry, which entries want file/network arguments, the executables'
inodes, the enforce switch), and turning ring-buffer records into events
for the runtime. It judges nothing: globs and CIDR rules stay in the pure
evaluator; the kernel only filters (unwatched processes pay one lookup) and,
in enforce mode, kills at a blocked syscall and refuses a connect its LPM
tries (built here from the same rules the evaluator uses) say no to.

The syscall hook's life is owned here too, because it is the cost every
process pays: `agp_sys_enter` is attached to the per-syscall tracepoints of
the syscalls the policy names (`syscalls/sys_enter_<name>`), and only while
a process of an entry that needs them is alive. Any syscall tracepoint sets
the kernel's syscall-tracepoint work flag on every task, which slows every
syscall of every process (bench/policy_bench.py), so with no such process
alive nothing is attached. What attaches them: a process userspace matched
(`watch`), an exec the kernel matched by inode (its `AGP_EXEC` record), and,
before either, the exec hold: a fanotify `FAN_OPEN_EXEC_PERM` inode mark on
each watched executable whose answer waits until the hooks are attached, so
a matched program's first instruction already runs hooked. What detaches
them: the poll thread finding, in the kernel's own `watched` map (mapped
read-only), no live process of such an entry.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import mmap
import os
import re
import select
import socket
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from wcmatch import glob as wcglob

from attyguard.kernel.events import ConnectEvent
from attyguard.policy.model import OpenEvent, Policy, SyscallEvent
from attyguard.policy.syscalls import SyscallTable, tracepoint_event

__all__ = ["LAUNCHED", "OBJECT", "KernelRecord", "PolicySensor"]

log = logging.getLogger("attyguard.daemon")

OBJECT = Path(__file__).resolve().parent.parent / "kernel" / "policy.bpf.o"
AGP_SYSCALL, AGP_OPEN, AGP_CONNECT, AGP_EXEC = 1, 2, 3, 4
AGP_WANT_OPEN, AGP_WANT_CONNECT, AGP_NET_ENFORCE, AGP_NET_ALLOWLIST = 1, 2, 4, 8
AGP_PORT_RANGES = 16
AGP_PATH_LEN = 256
AGP_MAX_ENTRIES = 256
_INODES_MAX = 4096
AT_FDCWD = -100
SYS_ENTER = "agp_sys_enter"  # the blocked-syscall check (reads the number only)
SYS_ARGS = "agp_sys_args"  # the same, and open/connect arguments copied out
SYSCALLS_TP = "syscalls"
TRACEFS_SYSCALLS = ("/sys/kernel/tracing/events/syscalls",
                    "/sys/kernel/debug/tracing/events/syscalls")
OPEN_SYSCALLS = ("open", "openat", "openat2")
CONNECT_SYSCALLS = ("connect",)
# The kernel index key of an entry's `policy run` variant: its processes' syscalls go
# through their seccomp filter, so the variant blocks none (no per-syscall
# tracepoint for them) and exists only for file and network rules. The record's
# entry carries the prefix; the runtime strips it (a NUL: no YAML key has one).
LAUNCHED = "\0launched:"
_LIVENESS_EVERY_S = 0.5  # how often the poll thread asks whether the hooks are still needed
_HOLD_GRACE_S = 2.0  # after the exec hold attached: the exec has yet to reach sched_process_exec
_NONZERO = re.compile(rb"[^\x00]")


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


class NetKey(ctypes.Structure):
    _fields_ = [("prefixlen", ctypes.c_uint32), ("entry", ctypes.c_uint8),
                ("family", ctypes.c_uint8), ("addr", ctypes.c_uint8 * 16),
                ("pad", ctypes.c_uint8 * 2)]


class NetVal(ctypes.Structure):
    _fields_ = [("nranges", ctypes.c_uint32), ("lo", ctypes.c_uint16 * AGP_PORT_RANGES),
                ("hi", ctypes.c_uint16 * AGP_PORT_RANGES)]


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
        self.net_enforce = False  # connects can be refused in the kernel
        self.unenforced: set[str] = set()  # entries whose network rules did not fit
        self.net_reason = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # The syscall hook (see the module doc). `_want`: the tracepoint events the
        # policy needs; `_hooked`: entry indices whose processes need them.
        self._hook_lock = threading.RLock()
        self._want: dict[str, str] = {}  # tracepoint event -> the program for it
        self._want_by: dict[int, frozenset[str]] = {}  # entry index -> its events
        self._hooked: frozenset[int] = frozenset()
        self._hooks: dict[str, str] = {}  # event -> link key in obj.attached
        self._missing: dict[str, str] = {}  # event -> why it could not be attached
        self._grace_until = 0.0
        self._next_check = 0.0
        self.hook_attaches = 0
        self.hook_detaches = 0
        self._view: mmap.mmap | None = None
        self._known: set[int] = set()  # pids seen watched: checked before a full scan
        self.hold: ExecHold | None = None
        self.hold_reason = ""
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
            # 4. attach: the process-tracking programs now; the syscall hook,
            # which costs every process, only while a process needs it.
            obj.attach([p for p, sec in obj.programs()
                        if p not in (SYS_ENTER, SYS_ARGS) and not sec.startswith("cgroup/")])
            control = ctypes.c_uint32(os.getpid())
            obj.map_update("control", ctypes.c_uint32(1), control)
            self._view = obj.map_mmap("watched")
            self.rb = obj.ring_buffer("policy_events", self._on_record)  # 5.
        except Exception:
            obj.close()
            raise
        self.obj = obj
        self._attach_connect()
        self._thread = threading.Thread(target=self._poll, name="policy-bpf", daemon=True)
        self._thread.start()

    def _attach_connect(self) -> None:
        """cgroup/connect4+6 at the cgroup2 root: connects refused in the kernel (enforce)."""
        root = _cgroup2_root()
        if root is None:
            self.net_reason = "no cgroup2 hierarchy mounted"
            return
        try:
            for name in ("agp_connect4", "agp_connect6"):
                self.obj.attach_cgroup(name, root)
        except Exception as exc:  # BpfError: this kernel refuses cgroup sock_addr programs
            self.net_reason = str(exc)
            return
        self.net_enforce = True

    def _poll(self) -> None:
        while not self._stop.is_set():  # 6. poll until stopped
            try:
                self.rb.poll(100)
                if self._hooks and time.monotonic() >= self._next_check:
                    self._next_check = time.monotonic() + _LIVENESS_EVERY_S
                    self.release_hooks_if_idle()
            except Exception:
                log.exception("policy: ring buffer poll failed")
                self._stop.wait(1.0)

    def stop(self) -> None:
        self._stop.set()
        if self.hold is not None:
            self.hold.close()
            self.hold = None
        if self._thread is not None:
            self._thread.join(2.0)
        with self._hook_lock:
            if self._view is not None:
                self._view.close()
                self._view = None
            self._hooks.clear()
            if self.obj is not None:
                self.obj.close()  # 7. detach, free, close
                self.obj = None

    # ---- the syscall hook: attached only while a process needs it

    @property
    def hooks_attached(self) -> tuple[str, ...]:
        return tuple(sorted(self._hooks))

    def ensure_hooks(self, indices: Iterable[int] | None = None) -> None:
        """Attach the tracepoints the entries at `indices` need (None: every entry's;
        a no-op when they are on). One entry's live process attaches only its own:
        a `policy run` process with file rules attaches the open tracepoints, not
        the syscalls its seccomp filter handles."""
        with self._hook_lock:
            obj = self.obj
            if obj is None:
                return
            wanted = set(self._want) if indices is None else \
                {e for i in indices for e in self._want_by.get(i, ())}
            for event in sorted(wanted - set(self._hooks) - set(self._missing)):
                if not _tracepoint_exists(event):
                    # Not in this kernel (a syscall it does not implement): nothing
                    # to hook, and nothing can make the call either.
                    self._missing[event] = "no such tracepoint on this kernel"
                    continue
                try:
                    self._hooks[event] = obj.attach_tracepoint(self._want[event], SYSCALLS_TP,
                                                               event)
                except Exception as exc:  # BpfError
                    self._missing[event] = str(exc)
                    log.warning("policy: cannot hook %s: %s", event, exc)
                    continue
                if len(self._hooks) == 1:
                    self.hook_attaches += 1
            self._next_check = time.monotonic() + _LIVENESS_EVERY_S

    def release_hooks(self) -> None:
        with self._hook_lock:
            if self._hooks:
                self.hook_detaches += 1
            for key in self._hooks.values():
                if self.obj is not None:
                    self.obj.detach(key)
            self._hooks.clear()

    def release_hooks_if_idle(self) -> bool:
        """Detach when no live process of a hooked entry is left (True: detached)."""
        with self._hook_lock:
            if not self._hooks or time.monotonic() < self._grace_until or self.hooks_needed():
                return False
            self.release_hooks()
            log.info("policy: no watched process left; syscall hooks detached")
            return True

    def hooks_needed(self) -> bool:
        """Is a process of a hooked entry alive? Read from the kernel's `watched` map
        itself (a fork the kernel followed may not have reached userspace yet): the
        pids seen before first, then, when none of them is left, the whole map
        (8 bytes a pid: 256 KiB at the default pid_max, 32 MiB at the largest)."""
        view, hooked = self._view, self._hooked
        if view is None or not hooked:
            return False
        for pid in sorted(self._known):
            if 8 * pid < len(view) and view[8 * pid] in hooked \
                    and os.path.exists(f"/proc/{pid}"):
                return True
            self._known.discard(pid)
        slots = view[:][::8]  # one u8 value per 8-byte array element
        for m in _NONZERO.finditer(slots):
            pid = m.start()
            if slots[pid] not in hooked:
                continue
            if os.path.exists(f"/proc/{pid}"):
                self._known.add(pid)
                return True
            # Watched from userspace after it had exited (agp_exit never cleared
            # it): clear it, or it would keep the hooks on for good.
            with contextlib.suppress(Exception):
                if self.obj is not None:
                    self.obj.map_update("watched", ctypes.c_uint32(pid), ctypes.c_uint8(0))
        return False

    def _live_indices(self) -> set[int]:
        """The entry indices of the live processes seen watched (after hooks_needed)."""
        view = self._view
        if view is None:
            return set()
        return {view[8 * pid] for pid in self._known if 8 * pid < len(view)}

    def _hold_exec(self) -> None:
        """The exec hold's question: a watched executable is being exec'd."""
        with self._hook_lock:
            self._grace_until = time.monotonic() + _HOLD_GRACE_S
            self.ensure_hooks()

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
        variants = _variants(policy)
        names = {key for key, _ in variants}
        for name, old in list(self.index.items()):
            if name not in names:
                del self.index[name]
                self._retired.add(old)
                obj.map_update("entry_cfg", ctypes.c_uint32(old), ctypes.c_uint32(0))
        for key, proc in variants:
            if key not in self.index:
                used = set(self.index.values()) | self._retired
                free = next((n for n in range(1, AGP_MAX_ENTRIES) if n not in used), None)
                if free is None:
                    log.warning("policy: no kernel index left for %s (255 entry names used "
                                "since start); its kernel checks need a restart", proc.name)
                    continue
                self.index[key] = free
        for key in obj.map_keys("blocked", BlockedKey):
            obj.map_delete("blocked", key)
        for key in obj.map_keys("inodes", InodeKey):
            obj.map_delete("inodes", key)
        for trie in ("net_blocked", "net_allowed"):
            for key in obj.map_keys(trie, NetKey):
                obj.map_delete(trie, key)
        wanted: dict[str, str] = {}
        want_by: dict[int, frozenset[str]] = {}
        hooked: set[int] = set()
        held: list[str] = []
        inodes = 0
        for key, proc in variants:
            i = self.index.get(key)
            if i is None:
                continue
            events: dict[str, str] = {}
            for name in proc.blocked_syscalls:
                number = self.table.number(name)
                if number is not None:
                    obj.map_update("blocked", BlockedKey(i, number), ctypes.c_uint8(1))
                    events[tracepoint_event(name)] = SYS_ENTER
            if proc.allowed_files is not None or proc.blocked_files:
                events.update((tracepoint_event(n), SYS_ARGS) for n in OPEN_SYSCALLS)
            if proc.allowed_network is not None or proc.blocked_network:
                events.update((tracepoint_event(n), SYS_ARGS) for n in CONNECT_SYSCALLS)
            if events:
                want_by[i] = frozenset(events)
                for event, prog in events.items():
                    # One program per tracepoint: the argument reader also checks.
                    if wanted.get(event) != SYS_ARGS:
                        wanted[event] = prog
                hooked.add(i)
            want = 0
            if proc.allowed_files is not None or proc.blocked_files:
                want |= AGP_WANT_OPEN
            if proc.allowed_network is not None or proc.blocked_network:
                want |= AGP_WANT_CONNECT
                if self.net_enforce and self._load_net_rules(i, proc):
                    want |= AGP_NET_ENFORCE
                    if proc.allowed_network is not None:
                        want |= AGP_NET_ALLOWLIST
            obj.map_update("entry_cfg", ctypes.c_uint32(i), ctypes.c_uint32(want))
            if key != proc.name:
                continue  # a `policy run` variant is never matched by executable
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
                if events:
                    held.append(path)
        with self._hook_lock:
            self._want, self._hooked = wanted, frozenset(hooked)
            self._want_by = want_by
            self._missing.clear()
            for event, key in list(self._hooks.items()):
                if not key.startswith(wanted.get(event, "-") + ":"):
                    obj.detach(self._hooks.pop(event))
            if self._hooks:
                self.ensure_hooks(self._live_indices())  # a reload that names new syscalls
        self._set_hold(held)
        if self.hooks_needed():  # processes watched under the old policy live on
            self.ensure_hooks(self._live_indices())

    def _set_hold(self, paths: list[str]) -> None:
        """A fresh exec hold on these executables (the old group closed: its marks go)."""
        if self.hold is not None:
            self.hold.close()
            self.hold = None
        if not paths:
            return
        try:
            self.hold = ExecHold(paths, self._hold_exec)
        except OSError as exc:
            self.hold_reason = f"fanotify: {exc}"
            log.warning("policy: no exec hold (%s): a watched program runs unhooked from its "
                        "exec until the daemon has attached the syscall hooks", exc)
            return
        self.hold_reason = ""

    def _load_net_rules(self, index: int, proc: Any) -> bool:
        """The entry's CIDR/port rules into the LPM tries; False if they do not fit
        (then its connects are judged in userspace only, and say so)."""
        assert self.obj is not None
        tries = []
        for trie, rules in (("net_blocked", proc.blocked_network),
                            ("net_allowed", proc.allowed_network or ())):
            try:
                tries.append((trie, lpm_entries(index, rules)))
            except ValueError as exc:
                log.warning("policy %s: network rules not enforced in the kernel: %s",
                            proc.name, exc)
                self.unenforced.add(proc.name)
                return False
        for trie, entries in tries:
            for key, value in entries:
                self.obj.map_update(trie, key, value)
        self.unenforced.discard(proc.name)
        return True

    def set_enforce(self, enforce: bool) -> None:
        if self.obj is not None:
            self.obj.map_update("control", ctypes.c_uint32(0), ctypes.c_uint32(int(enforce)))

    def watch(self, pid: int, entry: str, launched: bool = False) -> None:
        """`launched`: a `policy run` process, watched under the entry's variant without
        blocked syscalls (its filter has them), and only if it has file/network rules."""
        i = self.index.get(LAUNCHED + entry if launched else entry)
        if self.obj is not None and i is not None:
            self.obj.map_update("watched", ctypes.c_uint32(pid), ctypes.c_uint8(i))
            if i in self._hooked:
                self._known.add(pid)
                self.ensure_hooks((i,))

    def counters(self) -> dict[str, Any]:
        if self.obj is None:
            return {}
        out: dict[str, Any] = {name: self.obj.percpu_sum("policy_stats", i)
                               for i, name in enumerate(("seen", "dropped", "killed"))}
        out["programs"] = sorted({key.split(":")[0] for key in self.obj.attached})
        out["syscall_hooks"] = [f"{SYSCALLS_TP}/{e}" for e in self.hooks_attached]
        out["syscall_hooks_wanted"] = sorted(self._want)
        out["syscall_hooks_missing"] = dict(self._missing)
        out["hook_attaches"], out["hook_detaches"] = self.hook_attaches, self.hook_detaches
        out["exec_holds"] = self.hold.held if self.hold is not None else 0
        out["exec_hold"] = "fanotify" if self.hold is not None else \
            (f"unavailable: {self.hold_reason}" if self.hold_reason else "none")
        out["connect_denied"] = self.obj.percpu_sum("policy_stats", 3)
        if not self.net_enforce:
            out["connect_enforce"] = f"unavailable: {self.net_reason}"
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
        elif kind == AGP_EXEC and hdr.entry in self._hooked:
            # The kernel watches it already (and the proc connector's exec event
            # follows); the hooks must be on for it, if the exec hold did not do it.
            self._known.add(int(hdr.tgid))
            self.ensure_hooks((int(hdr.entry),))


class ExecHold:
    """FAN_OPEN_EXEC_PERM inode marks on the watched executables: each exec of one
    waits until `on_exec` (attaching the syscall hooks) has returned. It never
    refuses: every event is allowed, within the time the attach takes, and
    closing the group makes the kernel allow whatever still waits.

    The answer comes from a Python thread, so the process that owns the group
    must never exec a watched executable itself: a vfork-style spawn
    (os.posix_spawn) keeps the GIL while the child's exec waits for this
    thread, and the child's copy of the group's fd keeps the group alive (seen
    in a bench that did so: both hung until the child was killed). The daemon
    spawns nothing; a bench or test that runs the sensor in-process starts
    watched programs from another process (a shell)."""

    def __init__(self, paths: list[str], on_exec: Callable[[], None]) -> None:
        from attyguard.kernel.fanotify import FanotifyGroup

        self.group = FanotifyGroup()
        try:
            for path in paths:
                with contextlib.suppress(OSError):  # gone since it was expanded
                    self.group.mark_exec(path, "inode")
        except BaseException:
            self.group.close()
            raise
        self.on_exec = on_exec
        self.held = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="policy-exec-hold",
                                        daemon=True)
        self._thread.start()

    def _run(self) -> None:
        poller = select.poll()
        poller.register(self.group.fd, select.POLLIN)
        while not self._stop.is_set():
            if not poller.poll(100):
                continue
            for event in self.group.read():
                try:
                    self.on_exec()
                except Exception:
                    log.exception("policy: exec hold failed; the exec goes on")
                finally:
                    self.held += 1
                    with contextlib.suppress(OSError):
                        self.group.respond(event, True)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2.0)
        self.group.close()


def _tracepoint_exists(event: str) -> bool:
    return any(os.path.isdir(os.path.join(root, event)) for root in TRACEFS_SYSCALLS)


def _cgroup2_root() -> str | None:
    try:
        with open("/proc/self/mounts") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 3 and parts[2] == "cgroup2":
                    return parts[1]
    except OSError:
        pass
    return None


def _prefix(rule: Any) -> tuple[int, int, bytes]:
    """(prefixlen, family, address bytes masked) of a NetRule in the trie's terms."""
    net = rule.network
    if net is None:
        return 8, 0, b"\0" * 16  # `*`: the entry alone, any family
    raw = net.network_address.packed
    return 16 + net.prefixlen, (4 if net.version == 4 else 6), raw + b"\0" * (16 - len(raw))


def _contains(outer: tuple[int, int, bytes], inner: tuple[int, int, bytes]) -> bool:
    if outer[0] == 8:
        return True
    if outer[1] != inner[1] or outer[0] > inner[0]:
        return False
    bits = outer[0] - 16
    whole, rest = divmod(bits, 8)
    if outer[2][:whole] != inner[2][:whole]:
        return False
    if rest:
        mask = (0xFF << (8 - rest)) & 0xFF
        return (outer[2][whole] & mask) == (inner[2][whole] & mask)
    return True


def lpm_entries(index: int, rules: Any) -> list[tuple[NetKey, NetVal]]:
    """LPM trie entries for one entry's rules. A prefix's ports are merged with those of
    every shorter prefix containing it, so the longest match alone gives the answer the
    evaluator gives; raises ValueError when a prefix needs more than AGP_PORT_RANGES."""
    grouped: dict[tuple[int, int, bytes], list[tuple[int, int]] | None] = {}
    for rule in rules:
        p = _prefix(rule)
        ports = list(rule.ports) if rule.ports else None  # None: any port
        if p in grouped:
            have = grouped[p]
            grouped[p] = None if have is None or ports is None else have + ports
        else:
            grouped[p] = ports
    out = []
    for p, ports in grouped.items():
        merged: list[tuple[int, int]] | None = None if ports is None else list(ports)
        for q, other in grouped.items():
            if q != p and merged is not None and _contains(q, p):
                merged = None if other is None else merged + other
        key = NetKey(p[0], index, p[1], (ctypes.c_uint8 * 16)(*p[2]))
        value = NetVal()
        if merged is not None:
            ranges = _merge_ranges(merged)
            if len(ranges) > AGP_PORT_RANGES:
                raise ValueError(f"more than {AGP_PORT_RANGES} port ranges under one prefix")
            value.nranges = len(ranges)
            for n, (lo, hi) in enumerate(ranges):
                value.lo[n], value.hi[n] = lo, hi
        out.append((key, value))
    return out


def _merge_ranges(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


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


def _variants(policy: Policy) -> list[tuple[str, Any]]:
    """(index key, entry) for each entry, and its `policy run` variant where it has
    file or network rules (the only kernel checks a launched process needs)."""
    import dataclasses

    out: list[tuple[str, Any]] = []
    for proc in policy.processes:
        out.append((proc.name, proc))
        if proc.allowed_files is not None or proc.blocked_files \
                or proc.allowed_network is not None or proc.blocked_network:
            out.append((LAUNCHED + proc.name, dataclasses.replace(proc, blocked_syscalls=())))
    return out
