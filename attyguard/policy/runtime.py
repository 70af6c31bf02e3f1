"""The policy at run time in the daemon: event sources in, violation records out.

`PolicyRuntime` owns everything around the pure `Evaluator`: choosing the
backend, feeding it events (the netlink proc connector and a psutil sampler in
the audit-only fallback), hashing executables for SHA-256 pins, the record of
each violation (the daemon's log first, then the in-memory ring behind
`attyguard policy violations`, then the followers and the alert sinks), the
run-time mode switch, and reloads.

Backends:

- `fallback` (audit only): exec/fork/exit from the proc connector (root), or
  from the sampler's process scan when the connector cannot be opened (not
  root: then a short-lived child can be missed between two scans); memory
  and CPU from psutil. It cannot see file opens, syscalls or network
  connects. Nothing can be stopped from here, so the mode is forced to
  `audit`, with one warning.
- `kernel` (root, eBPF): `attyguard/kernel/policy.bpf.o` through the kernel
  layer's generic loader (`attyguard.policy.kernel.PolicySensor`) adds
  syscalls, file opens and connects of watched processes; enforce kills the
  process at a blocked syscall's entry in the kernel (the call itself still
  runs: the record says so), refuses a connect in the kernel
  (cgroup/connect4/6, EPERM), refuses an exec at the exec guard's permission
  rung (EPERM, when that runs in enforce) and kills a process over its
  memory/CPU limit from here (SIGKILL). In enforce a file gate
  (attyguard/policy/files.py: fanotify FAN_OPEN_PERM on the paths the file
  rules name, its own group and thread) refuses a watched process's open of
  a blocked file, or of one outside allowed_files, with EPERM; audit and
  alert record opens from the tracepoint and place no permission marks.
  If the object does not load, the fallback runs, and says why.

Threads: the proc connector is read on the daemon's event loop; the sampler
runs in its own thread; both feed through `feed()`, which holds one lock
around the evaluator. Records reach the loop's connections only through the
`on_record`/`publish` callables, which the daemon makes thread-safe.
"""

from __future__ import annotations

import array
import contextlib
import ctypes
import errno
import hashlib
import json
import logging
import os
import signal
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

import psutil

from attyguard.kernel.events import ConnectEvent, ExecEvent, ExitEvent, ForkEvent, KernelEvent
from attyguard.policy.evaluate import Evaluator
from attyguard.policy.model import (
    Mode,
    OpenEvent,
    Policy,
    ResourceSample,
    SyscallEvent,
    Violation,
    ViolationAction,
    ViolationType,
)
from attyguard.policy.seccomp import LISTENER_LINK
from attyguard.policy.sinks import SinkDispatcher

__all__ = ["FALLBACK_BLIND", "FALLBACK_SEES", "PolicyRuntime", "choose_backend"]

log = logging.getLogger("attyguard.daemon")

FALLBACK_SEES = ("exec", "fork", "exit", "memory", "cpu")
FALLBACK_BLIND = ("file", "syscall", "network")
# What a rung can always stop on the kernel backend: a blocked syscall (SIGKILL from
# BPF at syscall entry) and memory/CPU (SIGKILL from the sampler). Connects (cgroup
# connect4/6) and execs (the exec guard's gate) are added when those attach.
KERNEL_BLOCKABLE = frozenset({ViolationType.SYSCALL, ViolationType.RESOURCE})
# SIGKILL from a sys_enter tracepoint is delivered on the way back to user space, after
# the call ran (seen on this project's kernel: an unlinkat still removed its file;
# there are no kprobes, so no bpf_override_return): the record says so.
SYSCALL_KILL_NOTE = "process killed at syscall entry; the call itself was not refused"
_HASH_CACHE = 256
_SYS_KCMP, _KCMP_FILE = 312, 0  # x86-64
_RESCAN_WITH_CONNECTOR_S = 2.0  # a safety net for lost notifications (ENOBUFS)

PolicyEvent = KernelEvent | SyscallEvent | OpenEvent


def choose_backend(kernel: str) -> tuple[str, str]:
    """(`kernel` | `fallback`, why). `kernel` is the config's `auto` | `off`."""
    if kernel == "off":
        return "fallback", 'forced by config ([policy] kernel = "off")'
    if os.geteuid() != 0:
        return "fallback", "not root"
    try:
        from attyguard.kernel.bpf import libbpf_unavailable_reason
    except ImportError as exc:
        return "fallback", f"no kernel layer ({exc})"
    reason = libbpf_unavailable_reason()
    if reason:
        return "fallback", f"no eBPF ({reason})"
    return "kernel", ""


class PolicyRuntime:
    def __init__(
        self,
        policy: Policy,
        *,
        kernel: str = "auto",
        sample_interval_s: float = 0.25,
        kept: int = 1000,
        on_record: Callable[[dict[str, Any], int], None] | None = None,
        publish: Callable[[str, int], None] | None = None,
        syslog_address: str = "/dev/log",
        use_connector: bool = True,
        exec_gate: Any = None,
        file_deadline_ms: int = 200,
        launches_per_user: int = 256,
    ) -> None:
        self.policy = policy
        self.backend, self.reason = choose_backend(kernel)
        self.requested_mode = policy.mode
        self.evaluator = Evaluator(policy, mode=self._effective(policy.mode))
        self.sensor: Any = None  # PolicySensor on the kernel backend
        # The daemon's exec guard (ExecService) when it runs: its permission rung
        # refuses a watched process's exec outside allowed_exec with EPERM.
        self.exec_gate = exec_gate
        self.sample_interval_s = sample_interval_s
        self.records: deque[tuple[int, dict[str, Any]]] = deque(maxlen=kept)
        self.on_record = on_record
        self.publish = publish
        self.syslog_address = syslog_address
        self.use_connector = use_connector
        self.dispatcher = self._dispatcher(policy)
        self.connector: Any = None
        self.started = time.time()
        self.errors = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: Any = None
        self._procs: dict[int, psutil.Process] = {}
        self._hashes: dict[tuple[int, int, int, int], str] = {}
        # The enforce-mode file gate (FileGate) while one runs; rebuilt on a mode
        # switch or reload, one rebuild at a time.
        self.files: Any = None
        self.file_deadline_s = max(1, file_deadline_ms) / 1000.0
        self._files_lock = threading.Lock()
        # `policy run` processes: their listeners and the thread answering them
        # (attyguard/policy/supervisor.py), started with the first launch.
        self.supervisor: Any = None
        # Every launch keeps a listener descriptor in the daemon: one user must not
        # be able to exhaust its descriptors (root, who can stop the daemon anyway,
        # is not counted).
        self.launches_per_user = launches_per_user

    # ---- life cycle

    def _effective(self, mode: Mode) -> Mode:
        return Mode.AUDIT if self.backend == "fallback" else mode

    def _dispatcher(self, policy: Policy) -> SinkDispatcher:
        return SinkDispatcher(policy.on_violation, policy.on_critical, publish=self.publish,
                              syslog_address=self.syslog_address)

    def start(self, loop: Any = None) -> None:
        """Start the event sources; never raises (a missing source is logged)."""
        self._loop = loop
        if self.backend == "kernel":
            self._start_sensor()
        with self._lock:
            self.evaluator.mode = self._effective(self.requested_mode)
            if self.backend == "kernel":
                self.evaluator.blockable = self._kernel_blockable()
                self.evaluator.blocked_notes[ViolationType.SYSCALL] = SYSCALL_KILL_NOTE
                if self.exec_gate is not None and self.exec_gate.can_deny_exec():
                    self.evaluator.blockable |= {ViolationType.EXEC}
                    self.exec_gate.policy_decide = self.decide_exec
        if self.sensor is not None:
            self.sensor.set_enforce(self.evaluator.mode is Mode.ENFORCE)
        self._sync_files()
        if self.backend == "fallback":
            forced = (f"; mode {self.requested_mode.value} forced to audit"
                      if self.requested_mode is not Mode.AUDIT else "")
            log.warning("policy %s: audit-only fallback (%s): sees %s; cannot see %s%s",
                        self.policy.path, self.reason, ", ".join(FALLBACK_SEES),
                        ", ".join(FALLBACK_BLIND), forced)
        if self.use_connector and loop is not None:
            self._start_connector(loop)
        self._scan()
        self._thread = threading.Thread(target=self._sample_loop, name="policy-sampler",
                                        daemon=True)
        self._thread.start()

    def _kernel_blockable(self) -> frozenset[ViolationType]:
        blockable = set(KERNEL_BLOCKABLE)
        # Connects are refused in the kernel only when every entry's rules fit the tries:
        # a record never says `blocked` for a connect that went through.
        if self.sensor is not None and self.sensor.net_enforce and not self.sensor.unenforced:
            blockable.add(ViolationType.NETWORK)
        if ViolationType.EXEC in self.evaluator.blockable:
            blockable.add(ViolationType.EXEC)
        if ViolationType.FILE in self.evaluator.blockable and self.files is not None:
            blockable.add(ViolationType.FILE)
        return frozenset(blockable)

    def _start_sensor(self) -> None:
        from attyguard.policy.kernel import PolicySensor
        from attyguard.policy.syscalls import load_syscall_table

        sensor = PolicySensor(self.feed_kernel, load_syscall_table())
        try:
            sensor.start()
            sensor.configure(self.policy)
        except Exception as exc:  # BpfError, typically: this kernel refuses something
            sensor.stop()
            self.backend, self.reason = "fallback", f"policy.bpf.o unavailable: {exc}"
            return
        self.sensor = sensor
        log.info("policy: kernel checks loaded (%s)", ", ".join(sensor.obj.attached))

    def _start_connector(self, loop: Any) -> None:
        try:
            from attyguard.kernel.proc_connector import ProcConnector, ProcConnectorError
        except ImportError as exc:
            log.warning("policy: no proc connector (%s); exec seen by scanning only", exc)
            return
        try:
            self.connector = ProcConnector().open()
        except ProcConnectorError as exc:
            log.warning("policy: %s; exec seen by scanning every %.2fs only (a short-lived "
                        "child can be missed)", exc, self.sample_interval_s)
            return
        loop.add_reader(self.connector.fileno(), self._drain_connector)

    def _drain_connector(self) -> None:
        try:
            events = self.connector.read()
        except OSError as exc:
            log.warning("policy: proc connector failed (%s)", exc)
            return
        for event in events:
            self.feed(event)

    def stop(self) -> None:
        self._stop.set()
        if self.exec_gate is not None and self.exec_gate.policy_decide == self.decide_exec:
            self.exec_gate.policy_decide = None
        if self.connector is not None:
            if self._loop is not None:
                with contextlib.suppress(Exception):
                    self._loop.remove_reader(self.connector.fileno())
            self.connector.close()
            self.connector = None
        if self._thread is not None:
            self._thread.join(2.0)
        self._stop_files()
        if self.supervisor is not None:
            self.supervisor.stop()
            self.supervisor = None
        if self.sensor is not None:
            self.sensor.stop()
            self.sensor = None
        self.dispatcher.stop(0.5)

    # ---- configuration

    def set_mode(self, mode: Mode) -> dict[str, Any]:
        with self._lock:
            previous = self.evaluator.mode
            self.requested_mode = mode
            self.evaluator.mode = self._effective(mode)
            now = self.evaluator.mode
            if self.sensor is not None:
                self.sensor.set_enforce(now is Mode.ENFORCE)
        self._sync_files()
        note = "" if now is mode else f"{self.backend} backend ({self.reason}): audit only"
        log.warning("policy mode %s -> %s%s", previous.value, now.value,
                    f" ({note})" if note else "")
        return {"mode": now.value, "previous": previous.value, "requested": mode.value,
                "note": note}

    def replace_policy(self, policy: Policy) -> None:
        old_dispatcher = self.dispatcher
        with self._lock:
            self.policy = policy
            self.requested_mode = policy.mode
            self.evaluator.replace_policy(policy, self._effective(policy.mode))
            self.dispatcher = self._dispatcher(policy)
            if self.sensor is not None:
                self.sensor.configure(policy)
                self.sensor.set_enforce(self.evaluator.mode is Mode.ENFORCE)
                self.evaluator.blockable = self._kernel_blockable()
                for pid, w in self.evaluator.watched.items():
                    self.sensor.watch(pid, w.entry)
        old_dispatcher.stop(0.1)
        self._sync_files()
        self._scan()

    # ---- events

    def feed_kernel(self, event: SyscallEvent | OpenEvent | ConnectEvent, entry: str) -> None:
        """A record from policy.bpf.o (its poll thread), with the entry the kernel had."""
        if entry and event.pid not in self.evaluator.watched:
            exe = _exe_of(event.pid)
            with self._lock:
                self._adopt(event.pid, entry, exe)
        self.feed(event)

    def feed(self, event: PolicyEvent) -> list[Violation]:
        """One event from any source (any thread). Never raises."""
        try:
            gated = isinstance(event, OpenEvent) and self._gate_takes(event)
            sha = None
            if isinstance(event, ExecEvent) and self.evaluator.needs_sha256(event.filename):
                sha = self._sha256(event.tgid or event.pid, event.filename)
            with self._lock:
                ev = self.evaluator
                if isinstance(event, ExecEvent):
                    out = ev.on_exec(event, sha)
                    self._sync(event.tgid or event.pid)
                elif isinstance(event, ForkEvent):
                    out = ev.on_fork(event)
                    self._sync(event.child_pid)
                elif isinstance(event, ExitEvent):
                    out = ev.on_exit(event)
                    self._procs.pop(event.pid, None)
                elif isinstance(event, SyscallEvent):
                    out = ev.on_syscall(event)
                elif isinstance(event, OpenEvent):
                    # Seen at syscall entry, so never a stop: where the file gate
                    # judges this open, its answer is the one record.
                    out = [] if gated else ev.on_open(event, stoppable=False)
                elif isinstance(event, ConnectEvent):
                    out = ev.on_connect(event)
                else:
                    out = []
                for violation in out:
                    self._record(violation)
            return out
        except Exception:
            self.errors += 1
            log.exception("policy: handling %s failed", type(event).__name__)
            return []

    def decide_exec(self, event: ExecEvent) -> Any:
        """The exec gate's question (the layer's thread, a task waiting in the kernel):
        None (no opinion) or the ExecDecision that refuses this exec. Never raises."""
        from attyguard.kernel.events import ExecDecision

        try:
            pid = event.tgid or event.pid
            if pid not in self.evaluator.watched:
                # A child execs before the daemon heard of its fork: the kernel watched
                # it from the fork (only guarded processes are asked about here).
                entry = self._kernel_entry(pid)
                if not entry:
                    return None  # the fast path: not ours
                with self._lock:
                    self._adopt(pid, entry, _exe_of(pid))
            sha = None
            if self.evaluator.needs_sha256(event.filename):
                sha = self._sha256(event.tgid or event.pid, event.filename)
            with self._lock:
                violation = self.evaluator.exec_denial(event, sha)
                if violation is None:
                    return None
                self._record(violation)
            return ExecDecision(False, f"policy {violation.process}: {violation.detail}",
                                (f"policy.{violation.process}",))
        except Exception:
            self.errors += 1
            log.exception("policy: exec gate decision failed; no opinion")
            return None

    # ---- `policy run` processes (attyguard/policy/launch.py, supervisor.py)

    def launch_refusal(self) -> str | None:
        from attyguard.policy.seccomp import unavailable_reason

        why = unavailable_reason()
        return f"policy run is unavailable here: {why}" if why else None

    def accept_listener(self, sock: socket.socket, pid: int, uid: int, entry: str,
                        program: str) -> str | None:
        """Read the launcher's listener off `sock` (a non-blocking dup of its
        connection) and supervise it; None, or why it was refused (one line).
        Raises BlockingIOError when nothing has arrived yet."""
        from attyguard.policy.seccomp import Listener, is_listener
        from attyguard.policy.supervisor import Launch, Supervisor

        data, ancillary, flags, _ = sock.recvmsg(64, socket.CMSG_SPACE(8 * 4))
        fds: list[int] = []
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                usable = len(payload) - len(payload) % 4
                fds.extend(array.array("i", payload[:usable]))
        keep = -1
        try:
            if not data and not fds:
                return "policy_launch: the connection closed before a descriptor came"
            if len(fds) != 1 or flags & socket.MSG_CTRUNC:
                return f"policy_launch: expected one descriptor, got {len(fds)}"
            fd = fds[0]
            if not is_listener(fd):
                return "policy_launch: the descriptor is not a seccomp listener"
            why = _holder_refusal(pid, fd)
            if why:
                return f"policy_launch: {why}"
            if uid != 0 and self.supervisor is not None \
                    and self.supervisor.live_for(uid) >= self.launches_per_user:
                return (f"policy_launch: uid {uid} already has {self.launches_per_user} "
                        "policy run processes ([policy] launches_per_user)")
            listener = Listener(fd)
            keep = fd
            conn = socket.socket(fileno=os.dup(sock.fileno()))
            conn.setblocking(False)
            with self._lock:
                if self.supervisor is None:
                    self.supervisor = Supervisor(self._decide_launched,
                                                 self._record_launched,
                                                 self._launched_exec)
                supervisor = self.supervisor
            supervisor.add(Launch(entry, pid, uid, program, conn, listener))
            log.info("policy: pid %d (uid %d) runs %s as %s under seccomp", pid, uid,
                     program or "?", entry)
            return None
        finally:
            for fd in fds:
                if fd != keep:
                    os.close(fd)

    def _decide_launched(self, launch: Any, name: str) -> Any:
        """The supervisor's question, answered from two reference reads, no lock."""
        from attyguard.policy.supervisor import Answer

        entry = self.evaluator.policy.entry(launch.entry)
        if entry is None or name not in entry.blocked_syscalls:
            # A reload took it out of the list (the filter itself cannot change).
            return Answer(0, False, name)
        mode = self.requested_mode  # seccomp refuses on any backend, eBPF or not
        return Answer(errno.EPERM if mode is Mode.ENFORCE else 0, True, name, mode.value)

    def _record_launched(self, launch: Any, pid: int, exe: str, name: str, detail: str,
                         answer: Any, when: float) -> None:
        """The supervisor's recorder thread: `pid`/`exe` as read while the call waited."""
        with self._lock:
            w = self.evaluator.watched.get(pid)
            if w is None or not w.launched:
                self.evaluator.watch_launched(pid, launch.entry, exe, launch.pid,
                                              launch.program)
            elif exe:
                w.exe = exe
            violation = self.evaluator.launched_syscall(
                pid, launch.entry, name, detail, when, Mode(answer.mode), bool(answer.error))
            if violation is not None:
                self._record(violation)

    def _launched_exec(self, launch: Any) -> None:
        """The launcher has exec'd the command (or died): watch it as launched."""
        if not os.path.exists(f"/proc/{launch.pid}"):
            return
        with self._lock:
            self.evaluator.watch_launched(launch.pid, launch.entry, _exe_of(launch.pid),
                                          launch.pid, launch.program)
            self._sync(launch.pid)

    # ---- the enforce-mode file gate (attyguard/policy/files.py)

    def _sync_files(self) -> None:
        """A gate with marks for the current policy when enforcing on the kernel
        backend; none otherwise (audit/alert: no permission marks). Never raises."""
        from attyguard.policy.files import FileGate, gate_wanted, plan_marks

        with self._files_lock:
            with self._lock:
                policy = self.evaluator.policy
                want = (self.backend == "kernel" and self.sensor is not None
                        and self.evaluator.mode is Mode.ENFORCE and gate_wanted(policy))
                watched = self.evaluator.watched
                if want:  # before the gate answers, so its records say `blocked`
                    self.evaluator.blockable |= {ViolationType.FILE}
            old, new = self.files, None
            if want:
                try:
                    gate = FileGate(plan_marks(policy), watched, self._judge_open,
                                    self._record_locked, self._judge_late,
                                    deadline_s=self.file_deadline_s,
                                    kernel_watches=self._kernel_reader())
                    gate.start()
                    new = gate
                    log.info("policy: file gate on %d marks (%s)", len(gate.marked),
                             "; ".join(gate.plan.notes) or "every file rule covered")
                except Exception as exc:
                    log.warning("policy: file opens cannot be stopped here (%s); they are "
                                "recorded and sent only", exc)
            with self._lock:
                self.files = new
                if new is None:
                    self.evaluator.blockable -= {ViolationType.FILE}
            if old is not None:
                old.stop()

    def _stop_files(self) -> None:
        with self._files_lock:
            gate, self.files = self.files, None
        if gate is not None:
            gate.stop()

    def _gate_takes(self, event: OpenEvent) -> bool:
        """A tracepoint open report the file gate covers goes to it (one record per
        open: the gate's, or this report's if the gate never judged that open)."""
        gate = self.files
        if gate is None or event.pid not in self.evaluator.watched:
            return False
        key = gate.cover_key(event)
        if key is None:
            return False
        gate.reconcile(key, event, self._judge_unjudged)
        return True

    def _judge_unjudged(self, event: OpenEvent) -> None:
        with self._lock:
            for violation in self.evaluator.on_open(event, stoppable=False):
                self._record(violation)

    def _kernel_reader(self) -> Callable[[int], bool] | None:
        """The file gate's miss path: does policy.bpf.o's `watched` map (tgid -> entry
        index, an array: every key present, 0 = not watched) have this process?
        Read through libbpf directly with reused buffers: it runs for every open of
        a marked file by an unwatched process."""
        sensor = self.sensor
        if sensor is None or sensor.obj is None:
            return None
        import ctypes

        from attyguard.kernel.bpf import libbpf

        try:
            fd = sensor.obj.map_fd("watched")
        except Exception as exc:
            log.warning("policy: the file gate cannot read the kernel's watched map (%s): "
                        "a child's first opens may pass before the daemon knows it", exc)
            return None
        lookup = libbpf().bpf_map_lookup_elem
        key, value = ctypes.c_uint32(), ctypes.c_uint8()
        key_ref, value_ref = ctypes.byref(key), ctypes.byref(value)

        def watches(pid: int) -> bool:
            key.value = pid
            value.value = 0
            return lookup(fd, key_ref, value_ref) == 0 and value.value != 0

        return watches

    def _kernel_entry(self, pid: int) -> str:
        """The entry the kernel has for pid ("" if none): a process it watched first."""
        import ctypes

        sensor = self.sensor
        value = ctypes.c_uint8()
        if sensor is None or sensor.obj is None or not sensor.obj.map_lookup(
                "watched", ctypes.c_uint32(pid), value):
            return ""
        return next((name for name, i in sensor.index.items() if i == value.value), "")

    def _judge_open(self, pid: int, path: str, when: float, deadline: float) -> Violation | None:
        """The file gate's question (its reader thread; the open waits in the kernel).
        Raises TimeoutError when the lock is not free before `deadline`."""
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not self._lock.acquire(timeout=remaining):
            raise TimeoutError
        try:
            if self.evaluator.mode is not Mode.ENFORCE:
                return None
            if pid not in self.evaluator.watched:  # the kernel knew it first: adopt it now
                entry = self._kernel_entry(pid)
                if entry:
                    self._adopt(pid, entry, _exe_of(pid))
            out = self.evaluator.on_open(OpenEvent(when, pid, path), stoppable=True)
            return out[0] if out else None
        finally:
            self._lock.release()

    def _adopt(self, pid: int, entry: str, exe: str) -> None:
        """The kernel's entry for a process userspace has not met (lock held)."""
        from attyguard.policy.kernel import LAUNCHED

        if entry.startswith(LAUNCHED):  # a `policy run` process's child
            self.evaluator.watch_launched(pid, entry[len(LAUNCHED):], exe, pid, "")
        else:
            self.evaluator.adopt(pid, entry, exe)

    def _judge_late(self, pid: int, path: str, when: float) -> None:
        """An open the gate let through unjudged (past its deadline): judged now,
        recorded as what happened (never `blocked`)."""
        with self._lock:
            for violation in self.evaluator.on_open(OpenEvent(when, pid, path),
                                                    stoppable=False):
                self._record(violation)

    def _record_locked(self, violation: Violation) -> None:
        with self._lock:
            self._record(violation)

    def _sync(self, pid: int) -> None:
        """Tell the kernel (and the exec gate) a process userspace now watches (lock held)."""
        w = self.evaluator.watched.get(pid)
        if w is None:
            return
        # A launched process's syscalls go through its seccomp filter: the kernel
        # watches it under the entry's variant without blocked syscalls, and only
        # for file/network rules, so it attaches no tracepoint for its syscalls (the
        # cost every process pays while one is attached).
        if self.sensor is not None:
            try:
                self.sensor.watch(pid, w.entry, launched=w.launched)
            except Exception as exc:
                log.warning("policy: cannot watch pid %d in the kernel: %s", pid, exc)
        if ViolationType.EXEC in self.evaluator.blockable:
            self.exec_gate.guard_for_policy(pid)

    def sample(self, samples: Iterable[tuple[ResourceSample, float]]) -> list[Violation]:
        out: list[Violation] = []
        with self._lock:
            for sample, wall in samples:
                for violation in self.evaluator.on_sample(sample, wall):
                    self._record(violation)
                    out.append(violation)
        return out

    def _record(self, violation: Violation) -> None:
        """The daemon's log first (it survives any sink), then the ring, followers, sinks."""
        record = violation.to_json()
        log.warning("policy violation: %s", json.dumps(record, ensure_ascii=False))
        uid = _uid_of(violation.pid)
        self.records.append((uid, record))
        if self.on_record is not None:
            try:
                self.on_record(record, uid)
            except Exception:
                log.exception("policy: following failed")
        if violation.action is ViolationAction.BLOCKED \
                and violation.type is ViolationType.RESOURCE:
            # Memory/CPU have no kernel gate here: enforce is SIGKILL from the sampler.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(violation.pid, signal.SIGKILL)
        if violation.mode is not Mode.AUDIT:
            self.dispatcher.submit(record)

    def _sha256(self, pid: int, path: str) -> str | None:
        # /proc/PID/exe is the file that was exec'd even if the path was replaced since.
        for candidate in (f"/proc/{pid}/exe", path):
            try:
                with open(candidate, "rb") as f:
                    st = os.fstat(f.fileno())
                    key = (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)
                    cached = self._hashes.get(key)
                    if cached is not None:
                        return cached
                    digest = hashlib.file_digest(f, "sha256").hexdigest()
            except OSError:
                continue
            if len(self._hashes) >= _HASH_CACHE:
                self._hashes.pop(next(iter(self._hashes)))
            self._hashes[key] = digest
            return digest
        return None

    # ---- the sampler (fallback exec discovery, memory, CPU)

    def _sample_loop(self) -> None:
        last_scan = time.monotonic()
        while not self._stop.wait(self.sample_interval_s):
            try:
                rescan = _RESCAN_WITH_CONNECTOR_S if self.connector is not None else 0.0
                if time.monotonic() - last_scan >= rescan:
                    self._scan()
                    last_scan = time.monotonic()
                self._sample_watched()
            except Exception:
                self.errors += 1
                log.exception("policy: sampling failed")

    def _scan(self) -> None:
        """Find matched processes and watched processes' children the events missed."""
        with self._lock:
            watched = dict(self.evaluator.watched)
            policy = self.evaluator.policy
        found: list[ExecEvent] = []
        exits: list[int] = [pid for pid in watched if not psutil.pid_exists(pid)]
        children: dict[int, list[tuple[int, str, int]]] = {}
        for proc in psutil.process_iter(["pid", "ppid", "exe", "uids"]):
            info = proc.info
            exe = info.get("exe") or ""
            pid, ppid = int(info["pid"]), int(info.get("ppid") or 0)
            uid = info["uids"].real if info.get("uids") else -1
            if not exe:
                continue
            w = watched.get(pid)
            if w is not None:
                if w.exe != exe:  # exec'd since we last looked
                    found.append(_exec_event(pid, ppid, uid, exe))
                continue
            if any(p.exe.matches(exe) for p in policy.processes):
                found.append(_exec_event(pid, ppid, uid, exe))
            else:
                children.setdefault(ppid, []).append((pid, exe, uid))
        for pid in exits:
            self.feed(ExitEvent(time.time(), pid))
        for event in found:
            self.feed(event)
        # Descendants of watched processes, parents before children.
        frontier = [pid for pid in self.evaluator.watched]
        while frontier:
            parent = frontier.pop()
            for pid, exe, uid in children.pop(parent, []):
                self.feed(_exec_event(pid, parent, uid, exe))
                frontier.append(pid)

    def _sample_watched(self) -> None:
        with self._lock:
            pids = [pid for pid, w in self.evaluator.watched.items()
                    if (e := self.evaluator.policy.entry(w.entry)) is not None
                    and (e.max_memory_mb or e.max_cpu_percent)]
        samples = []
        for pid in pids:
            proc = self._procs.get(pid)
            try:
                if proc is None:
                    proc = self._procs[pid] = psutil.Process(pid)
                with proc.oneshot():
                    rss = proc.memory_info().rss
                    cpu = proc.cpu_times()
                samples.append((ResourceSample(time.monotonic(), pid, rss,
                                               cpu.user + cpu.system), time.time()))
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                self._procs.pop(pid, None)
        if samples:
            self.sample(samples)

    # ---- reports

    def status(self, privileged: bool) -> dict[str, Any]:
        with self._lock:
            ev = self.evaluator
            by_entry: dict[str, list[int]] = {p.name: [] for p in ev.policy.processes}
            for pid, w in ev.watched.items():
                by_entry.setdefault(w.entry, []).append(pid)
            processes = []
            for proc in ev.policy.processes:
                pids = sorted(by_entry.get(proc.name, []))
                item: dict[str, Any] = {"name": proc.name, "exe": proc.exe.pattern,
                                        "watched": len(pids), "watches": proc.watches()}
                if privileged:
                    item["pids"] = pids
                processes.append(item)
            stats = ev.stats.to_json()
            mode = ev.mode.value
        blockable = sorted(t.value for t in self.evaluator.blockable)
        return {
            "loaded": True, "file": self.policy.path, "version": self.policy.version,
            "mode": mode, "requested_mode": self.requested_mode.value,
            "backend": self.backend, "reason": self.reason,
            "sees": list(FALLBACK_SEES) if self.backend == "fallback"
            else [*FALLBACK_SEES, "file", "syscall", "network"],
            "blind": list(FALLBACK_BLIND) if self.backend == "fallback" else [],
            "blockable": blockable,
            "exec_source": "proc connector" if self.connector is not None else "scan",
            "kernel": self.sensor.counters() if self.sensor is not None else None,
            "file_gate": self.files.status() if self.files is not None else None,
            "seccomp": self.supervisor.status() if self.supervisor is not None else None,
            "processes": processes, "stats": stats, "sinks": self.dispatcher.status(),
            "errors": self.errors, "started": round(self.started, 3),
        }

    def violations(self, uid: int | None, limit: int = 1000) -> list[dict[str, Any]]:
        """The kept records, oldest first; `uid` None: all, else that user's processes'."""
        items = [r for owner, r in list(self.records) if uid is None or owner == uid]
        return items[-limit:] if limit else []


def _exec_event(pid: int, ppid: int, uid: int, exe: str) -> ExecEvent:
    return ExecEvent(time=time.time(), pid=pid, tgid=pid, ppid=ppid, uid=max(uid, 0),
                     filename=exe, argv=())


def _exe_of(pid: int) -> str:
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return ""


def _holder_refusal(pid: int, fd: int) -> str | None:
    """None when process `pid` (the peer, by SO_PEERCRED) runs under a seccomp filter
    and holds this very listener (kcmp); else why not."""
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            status = f.read()
    except OSError:
        return f"pid {pid} is gone"
    if b"\nSeccomp:\t2" not in status:
        return f"pid {pid} runs under no seccomp filter"
    libc = ctypes.CDLL(None, use_errno=True)
    me = os.getpid()
    try:
        names = os.listdir(f"/proc/{pid}/fd")
    except OSError as exc:
        return f"cannot see pid {pid}'s descriptors ({exc.strerror})"
    for name in names:
        try:
            if os.readlink(f"/proc/{pid}/fd/{name}") != LISTENER_LINK:
                continue
        except OSError:
            continue
        if libc.syscall(_SYS_KCMP, me, pid, _KCMP_FILE, fd, int(name)) == 0:
            return None
    return f"pid {pid} does not hold the listener it sent"


def _uid_of(pid: int) -> int:
    try:
        return os.stat(f"/proc/{pid}").st_uid
    except OSError:
        return -1  # gone: only root and the daemon's user see it
