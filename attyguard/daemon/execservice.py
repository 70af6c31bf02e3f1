"""The daemon's exec guard at run time: sensors in, judgements out (issue 10, parts 3-5).

`ExecService` owns the moving parts around the pure judge
(`attyguard.daemon.execguard`): the event source (the kernel layer's ladder
when `attyguard.kernel.layer` is installed and usable, else the netlink proc
connector: rung 4, audit only), the guarded trees registered by shells, the
trust windows, the recent-decisions ring behind `attyguard events`, the
counters behind `attyguard daemon status`, and what a judgement does:

- enforce on a permission rung (fanotify; lsm through its maps): the exec
  fails with EPERM, the owning shell gets one `refused` event (its next prompt
  shows `REFUSED — <program>: <reason>`) and its PID is marked Critical;
- enforce on the signal rung: the kernel layer kills the task (after the fact);
- warn mode, or a rung that cannot deny (audit): a would-be block becomes a
  `warn` event to the owning shell (its `⚠ N`), nothing is denied;
- a rule whose action is `warn`: a `warn` event in every mode.

A permission rung calls `decide()` from the layer's own thread while a task
waits in the kernel: it must answer fast and never raise. Everything that
touches the daemon's connections or threat map is handed to the asyncio loop
with `call_soon_threadsafe`.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import inspect
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from attyguard.daemon import protocol
from attyguard.daemon.execguard import (
    NO_RECORD_RULE,
    TREE_CRITICAL_RULE,
    ExecFacts,
    ExecJudgement,
    ExecRule,
    GuardedTrees,
    TrustWindows,
    gather,
    judge,
    load_exec_rules,
)
from attyguard.daemon.threats import ThreatLevel, ThreatMap
from attyguard.engine.verdict import Action, Verdict
from attyguard.kernel.events import (
    ALLOW,
    AlgSocketEvent,
    ConnectEvent,
    ExecDecision,
    ExecEvent,
    ExitEvent,
    FdKind,
    ForkEvent,
    KernelEvent,
    Rung,
)

__all__ = ["EBPF_MODES", "ExecService"]

log = logging.getLogger("attyguard.daemon")

EBPF_MODES = ("off", "warn", "enforce")
_WRITERS_KEPT = 4096  # pipe inode -> program names of recent writers (fd 1 of an exec)


class ExecService:
    def __init__(
        self,
        *,
        mode: str,
        scope: str,
        group: str,
        deadline_ms: int,
        engine: Callable[[str], Verdict],
        threats: ThreatMap,
        send_to_pid: Callable[[int, bytes], int],
        send_to_followers: Callable[[dict[str, Any], int], None],
        trust_window_s: float = 600.0,
        kept: int = 1000,
        rules: tuple[ExecRule, ...] | None = None,
        force_rung: str = "",
    ) -> None:
        self.mode = mode
        self.force_rung = Rung(force_rung) if force_rung else None
        self.deadline_ms = deadline_ms
        self.engine = engine
        self.threats = threats
        self.send_to_pid = send_to_pid
        self.send_to_followers = send_to_followers
        self.rules = load_exec_rules() if rules is None else rules
        self._max_age_s = _max_age(self.rules)
        # A Critical mark (anyone's: the server's verdicts, an operator, ours)
        # voids every cached allow; see `_cacheable`.
        threats.on_critical = self._on_critical
        self.trees = GuardedTrees(threats.table, scope=scope, group=group)
        self.windows = TrustWindows(max_s=trust_window_s)
        self.recent: deque[dict[str, Any]] = deque(maxlen=kept)
        self.counters = {"seen": 0, "judged": 0, "denied": 0, "would_deny": 0, "warned": 0,
                         "dropped": 0, "errors": 0, "unreadable": 0, "no_record": 0}
        self.rung: Rung | None = None
        self.probe_report: dict[str, Any] | None = None
        self.layer: Any = None
        self.connector: Any = None
        self._writers: dict[int, tuple[str, ...]] = {}
        # Trees refused by `decide` whose Critical mark the event loop has not
        # made yet (root -> the REFUSED text). The threat map belongs to the
        # loop; until it runs `_refused`, every exec of the tree is judged as of
        # a locked tree from here. Without this, a retry of the same exec (a
        # program searching PATH: /usr/bin/bash, then /bin/bash) that came
        # before a loaded loop marked the tree was judged afresh and refused
        # with a second red line.
        self._locking: dict[int, str] = {}
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        # SEC-002 (attyguard/policy): asked first on a permission rung for the
        # processes it watches; None = no opinion. Set by the daemon.
        self.policy_decide: Callable[[ExecEvent], ExecDecision | None] | None = None

    # ---- life cycle

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start the strongest sensor that works here; never raises (logs why not)."""
        self._loop = loop
        if self.mode == "off":
            return
        kernel_layer: Any = None
        with contextlib.suppress(ImportError):
            # By name: the sensor package is built on its own branch and may be absent.
            kernel_layer = importlib.import_module("attyguard.kernel.layer")
        if kernel_layer is not None:
            try:
                probe = kernel_layer.probe(self.force_rung)
                self.probe_report = _probe_json(probe)
                for rung in getattr(probe, "rungs", ()):
                    log.info("exec guard: probe: %s %s (%s)", rung.name.value,
                             "available" if rung.available else "unavailable", rung.reason)
                # Rung 4 (audit) is the netlink proc connector, ours: the layer
                # runs the three rungs above it (forcing "audit" selects rung 4).
                if probe.in_use is not None and Rung(probe.in_use) is not Rung.AUDIT:
                    extra: dict[str, Any] = {}
                    if "on_deny" in inspect.signature(kernel_layer.KernelLayer).parameters:
                        extra["on_deny"] = self.on_deny
                    self.layer = kernel_layer.KernelLayer(
                        probe, decide=self.decide, on_event=self.on_event,
                        deadline_ms=self.deadline_ms, mode=self.mode,
                        trace_all=self.trees.scope != "sessions", **extra)
                    self.layer.start()
                    self.rung = Rung(probe.in_use)
                    for root in self.trees.roots():
                        self.layer.guard_tree(root["pid"])
                    log.info("exec guard: rung %s in use, mode %s, scope %s", self.rung.value,
                             self.mode, self.trees.scope)
                    return
            except Exception as exc:  # a broken sensor must not keep the daemon down
                log.warning("exec guard: kernel layer unavailable (%s); trying the proc "
                            "connector (audit only)", exc)
                self._stop_layer()
        self._start_connector(loop)

    def _start_connector(self, loop: asyncio.AbstractEventLoop) -> None:
        from attyguard.kernel.proc_connector import ProcConnector, ProcConnectorError

        try:
            self.connector = ProcConnector().open()
        except ProcConnectorError as exc:
            log.warning("exec guard: no sensor usable (%s); exec guard off", exc)
            self.rung = None
            return
        loop.add_reader(self.connector.fileno(), self._drain_connector)
        self.rung = Rung.AUDIT
        log.info("exec guard: rung audit in use (proc connector: events only, nothing can "
                 "be denied), mode %s, scope %s", self.mode, self.trees.scope)

    def _drain_connector(self) -> None:
        try:
            events = self.connector.read()
        except OSError as exc:
            log.warning("exec guard: proc connector failed (%s)", exc)
            return
        self.counters["dropped"] = self.connector.overruns
        for event in events:
            self.on_event(event)

    def stop(self) -> None:
        self._stop_layer()
        if self.connector is not None:
            if self._loop is not None:
                with contextlib.suppress(Exception):
                    self._loop.remove_reader(self.connector.fileno())
            self.connector.close()
            self.connector = None

    def _stop_layer(self) -> None:
        if self.layer is not None:
            with contextlib.suppress(Exception):
                self.layer.stop()
            self.layer = None

    # ---- SEC-002: the runtime policy's processes at the exec gate

    def can_deny_exec(self) -> bool:
        """True when an exec can be refused before it runs (EPERM on a permission rung)."""
        return self.layer is not None and self.mode == "enforce" \
            and self.rung in (Rung.FANOTIFY, Rung.LSM)

    def guard_for_policy(self, pid: int) -> None:
        """Put a process the policy watches in the layer's scope (its execs reach decide)."""
        if self.layer is not None:
            with contextlib.suppress(Exception):
                self.layer.guard_tree(pid)

    # ---- shells

    def register(self, pid: int) -> bool:
        ok = self.trees.register(pid)
        if ok and self.layer is not None:
            with contextlib.suppress(Exception):
                self.layer.guard_tree(pid)
        return ok

    def trusted(self, root: int, line: str) -> None:
        self.windows.open(root, line)

    def next_line(self, root: int) -> None:
        """The shell asked about its next line: its trusted line (if any) has finished."""
        if self.windows.active(root) is not None:
            self.windows.close(root)
            self.clear_verdict_cache()  # (nothing was cached in it; cheap, and plainly safe)
        else:
            self.windows.close(root)

    def reload(self) -> None:
        """Rules or feeds were reloaded: exec rules read again, cached allows forgotten."""
        self._max_age_s = _max_age(self.rules)
        self.clear_verdict_cache()

    # ---- events

    def on_event(self, event: KernelEvent) -> None:
        """Every event a sensor reports (any thread). Permission rungs judge in `decide`."""
        try:
            if isinstance(event, ForkEvent):
                self.trees.forked(event.parent_pid, event.child_pid)
            elif isinstance(event, ExitEvent):
                root = self.trees.exited(event.pid)
                if root is not None:
                    # The tree stays guarded while its members live (orphans do
                    # not escape): no unguard_tree here.
                    self.windows.close(root)
            elif isinstance(event, ExecEvent):
                self._remember_writer(event)
                if self.layer is None:
                    # Our own proc connector: after the fact. (The kernel layer
                    # asks `decide` itself, on a permission event or after the exec.)
                    self._judge_after(event)
            elif isinstance(event, AlgSocketEvent):
                self._alg_socket(event)
            elif isinstance(event, ConnectEvent):
                self._connect(event)
        except Exception:
            self.counters["errors"] += 1
            log.exception("exec guard: handling %s failed", type(event).__name__)

    def decide(self, event: ExecEvent) -> ExecDecision:
        """The kernel layer's question (its threads): allow or deny this exec.

        On fanotify (and lsm, which judges through fanotify) the task waits
        for the answer: a deny is an EPERM. On the signal rung the layer kills
        a denied task (after the fact); on audit nothing can be denied.
        """
        try:
            if event.no_record:
                found = self._late_record(event)
                if found is None:
                    return self._no_record(event)
                event = found
            if self.policy_decide is not None:
                verdict = self.policy_decide(event)
                if verdict is not None and not verdict.allow:
                    return verdict
            judgement, root, facts = self._judge(event)
            if judgement is None:
                return ALLOW
            if self._cacheable(judgement, root, facts):
                self._act(event, facts, judgement, root, denied=False)
                return _CACHEABLE_ALLOW
            if judgement.action is Action.BLOCK and self.mode == "enforce":
                enforced = self.rung in (Rung.FANOTIFY, Rung.LSM, Rung.SIGNAL)
                self._act(event, facts, judgement, root, denied=enforced)
                return ExecDecision(False, judgement.reason, judgement.rules)
            self._act(event, facts, judgement, root, denied=False)
            return ALLOW
        except Exception:
            self.counters["errors"] += 1
            log.exception("exec guard: judging pid %d failed; allowed", event.pid)
            return ALLOW

    def _cacheable(self, judgement: ExecJudgement, root: int | None,
                   facts: ExecFacts | None) -> bool:
        """May rung 2's C loop answer repeats of this exec from its verdict cache?

        Its key is the exec's record (program, argv, uid, kinds of fds 0-2) and
        the program file's identity; so only an allow that read nothing else:
        no rule, no Critical mark anywhere (the key holds no tree, and a tree
        marked later must not find an allow cached before), no trust window, no
        script text, stdin not a pipe (its writers are judged), and the file
        older than every age rule. (SEC-002's per-process policy is asked first
        and keyed by process: nothing is cached while it is on.)
        """
        if (facts is None or judgement.action is not Action.ALLOW or judgement.rules
                or self.policy_decide is not None or facts.script_text is not None
                or facts.fds is None or facts.fds[0].kind is FdKind.PIPE
                or facts.exe_age_s is None or facts.exe_age_s <= self._max_age_s
                or facts.argv_truncated or facts.exe_unnamed
                or self.windows.active(root) is not None):
            return False
        return not any(e.level is ThreatLevel.CRITICAL for e in self._threat_entries())

    def _threat_entries(self) -> list[Any]:
        # the threat map belongs to the event loop: a concurrent mark may change it
        for _ in range(2):
            try:
                return self.threats.entries()
            except RuntimeError:
                continue
        return [object()]  # unknown: treated as "may hold a Critical mark" by the caller

    def clear_verdict_cache(self) -> None:
        """What a cached allow stood on changed (a Critical mark, rules, trust)."""
        layer = self.layer
        clear = getattr(layer, "clear_verdict_cache", None)
        if clear is not None:
            clear()

    def _on_critical(self, pid: int) -> None:
        self.clear_verdict_cache()

    def _late_record(self, event: ExecEvent) -> ExecEvent | None:
        """The execve record the permission event came without, if it arrives in time.

        At most 40% of the permission deadline: the rest is for judging it. Only
        where the exec is held until answered (enforce on a permission rung): a
        task that went on could exec again, and its next record would be taken
        for this one.
        """
        wait = getattr(self.layer, "wait_record", None)
        if wait is None or self.mode != "enforce" or self.rung not in (Rung.FANOTIFY, Rung.LSM):
            return None
        record: ExecEvent | None = wait(event.tgid, self.deadline_ms * 0.4 / 1000)
        if record is None:
            return None
        return replace(record, filename=event.filename or record.filename, rung=event.rung)

    def _no_record(self, event: ExecEvent) -> ExecDecision:
        """A guarded exec whose argv never came (the record was dropped or is later
        than the wait): only its path is known.

        enforce refuses it: judging the path alone would let `bash script.sh`
        through unread, and an attacker who can fill the ring buffer could
        choose that. The shell is told (one REFUSED line) but its tree is not
        locked: a lost record is not the user's doing. warn judges the path
        alone, as before, and the record says so.
        """
        judge_it, root = self.trees.in_scope(event.tgid, event.ppid, event.uid)
        if not judge_it:
            return ALLOW
        self.counters["no_record"] += 1
        if self.mode != "enforce" or self.rung not in (Rung.FANOTIFY, Rung.LSM):
            judgement, root, facts = self._judge(event)
            if judgement is not None:
                self._act(event, facts, judgement, root, denied=False)
            return ALLOW
        judgement = ExecJudgement(
            Action.BLOCK, "the exec's record (its argv) was lost; refused unjudged",
            (NO_RECORD_RULE,))
        self._act(event, None, judgement, root, denied=True, lock=False)
        return ExecDecision(False, judgement.reason, judgement.rules)

    def on_deny(self, notice: Any) -> None:
        """An exec the layer refused by itself (maps, deadline, kernel kill): record it.

        The shell is told (one red line) unless its tree was locked already:
        then it has said REFUSED once.
        """
        try:
            pid = int(notice.pid)
            ppid, uid = _ppid_uid(pid)
            root = self.trees.owner(pid, ppid)
            reason = f"refused by the kernel layer: {notice.reason}"
            rule = "kernel." + str(notice.reason).split(" ")[0]
            event = ExecEvent(time.time(), pid, pid, ppid, uid, str(notice.filename), (),
                              rung=Rung(notice.rung))
            judgement = ExecJudgement(Action.BLOCK, reason,
                                      (TREE_CRITICAL_RULE,) if "critical" in reason else (rule,))
            self._act(event, None, judgement, root, denied=True)
        except Exception:
            self.counters["errors"] += 1
            log.exception("exec guard: a deny notice failed")

    def _judge_after(self, event: ExecEvent) -> None:
        """An exec the proc connector reported (rung 4): it runs already; record only."""
        judgement, root, facts = self._judge(event)
        if judgement is not None:
            self._act(event, facts, judgement, root, denied=False)

    def _judge(self, event: ExecEvent) -> tuple[ExecJudgement | None, int | None, ExecFacts | None]:
        self.counters["seen"] += 1
        if event.tgid == os.getpid():
            return None, None, None
        judge_it, root = self.trees.in_scope(event.tgid, event.ppid, event.uid)
        if not judge_it:
            return None, root, None  # the fast path: out of scope, nothing read
        self.counters["judged"] += 1
        if event.rung is Rung.AUDIT and not event.argv and not event.filename:
            # Rung 4 reads /proc after the exec: this process was gone already.
            self.counters["unreadable"] += 1
            return ExecJudgement(Action.ALLOW, "exited before /proc could be read"), root, None
        tree = self.trees.tree(root) if root is not None else None
        with self._lock:
            writers = dict(self._writers)
        facts = gather(event, tree_since=tree.since if tree else None,
                       tree_uid=tree.uid if tree else None, known_writers=writers)
        level, entry = self._level_of(event.tgid)
        critical = (entry.reason or "marked") if level is ThreatLevel.CRITICAL and entry \
            else None
        if critical is None and root is not None:
            with self._lock:
                critical = self._locking.get(root)
        # Half the permission deadline for a large script's line-by-line pass:
        # the rest is for reading it and everything else.
        judgement = judge(facts, critical=critical, engine=self.engine, rules=self.rules,
                          budget_s=self.deadline_ms / 2000)
        if judgement.action is not Action.ALLOW and critical is None:
            trusted = self.windows.active(root)
            if trusted is not None:
                judgement = ExecJudgement(Action.ALLOW, f"trusted line: {trusted[:80]}",
                                          judgement.rules)
        return judgement, root, facts

    def _level_of(self, pid: int) -> tuple[ThreatLevel, Any]:
        # ThreatMap belongs to the event loop; the layer's threads only read it,
        # but a concurrent prune/mark can change a dict under the walk: retry once.
        for _ in range(2):
            try:
                return self.threats.level_of(pid)
            except (KeyError, RuntimeError):
                continue
        return self.threats.level_of(pid)

    def _remember_writer(self, event: ExecEvent) -> None:
        # `curl … | bash` on two lines: curl's exec shows fd 1 = the pipe that
        # bash's exec shows as fd 0 (whichever comes first; the /proc scan in
        # execguard.pipe_writers covers the other order).
        fds = event.fds
        if fds is None or fds[1].kind is not FdKind.PIPE or not fds[1].inode:
            return
        name = os.path.basename(event.argv[0] if event.argv else event.filename)
        with self._lock:
            self._writers[fds[1].inode] = (name, os.path.basename(event.filename))
            while len(self._writers) > _WRITERS_KEPT:
                del self._writers[next(iter(self._writers))]

    def _alg_socket(self, event: AlgSocketEvent) -> None:
        judge_it, root = self.trees.in_scope(event.pid, 0, event.uid)
        if not judge_it:
            return
        facts = ExecFacts(program=_exe_of(event.pid), argv=(), event="alg_socket")
        judgement = judge(facts, critical=None, engine=self.engine, rules=self.rules)
        if judgement.action is not Action.ALLOW:
            fake = ExecEvent(event.time, event.pid, event.pid, 0, event.uid, facts.program, ())
            self._act(fake, facts, judgement, root, denied=False, kind="alg_socket")

    def _connect(self, event: ConnectEvent) -> None:
        judge_it, root = self.trees.in_scope(event.pid, 0, event.uid)
        if judge_it:
            self._record({"kind": "connect", "time": round(event.time, 3), "pid": event.pid,
                          "ppid": 0, "uid": event.uid, "program": _exe_of(event.pid),
                          "argv": [], "rules": [], "action": "allow",
                          "rung": self.rung.value if self.rung else None,
                          "address": event.address, "port": event.port, "shell": root})

    def _act(self, event: ExecEvent, facts: ExecFacts | None, judgement: ExecJudgement,
             root: int | None, *, denied: bool, kind: str = "exec", lock: bool = True) -> None:
        program = os.path.basename(event.filename) or (event.argv[0] if event.argv else "?")
        blocked = judgement.action is Action.BLOCK
        action = "block" if denied else ("warn" if judgement.action is not Action.ALLOW
                                         else "allow")
        if denied:
            self.counters["denied"] += 1
        elif blocked:
            self.counters["would_deny"] += 1
        elif judgement.action is Action.WARN:
            self.counters["warned"] += 1
        record = {"kind": kind, "time": round(event.time, 3), "pid": event.tgid,
                  "ppid": event.ppid, "uid": event.uid, "program": event.filename,
                  "argv": list(event.argv[:64]), "argv_truncated": event.argv_truncated,
                  "rules": list(judgement.rules), "action": action,
                  "reason": judgement.reason,
                  "rung": (event.rung.value if event.rung else None), "shell": root}
        if event.no_record:
            record["no_record"] = True
        self._record(record)
        if action == "allow":
            return
        if denied:
            log.warning("exec refused: pid %d %s: %s", event.tgid, program, judgement.reason)
        else:
            log.warning("exec %s: pid %d %s: %s", "would be refused" if blocked else "warning",
                        event.tgid, program, judgement.reason)
        if root is None:
            return
        if denied and judgement.rules == (TREE_CRITICAL_RULE,):
            # The tree is locked already and its shell has said so once (a retry
            # along PATH, a loop): one red line, not one per attempt.
            return
        if denied and not lock:
            text = f"REFUSED — {program}: {judgement.reason}"
            self._on_loop(self._tell_refused, root, text, judgement)
            return
        if denied:
            text = f"REFUSED — {program}: {judgement.reason}"
            with self._lock:
                # before `decide` answers: the exec's retry must find the tree locked
                self._locking[root] = text[:200]
            self._on_loop(self._refused, root, text, judgement)
        else:
            what = "would be refused" if blocked else "warning"
            shown = " ".join(event.argv)[:160] if event.argv else event.filename
            text = f"exec {what} — {program}: {judgement.reason} — {shown}"
            self._on_loop(self._warn, root, text, judgement, event)

    def _tell_refused(self, root: int, text: str, judgement: ExecJudgement) -> None:
        """The red line without locking the tree (a refusal that is not the user's doing)."""
        self.send_to_pid(root, protocol.encode_event(
            "refused", text=text, reason=judgement.reason, rules=list(judgement.rules),
            time=round(time.time(), 3)))

    def _refused(self, root: int, text: str, judgement: ExecJudgement) -> None:
        self.threats.mark(root, ThreatLevel.CRITICAL, text[:200])
        with self._lock:
            self._locking.pop(root, None)  # the threat map says it from now on
        if self.layer is not None and self.rung in (Rung.LSM, Rung.SIGNAL):
            # These rungs deny from kernel maps without asking `decide`: put the
            # tree there. (fanotify asks, and reads the threat map itself, so
            # an operator's `clear` lifts the lock there at once.)
            with contextlib.suppress(Exception):
                self.layer.deny_tree(root)
        self.send_to_pid(root, protocol.encode_event(
            "refused", text=text, reason=judgement.reason, rules=list(judgement.rules),
            time=round(time.time(), 3)))

    def _warn(self, root: int, text: str, judgement: ExecJudgement, event: ExecEvent) -> None:
        self.send_to_pid(root, protocol.encode_event(
            "warn", text=text, pid=event.tgid, uid=event.uid, reason=judgement.reason,
            rules=list(judgement.rules), source="exec", time=round(time.time(), 3)))

    def _record(self, record: dict[str, Any]) -> None:
        with self._lock:
            self.recent.append(record)
        self._on_loop(self.send_to_followers, record, int(record.get("uid", -1)))

    def _on_loop(self, fn: Callable[..., None], *args: Any) -> None:
        loop = self._loop
        if loop is None:
            fn(*args)
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            fn(*args)
        else:
            with contextlib.suppress(RuntimeError):  # the loop has closed: shutting down
                loop.call_soon_threadsafe(fn, *args)

    # ---- interfaces

    def events(self, limit: int, uid: int | None) -> list[dict[str, Any]]:
        with self._lock:
            items = list(self.recent)
        if uid is not None:
            items = [r for r in items if r.get("uid") == uid]
        return items[-limit:] if limit > 0 else []

    def status(self) -> dict[str, Any]:
        counters = dict(self.counters)
        layer_status: dict[str, Any] = {}
        if self.layer is not None:
            with contextlib.suppress(Exception):
                layer_status = dict(self.layer.status())
                counters["dropped"] = max(counters["dropped"],
                                          int(layer_status.get("events_dropped", 0) or 0))
                counters["deadline_misses"] = int(layer_status.get("deadline_misses", 0) or 0)
        if self.connector is not None:
            counters["dropped"] = self.connector.overruns
        return {
            "mode": self.mode,
            "rung": self.rung.value if self.rung is not None else None,
            "scope": self.trees.scope,
            "deadline_ms": self.deadline_ms,
            "counters": counters,
            "guarded_trees": self.trees.roots(),
            "rules": len(self.rules),
            "layer": layer_status or None,
            "probe": self.probe_report,
        }


_CACHEABLE_ALLOW = ExecDecision(True, "", (), cacheable=True)


def _max_age(rules: tuple[ExecRule, ...]) -> float:
    """The longest `exe_age_max_s` of the exec rules. A file younger than that is judged
    on each exec (its age and who wrote it are what those rules read, and neither is
    in the cache key); an older one has left every age rule for good (until it is
    written again, which changes its ctime, hence its key)."""
    return max((r.when.exe_age_max_s for r in rules if r.when.exe_age_max_s is not None),
               default=0.0)


def _ppid_uid(pid: int) -> tuple[int, int]:
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            fields = {k: v.split() for k, _, v in (line.partition(b":") for line in f)}
        return int(fields[b"PPid"][0]), int(fields[b"Uid"][0])
    except (OSError, KeyError, IndexError, ValueError):
        return 0, -1


def _exe_of(pid: int) -> str:
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return ""


def _probe_json(probe: Any) -> dict[str, Any]:
    to_json = getattr(probe, "to_json", None)
    if callable(to_json):
        with contextlib.suppress(Exception):
            return dict(to_json())
    rungs = []
    for rung in getattr(probe, "rungs", ()) or ():
        rungs.append({"name": str(getattr(rung, "name", rung)),
                      "available": bool(getattr(rung, "available", False)),
                      "reason": str(getattr(rung, "reason", ""))})
    in_use = getattr(probe, "in_use", None)
    return {"rungs": rungs, "in_use": str(in_use.value if isinstance(in_use, Rung) else in_use)}
