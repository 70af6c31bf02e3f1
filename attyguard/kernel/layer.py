"""The kernel layer the daemon drives: the probe of the enforcement ladder and `KernelLayer`.

It owns which rung is used, the life of the sensors (exec.bpf.o through the
generic loader, the fanotify group), the scope and deny maps, the answer to
every permission event within its deadline, and the counters. What an exec
*means* is not decided here: the daemon passes `decide(ExecEvent) ->
ExecDecision` and `on_event(KernelEvent)`; nothing here imports the daemon.

The ladder, strongest first (`probe()` tries each for real, at start):
  lsm       bprm_check_security denies in the kernel from maps (critical trees,
            denied inodes): synchronous, needs no daemon. Judged execs still go
            through fanotify when it is available (the LSM cannot wait for the
            daemon), so rung 1 = in-kernel map denies + rung 2's judgement.
  fanotify  FAN_OPEN_EXEC_PERM on the filesystems that hold executables; the
            exec waits for `decide` (bounded by deadline_ms). The argv comes
            from the execve tracepoint record of the same task, which the
            kernel writes to the ring buffer before the open for exec happens:
            The marks follow the mount table: a filesystem mounted later at or
            below an exec root is marked when it appears, and forgotten when it
            goes (attyguard/kernel/mounts.py, its own thread).
            On each permission event the ring buffer is drained first, so the
            record is there unless it was dropped (ring buffer full, counted);
            then the exec is judged on the path alone (argv = (path,),
            argv_truncated=True). Later permission events of the same exec
            (the ELF loader, a script's interpreter) are not judged again.
  signal    the execve tracepoint SIGKILLs denied trees before the exec, and
            sched_process_exec SIGKILLs denied inodes before their first
            instruction. A judged deny arrives after the exec has started: the
            process is killed then (counted as `late_kills`).
  audit     events only; nothing is denied (the daemon adds the netlink proc
            connector source when BPF is absent).

Modes: "enforce" denies; "warn" denies nothing, so it needs no permission
events: its fanotify group is a notification group (FAN_OPEN_EXEC), which
never makes an exec wait, and each exec is judged after it started, so the
daemon can emit warn events. (Not the execve tracepoint alone: it also fires
for the execve attempts that fail, as execvp's PATH search makes.)

Threads: one reader thread drains the ring buffer and runs the Python side;
`decide` runs on a bounded pool so a slow decision never stalls the others.
`on_event` is called on the reader thread and must hand off quickly. On
rungs 1-2, when the compiled helper is there (fanswer.c, built at install
time), its own thread reads the fanotify fd and the ring buffer and answers
out-of-scope tasks, ELF-interpreter follow-ups and cached allows without
Python; the rest is handed to the reader thread, and in enforce C still
answers each handed event at its deadline (in warn it only sorts the
notifications). Without the helper the reader thread does all of it
(`answer_path` in status() says which, and why).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import heapq
import itertools
import logging
import os
import select
import signal
import socket
import struct
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from attyguard.kernel import fanotify as fan
from attyguard.kernel import mounts, records
from attyguard.kernel.bpf import (
    BpfError,
    BpfObject,
    RingBuffer,
    Unsupported,
    ensure_tracefs,
    libbpf_unavailable_reason,
    try_open_load,
)
from attyguard.kernel.events import (
    ExecDecision,
    ExecEvent,
    ExitEvent,
    KernelEvent,
    Rung,
)

__all__ = [
    "EXEC_OBJECT",
    "DenyNotice",
    "KernelLayer",
    "Mode",
    "Probe",
    "RungStatus",
    "probe",
]

log = logging.getLogger("attyguard.kernel")

EXEC_OBJECT = Path(__file__).resolve().parent / "exec.bpf.o"
LADDER: tuple[Rung, ...] = (Rung.LSM, Rung.FANOTIFY, Rung.SIGNAL, Rung.AUDIT)
LSM_PROGRAM = "ag_bprm_check"
SENSOR_PROGRAMS = (
    "ag_execve",
    "ag_execveat",
    "ag_exec_done",
    "ag_fork",
    "ag_exit",
    "ag_socket",
    "ag_connect",
)
# With lazy wakeups, how late on_event may see a record no permission event
# pulled in (fork/exit, execs from unmarked filesystems): the reader's timer.
_LAZY_POLL_MS = 50
_MAX_RECORDS = 65536  # exec records waiting for their permission event (one per tgid)
_HISTORY_PER_TASK = 8  # records of one tgid awaiting their permission events (C path)
_MAX_HISTORY = 4096  # tgids with such records
_EXITED_S = 30.0  # how long an exited guarded tgid counts as guarded for a late notification
Mode = Literal["warn", "enforce"]
OnDeadline = Literal["allow", "deny"]


# --------------------------------------------------------------------------- probe


@dataclass(frozen=True, slots=True)
class RungStatus:
    name: Rung
    available: bool
    reason: str  # why not (or what it rests on when available)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name.value, "available": self.available, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class Probe:
    rungs: tuple[RungStatus, ...]
    in_use: Rung | None  # None: no rung at all (not root, nothing works)
    forced: Rung | None = None
    # who answers rung 2's permission events in enforce: "c" (fanswer.c) or
    # "python" (the reader thread), and why ("" when rung 2 is not available)
    answer_path: str = ""
    answer_path_reason: str = ""

    def status(self, rung: Rung) -> RungStatus:
        return next(r for r in self.rungs if r.name is rung)

    @property
    def bpf(self) -> bool:
        """The tracepoint sensors load here (the signal rung's test is the same load)."""
        return self.status(Rung.SIGNAL).available

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "rungs": [r.to_json() for r in self.rungs],
            "in_use": self.in_use.value if self.in_use else None,
        }
        if self.forced is not None:
            out["forced"] = self.forced.value
        if self.answer_path:
            out["answer_path"] = self.answer_path
            out["answer_path_reason"] = self.answer_path_reason
        return out


def _try_programs(programs: tuple[str, ...], *, attach: bool = True) -> str | None:
    """Load (and attach) just these programs of exec.bpf.o; None on success, else why not."""
    everything = (LSM_PROGRAM, *SENSOR_PROGRAMS)
    result = try_open_load(EXEC_OBJECT, autoload={n: n in programs for n in everything})
    if isinstance(result, Unsupported):
        return result.reason
    try:
        if attach:
            result.attach(list(programs))
    except BpfError as exc:
        return str(exc)
    finally:
        result.close()
    return None


def _lsm_reason() -> str | None:
    reason = _try_programs((LSM_PROGRAM,))
    if reason is None:
        return None
    if "Permission denied" in reason or "errno 1)" in reason:
        # Seen on this project's VMs: BPF LSM is built in, but the kernel
        # refuses BPF trampolines, which lsm/ (and fentry/) programs need.
        return f"loading lsm/bprm_check_security failed with EPERM ({reason})"
    lsm_list = Path("/sys/kernel/security/lsm")
    with contextlib.suppress(OSError):
        if "bpf" not in lsm_list.read_text().split(","):
            return f"BPF LSM is not active (lsm= does not list bpf): {reason}"
    return reason


def _proc_connector_reason() -> str | None:
    """None when the netlink proc connector accepts a listener (audit rung's source)."""
    netlink_connector, cn_idx_proc, cn_val_proc = 11, 1, 1
    proc_cn_mcast_listen, proc_cn_mcast_ignore = 1, 2
    try:
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, netlink_connector)
    except OSError as exc:
        return f"netlink connector socket: {exc.strerror}"
    try:
        sock.bind((os.getpid() & 0x3FFFFF | (threading.get_ident() & 0x3FF) << 22, cn_idx_proc))

        def op(value: int) -> None:
            payload = struct.pack("=I", value)
            cn = struct.pack("=IIIIHH", cn_idx_proc, cn_val_proc, 0, 0, len(payload), 0)
            msg = cn + payload
            nl = struct.pack("=IHHII", 16 + len(msg), 3, 0, 0, os.getpid())  # NLMSG_DONE
            sock.send(nl + msg)

        op(proc_cn_mcast_listen)
        op(proc_cn_mcast_ignore)
    except OSError as exc:
        return f"proc connector listen failed: {exc.strerror}"
    finally:
        sock.close()
    return None


def probe(force: Rung | None = None) -> Probe:
    """Try each rung for real; in_use is the strongest available one, at or below `force`.

    Forcing a rung that is not available falls through to the next one down.
    """
    bpf_missing = libbpf_unavailable_reason()
    root = os.geteuid() == 0
    statuses: list[RungStatus] = []

    tracefs = ensure_tracefs() if root else None
    if not root:
        sensors_reason: str | None = "needs root (CAP_BPF, CAP_PERFMON) to load BPF programs"
    elif bpf_missing:
        sensors_reason = bpf_missing
    elif not Path("/sys/kernel/btf/vmlinux").exists():
        sensors_reason = "kernel without BTF (/sys/kernel/btf/vmlinux): CO-RE cannot relocate"
    elif tracefs:
        sensors_reason = tracefs
    else:
        sensors_reason = _try_programs(SENSOR_PROGRAMS)

    # rung 1
    if sensors_reason:
        statuses.append(RungStatus(Rung.LSM, False, sensors_reason))
    else:
        lsm = _lsm_reason()
        statuses.append(
            RungStatus(Rung.LSM, lsm is None, lsm or "lsm/bprm_check_security loads and attaches")
        )
    # rung 2
    fan_reason = fan.fanotify_unavailable_reason()
    if fan_reason:
        statuses.append(RungStatus(Rung.FANOTIFY, False, fan_reason))
    else:
        how = ("argv from the execve tracepoint" if not sensors_reason
               else f"path only, no argv ({sensors_reason})")
        statuses.append(RungStatus(Rung.FANOTIFY, True, f"FAN_OPEN_EXEC_PERM works; {how}"))
    # rung 3
    statuses.append(
        RungStatus(Rung.SIGNAL, sensors_reason is None,
                   sensors_reason or "tracepoints load and attach; bpf_send_signal(SIGKILL)")
    )
    # rung 4
    pc = _proc_connector_reason() if root else "needs root (CAP_NET_ADMIN) for the proc connector"
    audit_ok = pc is None or sensors_reason is None
    statuses.append(
        RungStatus(Rung.AUDIT, audit_ok,
                   "netlink proc connector usable" if pc is None
                   else ("events from the BPF tracepoints" if audit_ok else pc))
    )

    start = LADDER.index(force) if force is not None else 0
    in_use = next((s.name for s in statuses[start:] if s.available), None)
    path, why = "", ""
    if not fan_reason:
        if sensors_reason:
            path, why = "python", "the C loop needs the tracepoints' maps"
        else:
            helper = fan.load_helper()
            path, why = (("python", helper) if isinstance(helper, str)
                         else ("c", "compiled helper fanswer.c loaded"))
    return Probe(tuple(statuses), in_use, force, path, why)


# --------------------------------------------------------------------------- layer


def _proc_uid(pid: int) -> int:
    """The real uid of a process (as the BPF side's bpf_get_current_uid_gid)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise OSError(errno.ESRCH, "no Uid line")


def _resolved(pid: int, filename: str) -> str:
    """A relative execve path made absolute with the task's cwd, when it is still readable."""
    if filename.startswith("/") or not filename:
        return filename
    try:
        return os.path.normpath(os.path.join(os.readlink(f"/proc/{pid}/cwd"), filename))
    except OSError:
        return filename


def _proc_ppid(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("PPid:"):
            return int(line.split()[1])
    return 0


@dataclass(frozen=True, slots=True)
class DenyNotice:
    """An exec the layer refused on its own, without `decide` (maps, deadline, kernel kill).

    `decide`'s own denies are known to the daemon already; these are not.
    """

    pid: int
    filename: str
    reason: str  # "critical tree", "denied executable", "deadline", "critical tree (killed)"
    rung: Rung


@dataclass(slots=True)
class _Pending:
    """A permission event waiting for its answer (answered exactly once)."""

    event: fan.PermEvent
    deadline: float
    answered: bool = False
    path: str = ""


@dataclass(slots=True)
class _Counters:
    events_seen: int = 0  # ring-buffer records decoded
    exec_events: int = 0
    perm_events: int = 0  # fanotify permission events
    fast_path: int = 0  # answered at once: outside the guarded scope
    judged: int = 0  # decide() calls
    denied: int = 0  # answered FAN_DENY
    warned: int = 0  # would have been denied (warn mode)
    deadline_misses: int = 0
    no_tracepoint_record: int = 0  # judged on the path alone
    decide_errors: int = 0
    late_kills: int = 0  # signal rung: killed after a judged deny
    extra: dict[str, int] = field(default_factory=dict)


class KernelLayer:
    """The sensors and the enforcement of the rung `probe` chose; see the module doc."""

    def __init__(
        self,
        probe: Probe,
        *,
        decide: Callable[[ExecEvent], ExecDecision],
        on_event: Callable[[KernelEvent], None],
        deadline_ms: int = 200,
        mode: Mode = "enforce",
        on_deadline: OnDeadline = "allow",
        mark_paths: list[str] | None = None,
        trace_all: bool = False,
        workers: int = 4,
        ring_buffer_bytes: int | None = None,
        on_deny: Callable[[DenyNotice], None] | None = None,
        answer_path: Literal["auto", "python"] = "auto",
        verdict_cache_ms: int = 10_000,
    ) -> None:
        if mode not in ("warn", "enforce"):
            raise ValueError(f"mode must be warn or enforce, not {mode!r}")
        self.probe = probe
        self.rung = probe.in_use
        self.mode: Mode = mode
        self.deadline = max(1, deadline_ms) / 1000.0
        # warn's wait for a late record (see _park): as enforce's (40% of the deadline)
        self._park_s = max(0.1, 0.4 * self.deadline)
        self.on_deadline = on_deadline
        self._decide = decide
        self._on_event = on_event
        self._on_deny = on_deny
        self._mark_paths = mark_paths
        self._trace_all = trace_all
        self._workers = max(1, workers)
        self._rb_bytes = ring_buffer_bytes
        self._obj: BpfObject | None = None
        self._rb: RingBuffer | None = None
        self._group: fan.FanotifyGroup | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._wake_r, self._wake_w = -1, -1
        self._lock = threading.Lock()  # guards the fields below and the counters
        self._roots: set[int] = set()  # guarded shells' tgids
        self._denied_roots: set[int] = set()
        self._denied_inodes: set[tuple[int, int]] = set()  # (st_dev, st_ino)
        self._exec_records: dict[int, ExecEvent] = {}  # tgid -> its latest execve record
        # C path: each tgid's execve records not yet matched with a permission
        # event, with the C queue's index of each (see PermEvent.rseq). Python
        # may read a task's events after several of its records (warn: the task
        # went on, exec'd again, perhaps ended): the index says which is whose.
        self._history: OrderedDict[int, list[tuple[int, ExecEvent]]] = OrderedDict()
        self._judged: set[int] = set()  # tgids whose current exec was judged
        # tgid -> exec_state.seq of the exec judged last (see _same_exec)
        self._judged_seq: dict[int, int] = {}
        # warn on rung 2: execs are judged from their AG_DONE records (see _on_done)
        self._warn_by_records = False
        # Guarded tgids whose exit record came (tgid -> monotonic time), bounded: in
        # warn a notification can be read after its task ended, and the BPF exit
        # handler has taken it out of `guarded` by then.
        self._exited: OrderedDict[int, float] = OrderedDict()
        # warn: execs whose permission event came before their execve record
        # (tgid -> (monotonic deadline, the path-only event)). Judged with the
        # record when it comes in time, else on the path alone; see _park.
        self._parked: dict[int, tuple[float, ExecEvent]] = {}
        # Notified when an execve record is stored: `wait_record` (decide's
        # threads) waits on it for a record that came after its permission event.
        self._record_cv = threading.Condition(self._lock)
        self._waiting: list[tuple[float, int, _Pending]] = []  # deadline heap
        self._seq = itertools.count()
        self._c = _Counters()
        self._started = False
        self._lazy = False  # a fanotify group wakes the reader; records do not
        self.reader_error: str | None = None
        self.heartbeat = 0.0  # time.monotonic() of the reader loop's last turn
        self._guarded_uids: set[int] = set()
        self.marks: list[tuple[str, str]] = []
        self._want_c = answer_path == "auto"
        self._cache_ms = max(0, verdict_cache_ms)
        self._c_ans: fan.CAnswerer | None = None
        # Bumped by every clear of the verdict cache (under _lock): an allow whose
        # judging began before a clear is not cached (it may stand on what changed).
        self._cache_gen = 0
        self._c_last: dict[str, int] = {}  # the C loop's counters when it stopped
        self.answer_path = "python"
        self.answer_path_reason = "not started"
        # Mount marking (attyguard/kernel/mounts.py): the policy's roots, the
        # filesystems marked ("maj:min" -> (path, how, mount id)), the watcher.
        self._mount_roots: list[str] = []
        self._marked_devs: dict[str, tuple[str, str, int]] = {}
        self._mount_watcher: mounts.MountWatcher | None = None
        self._mount_thread: threading.Thread | None = None

    # ------------------------------------------------------------------ start/stop
    def start(self) -> None:
        """Load, attach and start reading. Raises `BpfError`/`OSError` if the rung's parts fail."""
        if self._started:
            return
        self._started = True
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        rung = self.rung
        if rung is None:
            return
        enforce = self.mode == "enforce"
        self._lazy = rung in (Rung.LSM, Rung.FANOTIFY) and self.probe.status(
            Rung.FANOTIFY).available
        # 1-4: the BPF object (open, rodata, load, attach), when the sensors work here
        if self.probe.bpf:
            err = ensure_tracefs()
            if err:
                raise OSError(errno.ENOENT, err)
            cfg = records.AgConfig(
                self_tgid=os.getpid(),
                trace_all=int(self._trace_all),
                signal_kill=int(rung is Rung.SIGNAL and enforce),
                lsm_enforce=int(rung is Rung.LSM and enforce),
                # rung 1/2: the permission event wakes the reader, which drains then
                lazy_wakeup=int(self._lazy),
                # memfds live where no fanotify mark reaches: killed from BPF
                kill_unnamed=int(enforce),
                # warn on rung 1/2: notifications are read after their exec went
                # on and cannot be told from the task's next exec; the
                # sched_process_exec record says which execs ran (see _on_done)
                done_records=int(self._lazy and not enforce),
            )
            self._warn_by_records = self._lazy and not enforce
            sizes = {"events": self._rb_bytes} if self._rb_bytes else None
            obj = try_open_load(
                EXEC_OBJECT,
                rodata=bytes(cfg),
                autoload={LSM_PROGRAM: rung is Rung.LSM},
                max_entries=sizes,
            )
            if isinstance(obj, Unsupported):
                raise BpfError(obj.step, obj.errno, obj.reason)
            self._obj = obj
            obj.attach()
        # rung 2's group (also under rung 1, which cannot ask the daemon itself)
        if self._lazy:
            # warn: notifications, so that no exec waits (see the module doc)
            group = fan.FanotifyGroup(permission=enforce)
            self._group = group
            roots = self._mark_paths
            if roots is None:
                roots = fan.default_exec_paths()
            self._mount_roots = list(roots)
            for p in fan.distinct_filesystems(roots):
                try:
                    how = group.mark_exec(p)
                except fan.FanotifyError as exc:
                    log.warning("fanotify: cannot mark %s: %s", p, exc.strerror)
                    continue
                self.marks.append((p, how))
                with contextlib.suppress(OSError):
                    st = os.stat(p).st_dev
                    self._marked_devs[f"{os.major(st)}:{os.minor(st)}"] = (p, how, -1)
            # Mounts below the roots now, and every mount that comes later: the
            # same policy, applied on each change of the mount table.
            self._mount_watcher = mounts.MountWatcher()
            self._sync_mounts()
        self._start_answer_path()
        if self._obj is not None and self._c_ans is None:
            # 5: the ring buffer; its records arrive in _on_record on the reader thread
            self._rb = self._obj.ring_buffer("events", self._on_record)
        self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="attyguard-decide")
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._thread = threading.Thread(target=self._run, name="attyguard-kernel", daemon=True)
        self._thread.start()
        if self._mount_watcher is not None:
            self._mount_thread = threading.Thread(target=self._watch_mounts,
                                                  name="attyguard-mounts", daemon=True)
            self._mount_thread.start()

    def _start_answer_path(self) -> None:
        """The C answering loop when it can serve (enforce, a group, the BPF maps), else why not."""
        if self._group is None:
            self.answer_path_reason = "no fanotify group on this rung"
            return
        if not self._want_c:
            self.answer_path_reason = "Python reader chosen (answer_path=python)"
            return
        if self._obj is None:
            self.answer_path_reason = "no BPF maps (tracepoints not loaded) for C to read"
            return
        lib = fan.load_helper()
        if isinstance(lib, str):
            self.answer_path_reason = lib
            log.warning("kernel layer: answering from Python: %s", lib)
            return
        ans = fan.CAnswerer(lib, fan_fd=self._group.fd, ring_map_fd=self._obj.map_fd("events"),
                            guarded_fd=self._obj.map_fd("guarded"),
                            denied_fd=self._obj.map_fd("denied"),
                            deadline_ms=int(self.deadline * 1000),
                            deadline_deny=self.on_deadline == "deny",
                            cache_ttl_ms=self._cache_ms,
                            notify_only=not self._group.permission)
        self._c_ans = ans
        ans.set_exec_state(self._obj.map_fd("exec_state"), warn_by_records=self._warn_by_records)
        self._configure_c()
        ans.start()
        self.answer_path = "c"
        self.answer_path_reason = "compiled helper fanswer.c"

    def _configure_c(self) -> None:
        if self._c_ans is not None:
            self._c_ans.configure(trace_all=self._trace_all, uid_scope=bool(self._guarded_uids),
                                  hand_all=bool(self._denied_inodes),
                                  any_denied=bool(self._denied_roots))

    def stop(self) -> None:
        """Answer what waits (allow), detach and close everything. Idempotent."""
        self._stop.set()
        if self._wake_w >= 0:
            with contextlib.suppress(OSError):
                os.write(self._wake_w, b"x")
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        self._thread = None
        if self._mount_thread is not None and self._mount_thread is not threading.current_thread():
            self._mount_thread.join(timeout=5)
        self._mount_thread = None
        if self._mount_watcher is not None:
            self._mount_watcher.close()
            self._mount_watcher = None
        with self._lock:
            waiting, self._waiting = self._waiting, []
        for _, _, p in waiting:
            self._answer(p, True)
        with self._lock:
            # C first: it answers (allows) what it holds, and reads the group and ring.
            if self._c_ans is not None:
                self._c_last = self._c_ans.counters()
                self._c_ans.close()
                self._c_ans = None
            if self._group is not None:
                self._group.close()  # the kernel allows anything still queued
                self._group = None
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
        if self._obj is not None:
            self._obj.close()  # frees the ring buffer, destroys links, closes maps
            self._obj = None
            self._rb = None
        for fd in (self._wake_r, self._wake_w):
            if fd >= 0:
                os.close(fd)
        self._wake_r = self._wake_w = -1

    def __enter__(self) -> KernelLayer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ mounts
    def _watch_mounts(self) -> None:
        """Its own thread (not the reader's): a mount or unmount wakes it with POLLPRI."""
        watcher = self._mount_watcher
        assert watcher is not None
        poller = select.poll()
        poller.register(watcher.fd, select.POLLPRI | select.POLLERR)
        poller.register(self._wake_r, select.POLLIN)
        while not self._stop.is_set():
            try:
                ready = poller.poll(1000)
            except InterruptedError:
                continue
            if self._stop.is_set():
                return
            if any(fd == watcher.fd for fd, _ in ready):
                try:
                    self._sync_mounts()
                except Exception:
                    # A failed resync leaves the marks as they were; the next change retries.
                    log.exception("fanotify: resync of the mount table failed")

    def _sync_mounts(self) -> None:
        """Mark what the mount policy wants and is not marked; forget what was unmounted."""
        watcher = self._mount_watcher
        if watcher is None:
            return
        table = watcher.read()
        wanted = mounts.marked_by_policy(table, self._mount_roots)
        present_devs = {m.dev for m in table}
        present_ids = {m.mount_id for m in table}
        with self._lock:
            group = self._group
            if group is None:
                return
            # Unmounted: the kernel drops a filesystem mark with the superblock
            # (a mount mark with the mount); here it is forgotten, so a later
            # mount of the same device is marked again.
            for dev, (path, how, mid) in list(self._marked_devs.items()):
                gone = dev not in present_devs if how == "filesystem" or mid < 0 \
                    else mid not in present_ids
                if gone:
                    del self._marked_devs[dev]
                    with contextlib.suppress(ValueError):
                        self.marks.remove((path, how))
                    with contextlib.suppress(ValueError):
                        group.marks.remove((path, how))
                    log.info("fanotify: %s unmounted; its mark is gone", path)
            new = [(dev, m) for dev, m in wanted.items() if dev not in self._marked_devs]
        # Marked outside the lock: a path lookup on a hung filesystem must not hold
        # up the reader, which answers permission events under that lock. (Only
        # this thread adds marks; stop() joins it before closing the group.)
        for dev, m in new:
            if self._stop.is_set():
                return
            try:
                how = group.mark_exec(m.mount_point)
            except fan.FanotifyError as exc:
                log.warning("fanotify: cannot mark %s (%s): %s", m.mount_point, m.fstype,
                            exc.strerror)
                continue
            with self._lock:
                self._marked_devs[dev] = (m.mount_point, how, m.mount_id)
                self.marks.append((m.mount_point, how))
                self._c.extra["mounts_marked"] = self._c.extra.get("mounts_marked", 0) + 1
            log.info("fanotify: marked %s (%s, %s)", m.mount_point, m.fstype, how)

    # ------------------------------------------------------------------ scope
    def _descendants(self, tgid: int) -> list[int]:
        import psutil

        try:
            return [c.pid for c in psutil.Process(tgid).children(recursive=True)]
        except psutil.Error:
            return []

    def guard_tree(self, tgid: int) -> None:
        """Put a guarded shell's tree in scope; processes it forks later inherit in the kernel."""
        with self._lock:
            self._roots.add(tgid)
        if self._obj is not None:
            root = ctypes.c_uint32(tgid)
            for pid in (tgid, *self._descendants(tgid)):
                self._obj.map_update("guarded", ctypes.c_uint32(pid), root)

    def unguard_tree(self, tgid: int) -> None:
        with self._lock:
            self._roots.discard(tgid)
        self._forget_tree("guarded", tgid)

    def guard_uid(self, uid: int) -> None:
        """Every process of this user is in scope (the daemon's `group` scope)."""
        with self._lock:
            self._guarded_uids.add(uid)
            self._configure_c()
        if self._obj is not None:
            self._obj.map_update("guarded_uids", ctypes.c_uint32(uid), ctypes.c_uint32(1))

    def unguard_uid(self, uid: int) -> None:
        with self._lock:
            self._guarded_uids.discard(uid)
            self._configure_c()
        if self._obj is not None:
            self._obj.map_delete("guarded_uids", ctypes.c_uint32(uid))

    def deny_tree(self, tgid: int) -> None:
        """Critical tree: every exec in it is denied (lsm/signal maps; fanotify answers deny)."""
        with self._lock:
            self._denied_roots.add(tgid)
            self._cache_gen += 1
            if self._c_ans is not None:
                self._c_ans.clear_cache()
            self._configure_c()
        if self._obj is not None:
            root = ctypes.c_uint32(tgid)
            for pid in (tgid, *self._descendants(tgid)):
                self._obj.map_update("denied", ctypes.c_uint32(pid), root)

    def deny_inode(self, dev: int, ino: int) -> None:
        """Deny this executable (dev as os.stat's st_dev) wherever it is, under any name."""
        with self._lock:
            self._denied_inodes.add((dev, ino))
            # C cannot stat against this set: it hands every event over from now on
            self._configure_c()
        if self._obj is not None:
            key = records.InodeKey(dev=records.kernel_dev(dev), ino=ino)
            self._obj.map_update("denied_inodes", key, ctypes.c_uint32(1))

    def clear_verdict_cache(self) -> None:
        """Forget every cached allow (rung 2's C loop): call when what decide reads changes
        outside the exec's own key — a tree marked Critical, rules reloaded, trust revoked."""
        with self._lock:
            self._cache_gen += 1
            if self._c_ans is not None:
                self._c_ans.clear_cache()

    def _forget_tree(self, map_name: str, root: int) -> None:
        if self._obj is None:
            return
        value = ctypes.c_uint32()
        for key in self._obj.map_keys(map_name, ctypes.c_uint32):
            if self._obj.map_lookup(map_name, key, value) and value.value == root:
                self._obj.map_delete(map_name, key)

    def map_entries(self, map_name: str) -> dict[int, int]:
        """tgid -> root of `guarded` or `denied` (for status and tests)."""
        if self._obj is None:
            return {}
        out: dict[int, int] = {}
        value = ctypes.c_uint32()
        for key in self._obj.map_keys(map_name, ctypes.c_uint32):
            if self._obj.map_lookup(map_name, key, value):
                out[key.value] = value.value
        return out

    def _in_map(self, map_name: str, tgid: int) -> bool:
        assert self._obj is not None
        return self._obj.map_lookup(map_name, ctypes.c_uint32(tgid), ctypes.c_uint32())

    def _exec_state(self, tgid: int) -> tuple[int, int] | None:
        """(seq, done) of tgid's execve from the kernel's `exec_state` map (exec.h)."""
        if self._obj is None:
            return None
        v = records.AgExecState()
        if not self._obj.map_lookup("exec_state", ctypes.c_uint32(tgid), v):
            return None
        return v.seq, v.done

    def _same_exec(self, tgid: int, state: tuple[int, int] | None) -> bool:
        """Is tgid still in the execve judged last (lock held)? As fanswer.c's same_exec:
        the window of an exec's follow-up opens ends at the task's next execve (its
        record may be late or lost) or when the exec completed. No BPF: no bound."""
        if self._obj is None:
            return True
        return (state is not None and not state[1] and state[0] != 0
                and self._judged_seq.get(tgid) == state[0])

    def _ancestry(self, tgid: int) -> list[int]:
        """tgid and its ancestors, read from /proc (the scope check when BPF is absent)."""
        chain: list[int] = []
        pid = tgid
        while pid > 1 and len(chain) < 64:
            chain.append(pid)
            try:
                stat = Path(f"/proc/{pid}/stat").read_bytes()
                pid = int(stat[stat.rindex(b")") + 2 :].split()[1])
            except (OSError, ValueError, IndexError):
                break
        return chain

    def _scoped(self, tgid: int, check_denied: bool = True) -> tuple[bool, bool]:
        """(guarded, denied) for a tgid: the kernel maps when loaded, else /proc ancestry."""
        if self._obj is not None:
            denied = check_denied and self._in_map("denied", tgid)
            if self._trace_all or self._in_map("guarded", tgid):
                return True, denied
            return self._uid_guarded(tgid), denied
        chain = self._ancestry(tgid)
        with self._lock:
            guarded = self._trace_all or any(p in self._roots for p in chain)
            denied = check_denied and any(p in self._denied_roots for p in chain)
        return guarded or self._uid_guarded(tgid), denied

    def _uid_guarded(self, tgid: int) -> bool:
        if not self._guarded_uids:
            return False
        try:
            uid = _proc_uid(tgid)
        except OSError:
            return False
        return uid in self._guarded_uids

    # ------------------------------------------------------------------ the reader thread
    def _run(self) -> None:
        try:
            self._loop()
        except BaseException:
            # Never wedge the machine: a reader that dies must not leave
            # permission events unanswered. Closing the group makes the kernel
            # allow everything queued on it (and stops new events).
            log.exception("kernel layer reader failed; closing the fanotify group")
            with self._lock:
                group, self._group = self._group, None
                self.reader_error = "reader thread failed (see the daemon log)"
            if group is not None:
                group.close()

    def _loop(self) -> None:
        if self._c_ans is not None:
            self._loop_c(self._c_ans)
            return
        poller = select.poll()
        poller.register(self._wake_r, select.POLLIN)
        if self._group is not None:
            poller.register(self._group.fd, select.POLLIN)
        if self._rb is not None:
            poller.register(self._rb.epoll_fd, select.POLLIN)
        while not self._stop.is_set():
            self.heartbeat = time.monotonic()
            self._expire_parked()
            timeout = self._expire_deadlines()
            try:
                ready = poller.poll(timeout)
            except InterruptedError:
                continue
            if not ready:
                if self._lazy:
                    # Records written without a wakeup (lazy mode) wait at most one
                    # idle period, even when no exec comes to wake the reader.
                    self._drain_ring()
                continue
            # Permission events first: they hold an exec. _on_perm drains the ring
            # buffer itself when it needs an execve record (guarded tasks only).
            if self._group is not None:
                for ev in self._group.read():
                    self._serve(ev)
            self._drain_ring()
        self._drain_ring()

    def _loop_c(self, ans: fan.CAnswerer) -> None:
        """The Python side of the C loop: its records, then the events it handed over."""
        poller = select.poll()
        poller.register(self._wake_r, select.POLLIN)
        poller.register(ans.notify_fd, select.POLLIN)
        # The heartbeat is the older of this loop's turn and the C loop's last
        # turn seen to advance: a stuck C thread (it turns every 50 ms when idle)
        # goes stale as surely as a stuck Python reader.
        turns, c_beat = -1, time.monotonic()
        while not self._stop.is_set():
            now = time.monotonic()
            seen = ans.counters().get("loop_turns", 0)
            if seen != turns:
                turns, c_beat = seen, now
            self.heartbeat = min(now, c_beat)
            self._expire_parked()
            timeout = self._expire_deadlines()
            try:
                poller.poll(timeout)
            except InterruptedError:
                continue
            ans.wait_clear()
            # records first: a handed event's execve record was queued before it
            self._drain_ring()
            while (ev := ans.pop_perm()) is not None:
                self._serve(ev)
        self._drain_ring()

    def _drain_ring(self) -> None:
        if self._c_ans is not None:
            for data in self._c_ans.pop_records():
                self._on_record(data)
            return
        if self._rb is not None:
            try:
                self._rb.consume()
            except BpfError as exc:
                log.warning("ring buffer: %s", exc)

    def _expire_deadlines(self) -> int:
        """Answer every permission event whose deadline passed; ms until the next one."""
        idle = _LAZY_POLL_MS if self._lazy else 100
        if not self._waiting:  # unlocked peek: pushes happen on this thread only
            return idle
        now = time.monotonic()
        expired: list[_Pending] = []
        with self._lock:
            while self._waiting and self._waiting[0][0] <= now:
                _, _, p = heapq.heappop(self._waiting)
                if not p.answered:
                    expired.append(p)
            nxt = self._waiting[0][0] if self._waiting else now + idle / 1000
        for p in expired:
            allow = self.on_deadline == "allow"
            if self._answer(p, allow, deadline=True) and not allow:
                self._notify_deny(p.event.pid, p.path, "deadline")
        return max(0, min(idle, int((nxt - now) * 1000) + 1))

    def _answer(self, p: _Pending, allow: bool, *, deadline: bool = False,
                cache: bool = False, cache_gen: int = -1) -> bool:
        """Respond once; False when someone (deadline or decision) already did.

        Counted before the response is written: the exec resumes the moment it
        is, and a reader of status() must already see why.
        """
        if p.event.id:
            return self._answer_c(p, allow, deadline=deadline, cache=cache, cache_gen=cache_gen)
        with self._lock:
            if p.answered:
                return False
            p.answered = True
            if deadline:
                self._c.deadline_misses += 1
            if not allow:
                self._c.denied += 1
            # Written under the lock (one non-blocking write): stop() closes the
            # group under it too, so a decide thread never writes to a closed
            # fd whose number was reused.
            if self._group is None:
                with contextlib.suppress(OSError):
                    os.close(p.event.fd)
                return True
            try:
                self._group.respond(p.event, allow)
            except OSError as exc:
                log.warning("fanotify response failed: %s", exc)
        return True

    def _answer_c(self, p: _Pending, allow: bool, *, deadline: bool, cache: bool,
                  cache_gen: int = -1) -> bool:
        """`_answer` for an event the C loop handed over: C writes it (once) and closes the fd."""
        with self._lock:
            cache = cache and cache_gen == self._cache_gen
            if p.answered:
                return False
            p.answered = True
            # counted first, as in _answer; undone when C had answered already
            self._c.denied += not allow
            self._c.deadline_misses += deadline
            done = self._c_ans.answer(p.event, allow, cache=cache) if self._c_ans else 0
            if done != 1:
                self._c.denied -= not allow
                self._c.deadline_misses -= deadline
        if done == 2 and not deadline and self.on_deadline == "deny":
            # C's own deadline denied it before the decision came: tell it as ours
            self._notify_deny(p.event.pid, p.path, "deadline")
        return done == 1 or (deadline and done == 2)

    def _on_record(self, data: bytes) -> None:
        rec = records.decode(data, self.rung or Rung.AUDIT)
        if rec is None:
            return
        ev = rec.event
        if rec.unnamed and isinstance(ev, ExecEvent):
            self._on_unnamed(ev, rec.killed)
            return
        if rec.done and isinstance(ev, ExecEvent):
            self._on_done(ev)
            return
        unparked: ExecEvent | None = None
        with self._lock:
            self._c.events_seen += 1
            if isinstance(ev, ExecEvent):
                self._c.exec_events += 1
                if len(self._exec_records) >= _MAX_RECORDS:  # lost exits: forget the oldest
                    oldest = next(iter(self._exec_records))
                    del self._exec_records[oldest]
                self._exec_records[ev.tgid] = ev
                if self._c_ans is not None:
                    hist = self._history.setdefault(ev.tgid, [])
                    hist.append((self._c_ans.records_popped, ev))
                    del hist[:-_HISTORY_PER_TASK]
                    self._history.move_to_end(ev.tgid)
                    if len(self._history) > _MAX_HISTORY:
                        self._history.popitem(last=False)
                self._judged.discard(ev.tgid)
                parked = self._parked.pop(ev.tgid, None)
                if parked is not None and not rec.killed and not ev.exe_unnamed:
                    # the late record of a parked exec: judged with it after all
                    del self._exec_records[ev.tgid]
                    self._judged.add(ev.tgid)
                    self._c.no_tracepoint_record -= 1
                    self._c.extra["late_records"] = self._c.extra.get("late_records", 0) + 1
                    unparked = replace(ev, filename=parked[1].filename or ev.filename,
                                       rung=Rung.FANOTIFY)
                elif parked is not None:
                    unparked = parked[1]
                self._record_cv.notify_all()
            elif isinstance(ev, ExitEvent):
                self._exec_records.pop(ev.pid, None)
                if self.mode != "warn":
                    # (warn keeps the history: its notifications may be read after the exit)
                    self._history.pop(ev.pid, None)
                self._judged.discard(ev.pid)
                self._judged_seq.pop(ev.pid, None)
                parked = self._parked.pop(ev.pid, None)
                if parked is not None:  # its record never came: the path alone
                    unparked = parked[1]
                self._exited[ev.pid] = time.monotonic()
                self._exited.move_to_end(ev.pid)
                if len(self._exited) > _MAX_RECORDS:
                    self._exited.popitem(last=False)
        if unparked is not None:
            self._submit_async(unparked)
        if isinstance(ev, ExecEvent) and ev.exe_unnamed:
            # execveat(memfd, "", AT_EMPTY_PATH): no permission event will come
            # (killed already in enforce): judged and recorded from the record.
            with self._lock:
                self._exec_records.pop(ev.tgid, None)
                self._judged.add(ev.tgid)
            self._submit_unnamed(ev, rec.killed)
        elif isinstance(ev, ExecEvent) and rec.killed:
            self._notify_deny(ev.tgid, ev.filename, "critical tree (killed)")
        if isinstance(ev, ExecEvent) and not rec.killed and not ev.exe_unnamed \
                and self._group is None:
            # No permission rung: judge after the fact (warn events; rung 3 kills).
            self._submit_async(ev)
        try:
            self._on_event(ev)
        except Exception:
            log.exception("on_event failed")

    def _on_done(self, ev: ExecEvent) -> None:
        """warn on rung 1/2 (AG_DONE, sched_process_exec): tgid's exec ran; judge it.

        The exec is the task's last execve record before this one, in the ring
        buffer's order (a task's own records keep its program order); earlier
        records without an AG_DONE were attempts that failed (a PATH search).
        No record (lost, the ring buffer full): judged on its path alone.
        """
        with self._lock:
            self._c.events_seen += 1
            self._c.extra["execs_done"] = self._c.extra.get("execs_done", 0) + 1
            record = self._exec_records.pop(ev.tgid, None)
            self._history.pop(ev.tgid, None)
            if record is None:
                self._c.no_tracepoint_record += 1
        if record is None:
            with contextlib.suppress(OSError, ValueError):
                ev = replace(ev, ppid=_proc_ppid(ev.tgid))
            self._submit_async(replace(ev, filename=_resolved(ev.tgid, ev.filename),
                                       argv=(_resolved(ev.tgid, ev.filename),)))
            return
        self._submit_async(replace(record, filename=_resolved(ev.tgid, record.filename),
                                   rung=ev.rung))

    def wait_record(self, tgid: int, timeout: float) -> ExecEvent | None:
        """The execve record of tgid's exec, waited for at most timeout seconds.

        For `decide` (a pool thread) when its event came with `no_record`: the
        record may be late rather than lost — the ring buffer hands records out
        in reservation order, so one reserved earlier on another CPU and not yet
        committed holds back the ones behind it. The reader drains at least
        every idle period, so a late record lands here within ~50 ms. The record
        is taken (this exec is judged with it; its later opens are follow-ups).
        """
        deadline = time.monotonic() + max(0.0, timeout)
        with self._record_cv:
            while tgid not in self._exec_records:
                left = deadline - time.monotonic()
                if left <= 0 or self._stop.is_set():
                    return None
                self._record_cv.wait(left)
            record = self._exec_records.pop(tgid)
            self._judged.add(tgid)
            self._c.extra["late_records"] = self._c.extra.get("late_records", 0) + 1
            return record

    def _on_unnamed(self, ev: ExecEvent, killed: bool) -> None:
        """sched_process_exec: a guarded task's new image is a memfd or a deleted file.

        Joined with the task's execve record (argv, fds) unless that exec was
        judged already (a permission event, or an empty-path execveat record).
        """
        with self._lock:
            self._c.events_seen += 1
            self._c.extra["unnamed_execs"] = self._c.extra.get("unnamed_execs", 0) + 1
            record = self._exec_records.pop(ev.tgid, None)
            judged = record is None and ev.tgid in self._judged
            self._judged.add(ev.tgid)
        if judged:
            return
        if record is not None:
            ev = replace(record, filename=ev.filename, exe_unnamed=True)
        self._submit_unnamed(ev, killed)

    def _submit_unnamed(self, ev: ExecEvent, killed: bool) -> None:
        pool = self._pool
        if pool is None:
            return
        with contextlib.suppress(RuntimeError):
            pool.submit(self._judge_unnamed, ev, killed)

    def _judge_unnamed(self, ev: ExecEvent, killed: bool) -> None:
        """Judged like any exec, after the kernel acted: the record says what happened."""
        decision = self._call_decide(ev)
        if not decision.allow and self.mode == "warn":
            with self._lock:
                self._c.warned += 1
        if killed and decision.allow:
            # The kernel cannot ask: it killed what decide would have let run.
            self._notify_deny(ev.tgid, ev.filename, "in-memory executable (killed)")
        elif not killed and not decision.allow and self.mode == "enforce":
            # A kernel kill that did not happen (BPF absent on this rung): late.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(ev.tgid, signal.SIGKILL)
                with self._lock:
                    self._c.late_kills += 1

    def _serve(self, ev: fan.PermEvent) -> None:
        """One permission event from either reader loop; a failure allows that one event."""
        try:
            self._on_perm(ev)
        except Exception:
            # fail open for this one event, keep serving the others
            log.exception("permission event for pid %d failed; allowed", ev.pid)
            self._answer(_Pending(ev, 0.0), True)

    def _on_perm(self, ev: fan.PermEvent) -> None:
        """One permission event, cheapest answers first (the exec waits meanwhile)."""
        enforce = self.mode == "enforce"
        with self._lock:
            self._c.perm_events += 1
            check_inodes = enforce and bool(self._denied_inodes)
            check_trees = enforce and bool(self._denied_roots)
        if self._warn_by_records and not ev.id:
            # warn: the AG_DONE records say which execs ran (_on_done); a
            # notification read late cannot be told from the task's next exec
            fan.close_event(ev)
            return
        if check_inodes:
            key = fan.stat_key(ev.fd)
            with self._lock:
                inode_denied = key is not None and key in self._denied_inodes
            if inode_denied:
                self._deny_now(ev, "denied executable")
                return
        guarded, denied = self._scoped(ev.pid, check_trees)
        if ev.hint in (fan.HINT_FIRST, fan.HINT_NO_RECORD):
            # C found the task in the `guarded` map when the event came. Asked
            # again now, the map may have lost it: in warn the exec goes on, and
            # a short program has exited (its entry deleted) before Python got
            # here; that exec was then taken for an out-of-scope one, unjudged.
            guarded = True
        elif not guarded and not enforce and not ev.id:
            # warn, Python reader: the task went on and may have ended before this
            # notification was read (its `guarded` entry deleted at exit): its exit
            # record, drained now, says it was in scope. (The daemon's decide
            # finds its tree from its fork/exit records.)
            self._drain_ring()
            with self._lock:
                when = self._exited.get(ev.pid)
            guarded = when is not None and time.monotonic() - when < _EXITED_S
        if denied:
            self._deny_now(ev, "critical tree")
            return
        if not guarded:
            with self._lock:
                self._c.fast_path += 1
            self._respond_now(ev, allow=True)
            return
        if not enforce and not ev.id:
            # warn: the exec may go on at once; judging happens after (fd kept for its path).
            # (A notification, or handed over by C: nothing waits.)
            self._respond_now(ev, allow=True, close=False)
        # The execve record of this task was written before this event: drain
        # the ring buffer so it is here (and so an exec chain in one pid is not
        # mistaken for a follow-up of the previous exec).
        self._drain_ring()
        state = self._exec_state(ev.pid)  # read while the task waits in its exec
        with self._lock:
            record = self._exec_records.pop(ev.pid, None)
            if ev.id and ev.hint in (fan.HINT_FIRST, fan.HINT_NO_RECORD):
                record = self._record_for(ev)
            # A later open of an exec already judged (ELF loader, interpreter):
            # its execve record was consumed by the first one.
            follow_up = (record is None and ev.pid in self._judged
                         and ev.hint != fan.HINT_NO_RECORD and self._same_exec(ev.pid, state))
            if record is not None and ev.hint == fan.HINT_NO_RECORD:
                self._c.extra["late_records"] = self._c.extra.get("late_records", 0) + 1
            # warn: a later open (ELF loader) of an exec parked for its record
            parked_already = record is None and not enforce and ev.pid in self._parked
            self._judged.add(ev.pid)
            if not follow_up and state is not None:
                self._judged_seq[ev.pid] = state[0]
            if record is None and not follow_up and not parked_already:
                self._c.no_tracepoint_record += 1
        if follow_up or parked_already:
            if enforce or ev.id:
                self._respond_now(ev, allow=True)  # (C: releases the event, closes its fd)
            else:
                fan.close_event(ev)
            return
        path = fan.fd_path(ev.fd)
        if record is None:
                # No tracepoint record (dropped, or the tree was guarded mid-exec):
            # judge the path alone, flagged as truncated.
            try:
                uid, ppid = _proc_uid(ev.pid), _proc_ppid(ev.pid)
            except (OSError, ValueError):
                uid, ppid = -1, 0
            exec_ev = ExecEvent(time=time.time(), pid=ev.pid, tgid=ev.pid, ppid=ppid, uid=uid,
                                filename=path, argv=(path,), argv_truncated=True,
                                rung=Rung.FANOTIFY, no_record=True)
        else:
            # A script exec'd through one of the task's fds (a memfd: fanotify sees
            # only its interpreter's open): the record's name is the program.
            own_fd = record.filename.startswith(("/proc/self/fd/", "/proc/thread-self/fd/",
                                                 "/dev/fd/"))
            exec_ev = replace(record, filename=record.filename if own_fd else
                              (path or record.filename), rung=Rung.FANOTIFY)
        if not enforce:
            if ev.id:
                self._respond_now(ev, allow=True)  # releases C's hold on it
            else:
                fan.close_event(ev)  # answered above
            if record is None:
                self._park(exec_ev)
            else:
                self._submit_async(exec_ev)
            return
        pending = _Pending(ev, time.monotonic() + self.deadline, path=path)
        with self._lock:
            heapq.heappush(self._waiting, (pending.deadline, next(self._seq), pending))
        assert self._pool is not None
        try:
            self._pool.submit(self._judge, pending, exec_ev)
        except RuntimeError:  # pool shut down: stopping
            self._answer(pending, True)

    def _record_for(self, ev: fan.PermEvent) -> ExecEvent | None:
        """The execve record of a handed event, from the tgid's history (lock held).

        HINT_FIRST: C matched a record queued before it handed the event — the
        last such one. HINT_NO_RECORD: C had none; the first record queued
        after it is this exec's (late); one queued before is an older exec's
        (C answered that one from its cache). Earlier records are dropped.
        """
        hist = self._history.get(ev.pid)
        if not hist:
            return None

        def after(seq: int) -> bool:  # queued after the event was handed (mod 2^32)
            return 0 < (seq - ev.rseq) & 0xFFFFFFFF < 1 << 31

        # enforce: the task waits for this answer, so its record is the last one
        # queued before the event (older unmatched ones were answered in C from
        # its cache). warn: the task went on and may have exec'd again before C
        # read this event: the first unmatched one is this exec's (nothing is
        # cached in warn; only failed attempts, e.g. a PATH search, leave records
        # without an event, and those share the argv of the exec that follows).
        first = self.mode == "warn"
        chosen = -1
        for i, (seq, _) in enumerate(hist):
            if ev.hint == fan.HINT_FIRST and not after(seq):
                chosen = i
                if first:
                    break
            elif ev.hint == fan.HINT_NO_RECORD and after(seq):
                chosen = i
                break
        if chosen < 0:
            if ev.hint == fan.HINT_NO_RECORD:
                hist.clear()  # all older than this exec
            return None
        record = hist[chosen][1]
        end = chosen + 1
        while first and end < len(hist) and hist[end][1].argv == record.argv:
            end += 1  # the same exec retried along PATH: one exec, one record
        del hist[:end]
        if self._exec_records.get(ev.pid) is record:
            del self._exec_records[ev.pid]
        return record

    def _park(self, ev: ExecEvent) -> None:
        """warn: wait (bounded) for the record of an exec that went on without it.

        Its execve record is usually late, not lost: the ring buffer hands
        records out in reservation order, and one reserved on the other CPU
        holds ours back. Judged at once on the path alone, a shell's exec looked
        like one whose argv was cut (a spurious warning) and its ELF loader's
        open like a second exec. Nothing waits on a notification, so the exec
        is parked instead: judged with its record if that comes within
        `_park_s`, else on its path (`_expire_parked`, each reader turn). The
        bound: a task that execs again within that time has its second record
        taken for this exec (warn only; enforce holds the task, see wait_record).
        """
        with self._lock:
            self._parked[ev.tgid] = (time.monotonic() + self._park_s, ev)

    def _expire_parked(self) -> None:
        if not self._parked:  # unlocked peek: a miss waits one reader turn
            return
        now = time.monotonic()
        with self._lock:
            due = [p for p, (until, _) in self._parked.items() if until <= now]
            events = [self._parked.pop(p)[1] for p in due]
        for ev in events:
            self._submit_async(ev)

    def _deny_now(self, ev: fan.PermEvent, reason: str) -> None:
        path = fan.fd_path(ev.fd) if self._on_deny is not None else ""
        with self._lock:
            self._c.denied += 1
        self._respond_now(ev, allow=False)
        self._notify_deny(ev.pid, path, reason)

    def _notify_deny(self, pid: int, filename: str, reason: str) -> None:
        if self._on_deny is None:
            return
        try:
            self._on_deny(DenyNotice(pid, filename, reason, self.rung or Rung.AUDIT))
        except Exception:
            log.exception("on_deny failed")

    def _respond_now(self, ev: fan.PermEvent, *, allow: bool, close: bool = True) -> None:
        if ev.id:
            # handed over by C (enforce only, so always closed by the answer);
            # under the lock: stop() frees the C side under it
            with self._lock:
                if self._c_ans is not None:
                    self._c_ans.answer(ev, allow)
            return
        assert self._group is not None
        try:
            self._group.respond(ev, allow, close=close)
        except OSError as exc:
            log.warning("fanotify response failed: %s", exc)

    def _call_decide(self, ev: ExecEvent) -> ExecDecision:
        with self._lock:
            self._c.judged += 1
        try:
            return self._decide(ev)
        except Exception:
            log.exception("decide failed; allowing %s", ev.filename)
            with self._lock:
                self._c.decide_errors += 1
            return ExecDecision(True, "decide failed")

    def _judge(self, pending: _Pending, ev: ExecEvent) -> None:
        gen = self._cache_gen
        decision = self._call_decide(ev)
        self._answer(pending, decision.allow, cache=decision.cacheable, cache_gen=gen)

    def _submit_async(self, ev: ExecEvent) -> None:
        pool = self._pool
        if pool is None:
            return
        with contextlib.suppress(RuntimeError):
            pool.submit(self._judge_after, ev)

    def _judge_after(self, ev: ExecEvent) -> None:
        decision = self._call_decide(ev)
        if decision.allow:
            return
        if self.mode == "warn":
            with self._lock:
                self._c.warned += 1
            return
        if self.rung is Rung.SIGNAL:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(ev.tgid, signal.SIGKILL)
                with self._lock:
                    self._c.late_kills += 1

    # ------------------------------------------------------------------ status
    def kernel_counters(self) -> dict[str, int]:
        if self._obj is None:
            return {}
        names = {
            "seen": records.STAT_SEEN,
            "dropped": records.STAT_DROPPED,
            "signal_killed": records.STAT_SIGNAL_KILLED,
            "lsm_denied": records.STAT_LSM_DENIED,
        }
        try:
            return {k: self._obj.percpu_sum("stats", i) for k, i in names.items()}
        except BpfError:
            return {}

    def status(self) -> dict[str, Any]:
        k = self.kernel_counters()
        with self._lock:
            cc = self._c_ans.counters() if self._c_ans is not None else self._c_last
            c = self._c
            out: dict[str, Any] = {
                "rung": self.rung.value if self.rung else None,
                "mode": self.mode,
                "running": self._thread is not None and self.reader_error is None,
                "reader_error": self.reader_error,
                "heartbeat_age_s": (round(time.monotonic() - self.heartbeat, 3)
                                    if self.heartbeat else None),
                "guarded_uids": sorted(self._guarded_uids),
                "events_seen": c.events_seen,
                "events_denied": c.denied + k.get("signal_killed", 0) + k.get("lsm_denied", 0),
                "events_dropped": k.get("dropped", 0),
                "deadline_misses": c.deadline_misses + cc.get("deadline_answers", 0),
                "deadline_ms": int(self.deadline * 1000),
                "on_deadline": self.on_deadline,
                "exec_events": c.exec_events,
                # with the C loop, every event is read there (Python sees the handed ones)
                "permission_events": cc.get("permission_events", c.perm_events),
                "fanotify": (None if self._group is None and not self.marks
                             else "permission" if self.mode == "enforce" else "notification"),
                "fast_path": c.fast_path + cc.get("fast_path", 0),
                "answer_path": self.answer_path,
                "answer_path_reason": self.answer_path_reason,
                "answered_in_c": {n: cc.get(n, 0) for n in ("fast_path", "follow_ups", "cached",
                                                           "deadline_answers",
                                                           "queue_full_answers")},
                "handed_to_python": cc.get("handed", 0),
                "records_lost": cc.get("records_lost", 0),
                "judged": c.judged,
                "warned": c.warned,
                "late_kills": c.late_kills,
                "no_tracepoint_record": c.no_tracepoint_record,
                "late_records": c.extra.get("late_records", 0),
                "unnamed_execs": c.extra.get("unnamed_execs", 0),
                "mounts_marked": c.extra.get("mounts_marked", 0),
                "decide_errors": c.decide_errors,
                "guarded_trees": sorted(self._roots),
                "denied_trees": sorted(self._denied_roots),
                "marks": [{"path": p, "how": h} for p, h in self.marks],
                "kernel": k,
            }
        return out
