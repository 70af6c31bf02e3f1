"""`attyguard daemon`: the asyncio sidecar behind the Unix socket (seed V2-A/C/D/J).

It owns the socket (safe creation, peer checks by SO_PEERCRED), the framing of
newline-delimited JSON with hard limits, the dispatch of protocol ops, the
PID threat map's upkeep, Tier-2 loading, warn-mode events, SIGHUP reloads and
systemd readiness notification. Decisions themselves are made by pure code:
the Tier-1 engine (`attyguard.engine.classify`), the Tier-2 plugin and
`accumulator.accumulate`; message shapes live in `protocol`.

Hostile or broken clients are the normal case for a root daemon on a shared
socket: every connection is bounded (request size, idle time, write buffer)
and a full connection table closes its longest-idle connection instead of
refusing newcomers, so a flood of idle sockets cannot lock out the shells.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import concurrent.futures
import contextlib
import grp
import logging
import os
import signal
import socket
import stat
import struct
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from attyguard.daemon import protocol
from attyguard.daemon.accumulator import accumulate
from attyguard.daemon.config import (
    DEFAULT_CONFIG_PATH,
    DEFAULT_DAEMON_CONFIG_TEXT,
    MODES,
    TIER2_NAMES,
    DaemonConfig,
    load_daemon_config,
)
from attyguard.daemon.protocol import ErrorCode, ProtocolError, Request
from attyguard.daemon.threats import ProcessTable, ProcfsProcessTable, ThreatLevel, ThreatMap
from attyguard.daemon.window import Entry, SequenceError, Window, load_sequences
from attyguard.engine.verdict import Action, Severity, Verdict, combine_probabilities
from attyguard.textsafe import safe_text

if TYPE_CHECKING:
    from attyguard.audit import AuditLog
    from attyguard.fleet.sink import FleetSink

__all__ = [
    "DaemonServer",
    "DaemonStartError",
    "Peer",
    "SystemdNotifier",
    "bind_socket",
    "load_tier2_plugin",
    "main",
    "peer_credentials",
]

log = logging.getLogger("attyguard.daemon")

_SO_PEERGROUPS = getattr(socket, "SO_PEERGROUPS", 59)  # Linux >= 4.13; Python lacks the name
_EVENT_BUFFER_LIMIT = 1 << 20  # a subscriber this far behind loses events, not the daemon memory
_PRUNE_SLICE = 128  # threat-map entries checked between two turns of the event loop


class DaemonStartError(Exception):
    """The daemon cannot start (socket in use, not a socket, no permission…)."""


# --------------------------------------------------------------------------- peers


@dataclass(frozen=True, slots=True)
class Peer:
    """Who is on the other end, as the kernel says (SO_PEERCRED), never as the request says."""

    pid: int
    uid: int
    gid: int
    groups: tuple[int, ...] = ()


def peer_credentials(sock: Any) -> Peer:
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, gid = struct.unpack("3i", raw)
    groups: tuple[int, ...] = ()
    # Supplementary groups at connect time (so `newgrp atty` and a fresh login
    # both count, and a group removed from /etc/group since does not).
    for count in (256, 65536):
        try:
            raw = sock.getsockopt(socket.SOL_SOCKET, _SO_PEERGROUPS, 4 * count)
        except OSError:
            continue
        groups = struct.unpack(f"{len(raw) // 4}I", raw[: len(raw) // 4 * 4])
        break
    return Peer(pid, uid, gid, groups)


def refusal(peer: Peer, daemon_uid: int, group_gid: int | None, group_name: str) -> str | None:
    """None if `peer` may use the daemon, else why not (independent of file modes)."""
    if peer.uid in (0, daemon_uid):
        return None
    if group_gid is not None and (peer.gid == group_gid or group_gid in peer.groups):
        return None
    if group_gid is None:
        return f"uid {peer.uid} may not use this daemon (group {group_name!r} does not exist)"
    return f"uid {peer.uid} is not a member of group {group_name!r}"


# --------------------------------------------------------------------------- socket


def _group_gid(name: str) -> int | None:
    if not name:
        return None
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        return None


def bind_socket(path: str, group_gid: int | None, backlog: int = 512) -> socket.socket:
    """Create the listening socket at `path`, 0660 (group `group_gid`) or 0600.

    A stale socket left by a dead daemon is replaced; a live one is not stolen
    and anything that is not a socket is never removed.
    """
    parent = os.path.dirname(path) or "."
    try:
        os.makedirs(parent, mode=0o755, exist_ok=True)
    except OSError as exc:
        raise DaemonStartError(f"cannot create {parent}: {exc.strerror}") from None
    try:
        st: os.stat_result | None = os.lstat(path)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise DaemonStartError(f"cannot use {path}: {exc.strerror}") from None
    if st is not None:
        if not stat.S_ISSOCK(st.st_mode):
            raise DaemonStartError(f"{path} exists and is not a socket; not replacing it")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        probe.settimeout(1.0)
        try:
            probe.connect(path)
        except ConnectionRefusedError:
            os.unlink(path)  # nobody listens: a dead daemon's leftover
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise DaemonStartError(f"cannot check existing socket {path}: {exc}") from None
        else:
            raise DaemonStartError(f"another daemon is already listening on {path}")
        finally:
            probe.close()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    # bind() creates the file with 0777 & ~umask: with 0o177 it is born 0600,
    # so there is no moment where it is wider than intended. Start-up is
    # single-threaded, so changing the process umask briefly is safe here.
    old_umask = os.umask(0o177)
    try:
        sock.bind(path)
    except OSError as exc:
        sock.close()
        raise DaemonStartError(f"cannot bind {path}: {exc.strerror}") from None
    finally:
        os.umask(old_umask)
    try:
        if group_gid is not None:
            os.chown(path, -1, group_gid)
            os.chmod(path, 0o660)
        sock.listen(backlog)
    except OSError as exc:
        sock.close()
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise DaemonStartError(f"cannot set up {path}: {exc.strerror}") from None
    sock.setblocking(False)
    return sock


# --------------------------------------------------------------------------- systemd


class SystemdNotifier:
    """sd_notify(3) by hand: one datagram to $NOTIFY_SOCKET (no libsystemd dependency).

    Written here, not taken from a library: the protocol is one datagram of
    KEY=VALUE lines. `sdnotify` (pure Python) has not had a release since 2017;
    `systemd-python` and `cysystemd` are C extensions over libsystemd, which
    the install venv would have to build or find wheels for. Neither is worth
    it for ten lines.
    """

    def __init__(self, address: str | None = None,
                 environ: dict[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self.address = env.get("NOTIFY_SOCKET") if address is None else address
        # $WATCHDOG_USEC: systemd's WatchdogSec=, for us unless $WATCHDOG_PID names another.
        self.watchdog_usec = 0
        with contextlib.suppress(ValueError):
            usec = int(env.get("WATCHDOG_USEC", "0"))
            owner = int(env.get("WATCHDOG_PID", "0") or 0)
            if usec > 0 and owner in (0, os.getpid()):
                self.watchdog_usec = usec

    def notify(self, *fields: str) -> None:
        if not self.address:
            return
        # '@' names a socket in the abstract namespace: a leading NUL on the wire.
        target = "\0" + self.address[1:] if self.address.startswith("@") else self.address
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.sendto("\n".join(fields).encode(), target)
        except OSError as exc:
            log.debug("sd_notify to %s failed: %s", self.address, exc)

    def monotonic_usec(self) -> str:
        return f"MONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}"


# --------------------------------------------------------------------------- tier 2


@dataclass(frozen=True, slots=True)
class _ZeroScore:
    p: float = 0.0
    reasons: tuple[str, ...] = ()


class _StubTier2:
    """Stands in while the Tier-2 package is absent: scores every line 0."""

    name = "stub"

    def score(self, line: str) -> _ZeroScore:
        return _ZeroScore()


def load_tier2_plugin(name: str, model: str = "") -> tuple[Any, str | None]:
    """The Tier-2 plugin `name` and an optional one-line warning.

    Imported lazily: the tier2 package (and onnxruntime behind it) is optional
    and may be missing; then every name is served by a stub, with a warning.
    """
    try:
        from attyguard.daemon.tier2 import load_tier2
    except ImportError as exc:
        return _StubTier2(), (None if name == "stub"
                              else f"Tier-2 plugins unavailable ({exc}); using stub for {name!r}")
    try:
        plugin, warning = load_tier2(name, model_path=Path(model) if model else None)
        return plugin, warning
    except Exception as exc:  # a broken plugin must not keep the daemon down
        return _StubTier2(), f"Tier-2 {name!r} failed to load ({exc}); using stub"


# --------------------------------------------------------------------------- server


@dataclass(eq=False)
class _Connection:
    peer: Peer
    transport: asyncio.Transport
    privileged: bool
    last_active: float = field(default_factory=time.monotonic)
    subscriber: bool = False
    dropped_events: int = 0
    requests: int = 0  # received so far (a connection that never asked is evicted first)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.transport.close()


class _ClientProtocol(asyncio.Protocol):
    """One connection: framing of newline-delimited requests with a size limit.

    A Protocol (callbacks) rather than StreamReader/Writer coroutines: every
    request is answered synchronously inside `data_received`, which measured
    noticeably cheaper per round trip, and back-pressure is one pause/resume.
    """

    def __init__(self, server: DaemonServer) -> None:
        self.server = server
        self.conn: _Connection | None = None
        self.buffer = bytearray()
        self.discarding = False  # inside an oversized line: drop bytes until its newline

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.conn = self.server._accept(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.conn is not None:
            self.server.connections.discard(self.conn)
            self.server.fair.forget(self.conn)
            self.conn = None

    def pause_writing(self) -> None:
        # The client is not reading its replies: stop reading its requests,
        # so it stalls itself and not the daemon's memory.
        if self.conn is not None:
            self.conn.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.conn is not None:
            self.conn.transport.resume_reading()

    def data_received(self, data: bytes) -> None:
        conn = self.conn
        if conn is None:
            return
        conn.last_active = time.monotonic()
        limit = self.server.config.daemon.max_request_bytes
        too_large = f"request longer than {limit} bytes"
        start = 0
        while conn.transport is not None and not conn.transport.is_closing():
            newline = data.find(b"\n", start)
            if newline < 0:
                if not self.discarding:
                    self.buffer += data[start:]
                    if len(self.buffer) > limit:
                        self.buffer.clear()
                        self.discarding = True
                        conn.transport.write(protocol.encode_error(ErrorCode.TOO_LARGE,
                                                                   too_large))
                return
            if self.discarding:
                self.discarding = False
            else:
                self.buffer += data[start:newline]
                line = bytes(self.buffer)
                self.buffer.clear()
                if len(line) > limit:
                    conn.transport.write(protocol.encode_error(ErrorCode.TOO_LARGE, too_large))
                elif line.strip():
                    self.server.fair.add(conn, line)
            start = newline + 1


@dataclass(frozen=True, slots=True)
class Overrides:
    """Command-line values that win over the config file, on start and on reload."""

    socket: str | None = None
    tier2: str | None = None
    mode: str | None = None
    ebpf_mode: str | None = None
    policy: str | None = None
    audit_log: str | None = None

    def apply(self, config: DaemonConfig) -> DaemonConfig:
        if self.policy:
            config = replace(config, policy=replace(config.policy, file=self.policy))
        section = config.daemon
        if self.ebpf_mode:
            section = replace(section, ebpf_mode=self.ebpf_mode)
        if self.socket:
            section = replace(section, socket=self.socket)
        if self.tier2:
            section = replace(section, tier2=self.tier2)
        if self.mode:
            section = replace(section, mode=self.mode)
        if self.audit_log:
            section = replace(section, audit_log=self.audit_log)
        return replace(config, daemon=section)


class DaemonServer:
    def __init__(
        self,
        config: DaemonConfig,
        *,
        config_path: Path | None = None,
        config_missing_ok: bool = True,
        overrides: Overrides | None = None,
        engine: Callable[..., Verdict] | None = None,
        process_table: ProcessTable | None = None,
        notifier: SystemdNotifier | None = None,
    ) -> None:
        self.overrides = overrides or Overrides()
        self.config = self.overrides.apply(config)
        self.config_path = config_path
        self.config_missing_ok = config_missing_ok
        if engine is None:
            from attyguard.engine.classify import classify

            engine = classify
        self.engine: Callable[..., Verdict] = engine
        self.threats = ThreatMap(process_table or ProcfsProcessTable(),
                                 self.config.daemon.max_tracked_pids)
        self.notifier = notifier or SystemdNotifier()
        self.tier2, warning = load_tier2_plugin(self.config.daemon.tier2,
                                                self.config.daemon.tier2_model)
        if warning:
            log.warning("%s", warning)
        self.daemon_uid = os.geteuid()
        self.group_gid = _group_gid(self.config.daemon.group)
        self.connections: set[_Connection] = set()
        self.started = time.monotonic()
        self.counters = {"requests": 0, "errors": 0, "refused_peers": 0, "evicted": 0,
                         "events": 0}
        self._stop = asyncio.Event()
        self._server: asyncio.AbstractServer | None = None
        self._socket_inode: tuple[int, int] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.execs: Any = None  # ExecService once started (ebpf_mode != off, or for register)
        self.exec_followers: set[_Connection] = set()
        self.policy_rt: Any = None  # PolicyRuntime while a policy is loaded (SEC-002)
        self.policy_followers: set[_Connection] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.audit: AuditLog | None = None
        self._audit_failing = False
        self.fleet: FleetSink | None = None
        self._fleet_product: Any = None
        self.windows: dict[int, Window] = {}
        self.sequences = _load_sequences() if self.config.window.enabled else ()
        self.fair = _FairQueue(self)

    # ---- life cycle

    async def start(self) -> None:
        self._open_audit_log()
        self._open_fleet_sink()
        path = self.config.daemon.socket
        sock = bind_socket(path, self.group_gid)
        st = os.stat(path)
        self._socket_inode = (st.st_dev, st.st_ino)
        self._raise_fd_limit(self.config.daemon.max_connections + 64)
        loop = asyncio.get_running_loop()
        self._server = await loop.create_unix_server(lambda: _ClientProtocol(self), sock=sock,
                                                     backlog=512)
        self._tasks = [asyncio.create_task(self._prune_loop()),
                       asyncio.create_task(self._idle_loop())]
        self._start_exec_guard(loop)
        self._start_policy(loop)
        mode = "0660 group " + self.config.daemon.group if self.group_gid is not None else "0600"
        log.info("listening on %s (%s), mode %s, tier2 %s, auto_block %s", path, mode,
                 self.config.daemon.mode, getattr(self.tier2, "name", "?"),
                 "on" if self.config.accumulator.auto_block else "off")
        self.notifier.notify("READY=1", f"STATUS=listening on {path}")
        if self.notifier.watchdog_usec:
            self._tasks.append(asyncio.create_task(
                self._watchdog_loop(self.notifier.watchdog_usec / 1e6)))

    async def _watchdog_loop(self, timeout_s: float) -> None:
        """WATCHDOG=1 every half timeout, sent from the event loop: a stopped or hung loop
        sends none, and systemd kills the daemon (WatchdogSignal=), which releases every
        exec the fanotify rung holds. A stalled kernel reader withholds the ping too."""
        withheld = False
        while True:
            why = self._unhealthy(timeout_s)
            if why is None:
                self.notifier.notify("WATCHDOG=1")
                withheld = False
            elif not withheld:
                withheld = True
                log.error("watchdog: not pinging systemd: %s", why)
                self.notifier.notify(f"STATUS=unhealthy: {why}")
            await asyncio.sleep(timeout_s / 2)

    def _unhealthy(self, timeout_s: float) -> str | None:
        """Why the daemon should not tell systemd it is alive (None: it is)."""
        layer = getattr(self.execs, "layer", None)
        if layer is None:
            return None
        error = getattr(layer, "reader_error", None)
        if error:
            return f"kernel layer: {error}"
        beat = getattr(layer, "heartbeat", 0.0)
        if beat and time.monotonic() - beat > timeout_s:
            return f"kernel layer reader silent for {time.monotonic() - beat:.1f}s"
        return None

    async def wait_stopped(self) -> None:
        await self._stop.wait()

    def request_stop(self) -> None:
        self._stop.set()

    async def close(self) -> None:
        self.notifier.notify("STOPPING=1")
        for task in self._tasks:
            task.cancel()
        self._stop_exec_guard()
        self._stop_policy()
        if self._server is not None:
            self._server.close()
        for conn in list(self.connections):
            conn.close()
        self.fair.close()
        self._unlink_own_socket()
        if self.audit is not None:
            self.audit.close()
            self.audit = None
        if self.fleet is not None:
            self.fleet.close()
            self.fleet = None
        log.info("stopped")

    def _open_audit_log(self) -> None:
        section = self.config.daemon
        if not section.audit_log:
            return
        from attyguard.audit import AuditError, AuditLog

        try:
            self.audit = AuditLog(Path(section.audit_log), max_bytes=section.audit_log_max_bytes,
                                  keep=section.audit_log_keep)
        except AuditError as exc:
            raise DaemonStartError(str(exc)) from exc
        log.info("audit log %s", section.audit_log)

    def _open_fleet_sink(self) -> None:
        events = self.config.events
        if not events.sink:
            return
        from attyguard import __version__
        from attyguard.fleet.ocsf import Product
        from attyguard.fleet.sink import FleetSink, SinkError

        try:
            self.fleet = FleetSink(events.sink, events.syslog_address if events.sink == "syslog"
                                   else "", facility=events.facility, capacity=events.queue)
        except SinkError as exc:
            raise DaemonStartError(f"events: {exc}") from exc
        self._fleet_product = Product(__version__, socket.gethostname())
        log.info("fleet events: OCSF to %s", events.sink)

    def record(self, kind: str, /, **fields: Any) -> None:
        """One decision or event into the audit log and the fleet sink (when configured).

        The daemon's single exit for what it decided: verdicts, marks, clears,
        published events (and kernel decisions, policy violations) all pass here.
        Never raises and never blocks on a sink.
        """
        if self.audit is None and self.fleet is None:
            return
        from attyguard.audit import AuditError, redact_event

        event = redact_event({"record": kind, "time": round(time.time(), 3), **fields})
        if self.fleet is not None:
            from attyguard.fleet.ocsf import to_ocsf

            ocsf = to_ocsf(kind, event, self._fleet_product)
            if ocsf is not None:
                self.fleet.send(ocsf)
        if self.audit is None:
            return
        try:
            self.audit.write(event, redacted=True)
            if self._audit_failing:
                log.warning("audit log writable again")
                self._audit_failing = False
        except AuditError as exc:
            self.counters["audit_errors"] = self.counters.get("audit_errors", 0) + 1
            if not self._audit_failing:  # once per outage, not once per record
                log.error("%s", exc)
                self._audit_failing = True

    def _unlink_own_socket(self) -> None:
        # Only our own socket: a daemon started after us may own the path now.
        path = self.config.daemon.socket
        with contextlib.suppress(OSError):
            st = os.lstat(path)
            if (st.st_dev, st.st_ino) == self._socket_inode:
                os.unlink(path)

    @staticmethod
    def _raise_fd_limit(wanted: int) -> None:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != resource.RLIM_INFINITY and soft < wanted:
            target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
            with contextlib.suppress(ValueError, OSError):
                resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))

    def reload(self) -> bool:
        """SIGHUP: re-read the config; on any error keep running the old one."""
        self.notifier.notify("RELOADING=1", self.notifier.monotonic_usec())
        try:
            if self.config_path is None:
                log.info("reload: no config file; nothing to do")
                return True
            new, errors = load_daemon_config(self.config_path,
                                             missing_ok=self.config_missing_ok)
            if errors:
                for error in errors:
                    log.error("reload failed, keeping the running config: %s", error)
                return False
            new = self.overrides.apply(new)
            if new.daemon.socket != self.config.daemon.socket:
                log.warning("reload: daemon.socket changed to %s; takes effect on restart",
                            new.daemon.socket)
                new = replace(new, daemon=replace(new.daemon, socket=self.config.daemon.socket))
            if (new.daemon.tier2, new.daemon.tier2_model) != (self.config.daemon.tier2,
                                                              self.config.daemon.tier2_model):
                self.tier2, warning = load_tier2_plugin(new.daemon.tier2, new.daemon.tier2_model)
                if warning:
                    log.warning("%s", warning)
            self._exec_reload(new)
            self._policy_reload(new)
            if new.daemon.group != self.config.daemon.group:
                log.warning("reload: daemon.group changed to %s; who may connect follows "
                            "now, the socket file's group on restart", new.daemon.group)
            self.group_gid = _group_gid(new.daemon.group)
            self.threats.max_entries = new.daemon.max_tracked_pids
            self.config = new
            log.info("reloaded %s: mode %s, tier2 %s, auto_block %s", self.config_path,
                     new.daemon.mode, getattr(self.tier2, "name", "?"),
                     "on" if new.accumulator.auto_block else "off")
            return True
        finally:
            self.notifier.notify("READY=1", "STATUS=running")

    async def _prune_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.daemon.prune_interval_s)
            pids = self.threats.pids()
            # In slices, yielding between them: 10,000 /proc reads in one go would
            # hold every waiting request for a few hundred milliseconds.
            for first in range(0, len(pids), _PRUNE_SLICE):
                try:
                    self.threats.prune(pids[first : first + _PRUNE_SLICE])
                except Exception:  # upkeep must never end the daemon
                    log.exception("pruning the threat map failed")
                await asyncio.sleep(0)
            # A session's window goes with its shell (pid reuse would inherit it otherwise).
            for pid in [p for p in self.windows if self.threats.table.info(p) is None]:
                del self.windows[pid]

    async def _idle_loop(self) -> None:
        while True:
            timeout = self.config.daemon.idle_timeout_s
            await asyncio.sleep(min(1.0, timeout / 4))
            cutoff = time.monotonic() - timeout
            for conn in list(self.connections):
                if not conn.subscriber and conn.last_active < cutoff:
                    self._send_nowait(conn, protocol.encode_error(
                        ErrorCode.IDLE, "idle timeout; closing"))
                    conn.close()

    # ---- connections

    def _accept(self, transport: asyncio.Transport) -> _Connection | None:
        """A new connection: identify the peer, refuse strangers, make room."""
        try:
            peer = peer_credentials(transport.get_extra_info("socket"))
        except OSError as exc:
            log.warning("no peer credentials (%s); closing", exc)
            transport.close()
            return None
        why = refusal(peer, self.daemon_uid, self.group_gid, self.config.daemon.group)
        if why is not None:
            self.counters["refused_peers"] += 1
            log.warning("refused pid %d uid %d: %s", peer.pid, peer.uid, why)
            transport.write(protocol.encode_error(ErrorCode.FORBIDDEN, why))
            transport.close()  # after the buffered error line is flushed
            return None
        conn = _Connection(peer, transport, privileged=peer.uid in (0, self.daemon_uid))
        if not self._make_room():
            self.counters["refused_busy"] = self.counters.get("refused_busy", 0) + 1
            transport.write(protocol.encode_error(
                ErrorCode.BUSY, "too many connections, none idle; try again"))
            transport.close()
            return None
        self.connections.add(conn)
        return conn

    def _make_room(self) -> bool:
        """Full: close an idle non-subscriber so the newcomer gets served; False if none is idle."""
        while len(self.connections) >= self.config.daemon.max_connections:
            victim = _eviction_victim(self.connections, self.fair)
            if victim is None:
                return False
            self.connections.discard(victim)
            self.counters["evicted"] += 1
            self._send_nowait(victim, protocol.encode_error(
                ErrorCode.BUSY, "too many connections; closing the longest idle"))
            victim.close()
        return True

    def _send_nowait(self, conn: _Connection, data: bytes) -> bool:
        transport = conn.transport
        if transport.is_closing() or transport.get_write_buffer_size() > _EVENT_BUFFER_LIMIT:
            return False
        transport.write(data)
        return True

    # ---- ops

    def _answer(self, conn: _Connection, line: bytes) -> bytes:
        self.counters["requests"] += 1
        request_id: Any = None
        try:
            request = protocol.decode_request(line)
            request_id = request.id
            handler = getattr(self, f"_op_{request.op}")
            payload: dict[str, Any] = handler(conn, request)
            return protocol.encode_reply(request.id, **payload)
        except ProtocolError as exc:
            self.counters["errors"] += 1
            return protocol.encode_error(exc.code, exc.message,
                                         exc.request_id if exc.request_id is not None
                                         else request_id)
        except Exception as exc:
            self.counters["errors"] += 1
            log.exception("request from pid %d failed", conn.peer.pid)
            return protocol.encode_error(ErrorCode.INTERNAL,
                                         f"internal error: {type(exc).__name__}", request_id)

    def _op_classify(self, conn: _Connection, request: Request) -> dict[str, Any]:
        start = time.perf_counter_ns()
        line = request.str_arg("line", max_len=self.config.daemon.max_request_bytes)
        self._exec_next_line(conn)
        acc = self.config.accumulator
        state = (protocol.state_from_json(request.args["state"], request.id)
                 if request.args.get("state") else None)
        # The shell's values of the names the line uses: judged as bash will expand it.
        # (Tier-1 ran off the event loop already when the fair queue took this request.)
        tier1 = self.fair.take_tier1(line) or (self.engine(line, state) if state
                                               else self.engine(line))
        window_entry = None
        if self.sequences:
            tier1, window_entry = self._window(conn.peer.pid, line, tier1)
        try:
            score = self.tier2.score(line)
        except Exception:  # the contract says it never raises; the daemon does not bet on it
            log.exception("Tier-2 %s failed; scoring 0", getattr(self.tier2, "name", "?"))
            score = _ZeroScore()
        prior, entry = self.threats.level_of(conn.peer.pid)
        assessment = accumulate(tier1, score, prior, acc,
                                tier2_name=str(getattr(self.tier2, "name", "tier2")),
                                prior_reason=entry.reason if entry is not None else "")
        verdict = assessment.verdict
        raise_to = min(assessment.level, ThreatLevel.HIGH)
        if acc.raise_pid_level and prior < raise_to:
            self.threats.mark(conn.peer.pid, raise_to, verdict.reason)
        if verdict.action is Action.BLOCK and self.config.daemon.mode == "warn":
            self.publish_warn(conn.peer, line, verdict)
            verdict = replace(verdict, action=Action.WARN,
                              notes=(*verdict.notes, "warn mode: the daemon would block this"))
        if window_entry is not None and verdict.action is not Action.BLOCK:
            # Only lines that may run enter the window: a refused line did nothing.
            self.windows[conn.peer.pid].remember(window_entry)
        verdict = replace(verdict, elapsed_us=(time.perf_counter_ns() - start) // 1000)
        self.record("verdict", pid=conn.peer.pid, uid=conn.peer.uid, line=line,
                    action=str(verdict.action), rules=[h.rule_id for h in verdict.rules],
                    reason=verdict.reason, probability=round(verdict.probability, 4),
                    severity=max((h.severity for h in verdict.rules),
                                 default=Severity.LOW).name.lower())
        return {"verdict": verdict.to_json()}

    def _window(self, pid: int, line: str, tier1: Verdict) -> tuple[Verdict, Entry]:
        """Add the hits of sequences this line completes in its session's window."""
        window = self.windows.get(pid)
        if window is None:
            if len(self.windows) >= self.config.daemon.max_tracked_pids:
                self.windows.pop(next(iter(self.windows)))  # the oldest session
            window = self.windows[pid] = Window(
                self.sequences, max_commands=self.config.window.commands,
                max_seconds=self.config.window.minutes * 60)
        hits, entry = window.judge(line, (h.rule_id for h in tier1.rules), time.monotonic())
        if not hits:
            return tier1, entry
        rules = (*tier1.rules, *hits)
        return replace(tier1, rules=rules, action=Action.strongest([h.action for h in rules]),
                       probability=combine_probabilities([h.probability for h in rules])), entry

    def _op_status(self, conn: _Connection, request: Request) -> dict[str, Any]:
        from attyguard import __version__

        cfg = self.config
        return {
            "version": __version__,
            "protocol": protocol.PROTOCOL_VERSION,
            "pid": os.getpid(),
            "uptime_s": round(time.monotonic() - self.started, 3),
            "mode": cfg.daemon.mode,
            "tier2": getattr(self.tier2, "name", "?"),
            "auto_block": cfg.accumulator.auto_block,
            "block_threshold": cfg.accumulator.block_threshold,
            "config": str(self.config_path) if self.config_path else None,
            "connections": len(self.connections),
            "subscribers": sum(1 for c in self.connections if c.subscriber),
            "tracked_pids": len(self.threats),
            "counters": dict(self.counters),
            "audit_log": cfg.daemon.audit_log or None,
            "fleet": None if self.fleet is None else {"sink": cfg.events.sink,
                                                      **self.fleet.counters},
            "peer": {"pid": conn.peer.pid, "uid": conn.peer.uid, "gid": conn.peer.gid},
            "exec": self._exec_status(conn),
        }

    def _op_threats(self, conn: _Connection, request: Request) -> dict[str, Any]:
        # Marks carry command titles: a user sees the marks on their own processes.
        entries = [e.to_json() for e in self.threats.entries()
                   if conn.privileged or e.uid == conn.peer.uid]
        payload: dict[str, Any] = {"entries": entries}
        if "pid" in request.args:
            pid = request.int_arg("pid")
            info = self.threats.table.info(pid)
            if info is None:
                raise ProtocolError(ErrorCode.NOT_FOUND, f"no process {pid}", request.id)
            if not conn.privileged and info.uid != conn.peer.uid:
                raise ProtocolError(ErrorCode.FORBIDDEN, f"process {pid} is not yours", request.id)
            level, entry = self.threats.level_of(pid)
            payload["effective"] = {"pid": pid, "level": level.label,
                                    "from_pid": entry.pid if entry is not None else None}
        return payload

    def _op_mark(self, conn: _Connection, request: Request) -> dict[str, Any]:
        pid = request.int_arg("pid", default=conn.peer.pid)
        try:
            level = ThreatLevel.parse(request.str_arg("level"))
        except KeyError:
            raise ProtocolError(ErrorCode.BAD_REQUEST,
                                "mark: 'level' must be none, low, medium, high or critical",
                                request.id) from None
        reason = request.str_arg("reason", default="", max_len=4096)
        info = self.threats.table.info(pid)
        if info is None:
            raise ProtocolError(ErrorCode.NOT_FOUND, f"no process {pid}", request.id)
        # Only root or the process's owner: a user must not taint another's shell.
        if conn.peer.uid != 0 and info.uid != conn.peer.uid:
            raise ProtocolError(ErrorCode.FORBIDDEN,
                                f"uid {conn.peer.uid} may not mark process {pid}", request.id)
        entry = self.threats.mark(pid, level, reason, info)
        now = entry.level if entry is not None else ThreatLevel.NONE
        if now >= ThreatLevel.HIGH:
            log.warning("pid %d marked %s by pid %d uid %d: %s", pid, now.label,
                        conn.peer.pid, conn.peer.uid, _one_line(reason, 200))
        self.record("mark", pid=pid, uid=info.uid, level=now.label, reason=reason,
                    by_pid=conn.peer.pid, by_uid=conn.peer.uid)
        return {"pid": pid, "level": now.label}

    def _op_clear(self, conn: _Connection, request: Request) -> dict[str, Any]:
        # Only root lifts a mark: a user whose shell was locked down after a
        # Block cannot unlock it themselves (that is the point of the lock).
        pid = request.int_arg("pid")
        if conn.peer.uid != 0:
            raise ProtocolError(ErrorCode.FORBIDDEN, "only root may clear a mark", request.id)
        entry = self.threats.clear(pid)
        if entry is not None:
            log.warning("pid %d: mark %s cleared by pid %d", pid, entry.level.label,
                        conn.peer.pid)
        self.record("clear", pid=pid, cleared=entry is not None, by_pid=conn.peer.pid,
                    by_uid=conn.peer.uid)
        return {"pid": pid, "cleared": entry is not None}

    def _op_subscribe(self, conn: _Connection, request: Request) -> dict[str, Any]:
        if not conn.subscriber:
            subscribers = sum(1 for c in self.connections if c.subscriber)
            if subscribers >= self.config.daemon.max_subscribers:
                raise ProtocolError(ErrorCode.BUSY, "too many subscribers", request.id)
            conn.subscriber = True
        return {"subscribed": True, "mode": self.config.daemon.mode}

    # ---- the exec guard (issue 10): kept in these functions, apart from the rest

    def _start_exec_guard(self, loop: asyncio.AbstractEventLoop) -> None:
        from attyguard.daemon.execservice import ExecService

        section = self.config.daemon
        try:
            self.execs = ExecService(
                mode=section.ebpf_mode, scope=section.exec_scope, group=section.exec_group,
                deadline_ms=section.exec_deadline_ms, engine=self.engine, threats=self.threats,
                send_to_pid=self._send_to_pid, send_to_followers=self._send_to_followers,
                trust_window_s=section.exec_trust_window_s, kept=section.exec_events_kept,
                force_rung=section.exec_rung)
        except Exception as exc:  # e.g. a broken patterns/exec/ rule file
            log.error("exec guard disabled: %s", exc)
            self.execs = None
            return
        self.execs.start(loop)
        if section.ebpf_mode == "off":
            log.info("exec guard: off (ebpf_mode); shells still register")

    def _stop_exec_guard(self) -> None:
        if self.execs is not None:
            self.execs.stop()

    def _exec_reload(self, new: DaemonConfig) -> None:
        if self.execs is not None:
            self.execs.reload()  # cached exec allows stood on the rules just reloaded
        old = self.config.daemon
        if (new.daemon.ebpf_mode, new.daemon.exec_scope, new.daemon.exec_group,
                new.daemon.exec_rung) != (old.ebpf_mode, old.exec_scope, old.exec_group,
                                          old.exec_rung):
            log.warning("reload: ebpf_mode/exec_scope/exec_group/exec_rung changes take "
                        "effect on restart")

    def _exec_next_line(self, conn: _Connection) -> None:
        if self.execs is not None:
            self.execs.next_line(conn.peer.pid)

    def _exec_status(self, conn: _Connection) -> dict[str, Any]:
        if self.execs is None:
            return {"mode": self.config.daemon.ebpf_mode, "rung": None}
        status: dict[str, Any] = self.execs.status()
        if not conn.privileged:
            status["guarded_trees"] = [t for t in status["guarded_trees"]
                                       if t["uid"] == conn.peer.uid]
        return status

    def _op_register(self, conn: _Connection, request: Request) -> dict[str, Any]:
        """A shell says it is starting: its process tree is guarded from now on."""
        pid = request.int_arg("pid", default=conn.peer.pid)
        # The kernel's word, not the request's: a process registers itself; root
        # (an installer, a test) may register any process.
        if pid != conn.peer.pid and conn.peer.uid != 0:
            raise ProtocolError(ErrorCode.FORBIDDEN,
                                f"register: pid {pid} is not the caller ({conn.peer.pid})",
                                request.id)
        if self.execs is None:
            raise ProtocolError(ErrorCode.INTERNAL, "register: exec guard unavailable",
                                request.id)
        self.execs.next_line(pid)
        if not self.execs.register(pid):
            raise ProtocolError(ErrorCode.NOT_FOUND, f"no process {pid}", request.id)
        return {"pid": pid, "exec_guard": self.execs.mode,
                "rung": self.execs.rung.value if self.execs.rung is not None else None}

    def _op_trusted(self, conn: _Connection, request: Request) -> dict[str, Any]:
        """The shell forwards a line its user trusted: let that line's execs run."""
        line = request.str_arg("line", max_len=self.config.daemon.max_request_bytes)
        if self.execs is not None:
            self.execs.trusted(conn.peer.pid, line)
        return {"window": self.execs is not None}

    def _op_events(self, conn: _Connection, request: Request) -> dict[str, Any]:
        """Recent exec decisions (a user sees their own); `follow`: then stream new ones."""
        limit = request.int_arg("limit", default=100)
        follow = request.args.get("follow", False)
        if not isinstance(follow, bool):
            raise ProtocolError(ErrorCode.BAD_REQUEST, "events: 'follow' must be a boolean",
                                request.id)
        uid = None if conn.privileged else conn.peer.uid
        items = self.execs.events(max(0, min(limit, 10000)), uid) if self.execs else []
        if follow:
            if not conn.subscriber:
                subscribers = sum(1 for c in self.connections if c.subscriber)
                if subscribers >= self.config.daemon.max_subscribers:
                    raise ProtocolError(ErrorCode.BUSY, "too many subscribers", request.id)
                conn.subscriber = True  # (exempt from the idle timeout, like `subscribe`)
            self.exec_followers.add(conn)
        return {"events": items, "following": follow}

    def _send_to_pid(self, pid: int, data: bytes) -> int:
        """One event to the subscriptions held by process `pid` (the owning shell)."""
        delivered = 0
        for conn in list(self.connections):
            if conn.subscriber and conn.peer.pid == pid \
                    and conn not in self.exec_followers:
                if self._send_nowait(conn, data):
                    delivered += 1
                else:
                    conn.dropped_events += 1
        self.counters["events"] += 1
        return delivered

    def _send_to_followers(self, record: dict[str, Any], uid: int) -> None:
        self.record("exec", **record)  # (the audit log and fleet events see every decision)
        if not self.exec_followers:
            return
        data = protocol.encode_event("exec", **record)
        for conn in list(self.exec_followers):
            if conn not in self.connections:
                self.exec_followers.discard(conn)
            elif (conn.privileged or conn.peer.uid == uid) \
                    and not self._send_nowait(conn, data):
                conn.dropped_events += 1

    # ---- the SEC-002 runtime policy: kept in these functions, apart from the rest

    def _start_policy(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        policy, errors = load_policy_for(self.config)
        for error in errors:  # main() checked the file; it changed since: run without
            log.error("policy not loaded: %s", error)
        if policy is not None:
            self._run_policy(policy)

    def _run_policy(self, policy: Any) -> None:
        from attyguard.policy.runtime import PolicyRuntime

        section = self.config.policy
        self.policy_rt = PolicyRuntime(
            policy, kernel=section.kernel, sample_interval_s=section.sample_interval_s,
            kept=section.violations_kept, on_record=self._policy_on_record,
            publish=self._policy_publish, exec_gate=self.execs,
            file_deadline_ms=section.file_deadline_ms,
            launches_per_user=section.launches_per_user)
        self.policy_rt.start(self._loop)
        log.info("policy %s loaded: %d process entries, mode %s, backend %s", policy.path,
                 len(policy.processes), self.policy_rt.evaluator.mode.value,
                 self.policy_rt.backend)

    def _stop_policy(self) -> None:
        if self.policy_rt is not None:
            self.policy_rt.stop()
            self.policy_rt = None

    def _policy_reload(self, new: DaemonConfig) -> None:
        """SIGHUP: re-read the policy; with any error keep the running one."""
        policy, errors = load_policy_for(new)
        if errors:
            for error in errors:
                log.error("policy reload failed, keeping the running policy: %s", error)
            return
        if policy is None:
            if self.policy_rt is not None:
                log.warning("policy: %s is gone; policy stopped", new.policy.file)
                self._stop_policy()
            return
        if self.policy_rt is None:
            self.config = replace(self.config, policy=new.policy)
            self._run_policy(policy)
            return
        self.policy_rt.replace_policy(policy)
        log.info("policy %s reloaded: %d process entries, mode %s", policy.path,
                 len(policy.processes), self.policy_rt.evaluator.mode.value)

    def _policy_on_record(self, record: dict[str, Any], uid: int) -> None:
        # Any thread (the sampler): connections are touched on the loop only.
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._policy_recorded, record, uid)

    def _policy_recorded(self, record: dict[str, Any], uid: int) -> None:
        self.record("violation", **record)
        if self.policy_followers:
            self._policy_push(record, uid)

    def _policy_push(self, record: dict[str, Any], uid: int) -> None:
        data = protocol.encode_event("violation", violation=record)
        for conn in list(self.policy_followers):
            if conn not in self.connections:
                self.policy_followers.discard(conn)
            elif (conn.privileged or conn.peer.uid == uid) \
                    and not self._send_nowait(conn, data):
                conn.dropped_events += 1

    def _policy_publish(self, text: str, pid: int) -> None:
        """The `shell` sink: a warn event to the shells allowed to see process `pid`."""
        if self._loop is None:
            return
        try:
            uid = os.stat(f"/proc/{pid}").st_uid
        except OSError:
            uid = -1  # gone: only root's and the daemon user's shells see it
        self._loop.call_soon_threadsafe(
            lambda: self.publish_event(text, pid=pid, uid=uid, source="policy"))

    def _op_policy_status(self, conn: _Connection, request: Request) -> dict[str, Any]:
        if self.policy_rt is None:
            return {"loaded": False, "file": self.config.policy.file,
                    "reason": "no policy file" if not os.path.exists(self.config.policy.file)
                    else "not loaded (see the daemon log)"}
        status: dict[str, Any] = self.policy_rt.status(conn.privileged)
        return status

    def _op_policy_violations(self, conn: _Connection, request: Request) -> dict[str, Any]:
        """Kept violations (a user sees their own processes'); `follow`: then stream new ones."""
        limit = request.int_arg("limit", default=1000)
        follow = request.args.get("follow", False)
        if not isinstance(follow, bool):
            raise ProtocolError(ErrorCode.BAD_REQUEST,
                                "policy_violations: 'follow' must be a boolean", request.id)
        uid = None if conn.privileged else conn.peer.uid
        items = self.policy_rt.violations(uid, max(0, min(limit, 1_000_000))) \
            if self.policy_rt is not None else []
        if follow:
            if not conn.subscriber:
                subscribers = sum(1 for c in self.connections if c.subscriber)
                if subscribers >= self.config.daemon.max_subscribers:
                    raise ProtocolError(ErrorCode.BUSY, "too many subscribers", request.id)
                conn.subscriber = True  # exempt from the idle timeout, like `subscribe`
            self.policy_followers.add(conn)
        return {"violations": items, "following": follow}

    def _op_policy_mode(self, conn: _Connection, request: Request) -> dict[str, Any]:
        # The kernel's word (SO_PEERCRED): only root changes what is enforced.
        if conn.peer.uid != 0:
            raise ProtocolError(ErrorCode.FORBIDDEN, "only root may change the policy mode",
                                request.id)
        from attyguard.policy.model import Mode

        text = request.str_arg("mode", max_len=16)
        try:
            mode = Mode(text)
        except ValueError:
            raise ProtocolError(ErrorCode.BAD_REQUEST,
                                "policy_mode: 'mode' must be audit, alert or enforce",
                                request.id) from None
        if self.policy_rt is None:
            raise ProtocolError(ErrorCode.NOT_FOUND, "no policy loaded", request.id)
        log.warning("policy mode change asked by pid %d uid 0", conn.peer.pid)
        result: dict[str, Any] = self.policy_rt.set_mode(mode)
        return result

    def _op_policy_launch(self, conn: _Connection, request: Request) -> dict[str, Any]:
        """`attyguard policy run`: the entry's syscall list now, then a seccomp listener
        on this connection (SCM_RIGHTS), read off the loop's transport (which would
        drop the descriptor) from a dup of the socket (attyguard/policy/launch.py)."""
        name = request.str_arg("name", max_len=256)
        program = request.str_arg("program", default="", max_len=4096)
        rt = self.policy_rt
        if rt is None:
            raise ProtocolError(ErrorCode.NOT_FOUND, "no policy loaded", request.id)
        entry = rt.evaluator.policy.entry(name)
        if entry is None:
            raise ProtocolError(ErrorCode.NOT_FOUND, f"no process entry {name!r} in the policy",
                                request.id)
        why = rt.launch_refusal()
        if not entry.blocked_syscalls:
            # A filter without a blocked call has no listener: nothing to supervise.
            why = (f"process entry {name!r} blocks no syscalls: nothing for policy run to "
                   "do (its processes are watched by match.exe)")
        if why:
            raise ProtocolError(ErrorCode.NOT_FOUND, why, request.id)
        assert self._loop is not None
        loop = self._loop
        raw = conn.transport.get_extra_info("socket")
        dup = socket.socket(fileno=os.dup(raw.fileno()))
        dup.setblocking(False)
        conn.transport.pause_reading()
        done = False

        def finish(reply: bytes) -> None:
            nonlocal done
            if done:
                return
            done = True
            timer.cancel()
            loop.remove_reader(dup.fileno())
            dup.close()
            if not conn.transport.is_closing():
                conn.transport.write(reply)
                conn.transport.resume_reading()

        def ready() -> None:
            try:
                error = rt.accept_listener(dup, conn.peer.pid, conn.peer.uid, name, program)
            except BlockingIOError:
                return
            except Exception as exc:
                log.exception("policy_launch from pid %d failed", conn.peer.pid)
                error = f"internal error: {type(exc).__name__}"
            if error:
                self.counters["errors"] += 1
                log.warning("policy_launch from pid %d uid %d refused: %s", conn.peer.pid,
                            conn.peer.uid, error)
                finish(protocol.encode_error(ErrorCode.BAD_REQUEST, error, request.id))
            else:
                finish(protocol.encode_reply(request.id, accepted=True,
                                             mode=rt.requested_mode.value))

        timer = loop.call_later(5.0, lambda: finish(protocol.encode_error(
            ErrorCode.BAD_REQUEST, "policy_launch: no descriptor within 5s", request.id)))
        loop.add_reader(dup.fileno(), ready)
        return {"blocked_syscalls": list(entry.blocked_syscalls),
                "mode": rt.requested_mode.value, "send_fd": True}

    # ---- events

    def publish_warn(self, peer: Peer, line: str, verdict: Verdict) -> int:
        """A Block turned into a warn event (warn mode); returns how many got it."""
        shown = _one_line(line, 160)
        return self.publish_event(
            f"pid {peer.pid} (uid {peer.uid}) would be blocked: {verdict.reason} — {shown}",
            pid=peer.pid, uid=peer.uid, line=_one_line(line, 1024), reason=verdict.reason,
            probability=round(verdict.probability, 4),
            rules=[hit.rule_id for hit in verdict.rules])

    def publish_event(self, text: str, *, pid: int, uid: int, **fields: Any) -> int:
        """Send one warn event to the subscribers allowed to see it (this user's or all).

        The entry point for every warn source: verdicts in warn mode today,
        kernel sensors' would-be denials later. Never blocks: a subscriber
        too far behind loses the event.
        """
        self.counters["events"] += 1
        text = _one_line(text, 400)
        log.warning("warn event: %s", text)
        self.record("event", text=text, pid=pid, uid=uid, **fields)
        data = protocol.encode_event("warn", text=text, pid=pid, uid=uid, **fields,
                                     time=round(time.time(), 3))
        delivered = 0
        for conn in list(self.connections):
            if conn.subscriber and (conn.privileged or conn.peer.uid == uid):
                if self._send_nowait(conn, data):
                    delivered += 1
                else:
                    conn.dropped_events += 1
        return delivered


def load_policy_for(config: DaemonConfig) -> tuple[Any, list[str]]:
    """(the policy config.policy names, or None; located errors). Missing at the default
    path means no policy; anywhere else it is an error."""
    from attyguard.daemon.config import DEFAULT_POLICY_PATH

    path = config.policy.file
    if not path or (path == DEFAULT_POLICY_PATH and not os.path.lexists(path)):
        return None, []
    from attyguard.policy.load import PolicyLoadError, load_policy

    try:
        return load_policy(path), []
    except PolicyLoadError as exc:
        return None, [str(e) for e in exc.errors]


def _load_sequences() -> tuple[Any, ...]:
    try:
        return load_sequences()
    except SequenceError as exc:  # a broken shipped file: say so, keep judging lines
        log.error("sliding window off: %s", exc)
        return ()


# ---------------------------------------------------------------------------- fairness

# Requests a connection may have waiting before the daemon stops reading it:
# a client that pipelines thousands stalls itself, not the others.
_QUEUE_LIMIT = 32
# Threads classifying off the event loop. The engine is CPU-bound Python, so
# more threads add no throughput; two keep a slow line from holding the loop
# (its thread yields the GIL every few ms) and let a second one run meanwhile.
_CLASSIFY_WORKERS = 2


class _FairQueue:
    """Requests answered in turn: one per connection per round, classification off the loop.

    Before, every request was answered inside `data_received`, so one client
    that pipelined thousands of requests, or sent one line slow to analyse,
    held every other client for as long (1 s and 3.8 s measured). Now
    `data_received` only queues; a task takes one request from each
    connection in turn and yields to the event loop between them; the Tier-1
    engine of a `classify` runs in a small thread pool while other
    connections are served. A connection has at most one request being
    answered, so its replies keep their order.
    """

    def __init__(self, server: DaemonServer) -> None:
        self.server = server
        self.queues: dict[_Connection, collections.deque[bytes]] = {}
        self.ready: collections.deque[_Connection] = collections.deque()
        self.busy: set[_Connection] = set()
        self.paused: set[_Connection] = set()
        self._tier1: tuple[str, Verdict] | None = None
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None

    # --- from the protocol

    def add(self, conn: _Connection, line: bytes) -> None:
        conn.requests += 1
        queue = self.queues.setdefault(conn, collections.deque())
        queue.append(line)
        if len(queue) >= _QUEUE_LIMIT and conn not in self.paused:
            self.paused.add(conn)
            conn.transport.pause_reading()
        if conn not in self.busy and len(queue) == 1:
            self.ready.append(conn)
        self._kick()

    def forget(self, conn: _Connection) -> None:
        self.queues.pop(conn, None)
        self.paused.discard(conn)
        # (a connection in `ready` or `busy` is skipped once it has no queue)

    def pending(self, conn: _Connection) -> bool:
        """Has a request waiting or being answered (such a connection is not evicted)."""
        return conn in self.busy or bool(self.queues.get(conn))

    def take_tier1(self, line: str) -> Verdict | None:
        """The Tier-1 verdict computed off the loop for this `classify`, if it is that line."""
        found, self._tier1 = self._tier1, None
        return found[1] if found is not None and found[0] == line else None

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    # --- the turn-taking

    def _kick(self) -> None:
        if self._wake is None:
            self._wake = asyncio.Event()
        self._wake.set()
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._serve())

    async def _serve(self) -> None:
        assert self._wake is not None
        while True:
            while self.ready:
                conn = self.ready.popleft()
                queue = self.queues.get(conn)
                if not queue or conn.transport.is_closing():
                    continue
                line = queue.popleft()
                self._maybe_resume(conn, queue)
                classify_line = self._classify_line(line)
                if classify_line is not None:
                    self.busy.add(conn)
                    asyncio.get_running_loop().create_task(
                        self._classify(conn, line, classify_line))
                else:
                    self._reply(conn, line)
                    if queue:
                        self.ready.append(conn)
                await asyncio.sleep(0)  # other connections' bytes are read meanwhile
            self._wake.clear()
            await self._wake.wait()

    def _classify_line(self, raw: bytes) -> tuple[str, Any] | None:
        """The line (and shell state) of a well-formed `classify` request; None otherwise."""
        try:
            request = protocol.decode_request(raw)
            if request.op != "classify":
                return None
            line = request.str_arg("line", max_len=self.server.config.daemon.max_request_bytes)
            state = (protocol.state_from_json(request.args["state"], request.id)
                     if request.args.get("state") else None)
            return line, state
        except (ProtocolError, ValueError, TypeError):
            return None  # (answered inline: the error reply is cheap)

    async def _classify(self, conn: _Connection, raw: bytes, job: tuple[str, Any]) -> None:
        line, state = job
        try:
            if self._pool is None:
                self._pool = concurrent.futures.ThreadPoolExecutor(
                    _CLASSIFY_WORKERS, thread_name_prefix="attyguard-classify")
            loop = asyncio.get_running_loop()
            try:
                engine = self.server.engine
                tier1: Verdict | None = await loop.run_in_executor(
                    self._pool, (lambda: engine(line, state)) if state else
                    (lambda: engine(line)))
            except Exception:
                tier1 = None  # (answered inline below, where the failure is logged)
            if tier1 is not None:
                self._tier1 = (line, tier1)
            self._reply(conn, raw)
            self._tier1 = None
        finally:
            self.busy.discard(conn)
            queue = self.queues.get(conn)
            if queue:
                self.ready.append(conn)
                self._kick()

    def _reply(self, conn: _Connection, raw: bytes) -> None:
        if conn.transport.is_closing():
            return
        conn.last_active = time.monotonic()
        conn.transport.write(self.server._answer(conn, raw))

    def _maybe_resume(self, conn: _Connection, queue: collections.deque[bytes]) -> None:
        if conn in self.paused and len(queue) <= _QUEUE_LIMIT // 2:
            # (not while its replies pile up unread: pause_writing keeps that one)
            high = conn.transport.get_write_buffer_limits()[1]
            if conn.transport.get_write_buffer_size() <= high:
                self.paused.discard(conn)
                conn.transport.resume_reading()


def _eviction_victim(connections: set[_Connection], fair: _FairQueue) -> _Connection | None:
    """The connection to close for a newcomer: idle ones only, never-used first, then oldest.

    A connect/close flood used to evict the longest-idle connection, which
    is a shell's persistent one between two lines: in use, just quiet.
    Connections that never sent a request (the flood's) go first; one with a
    request waiting or being answered, or a subscriber, never.
    """
    candidates = [c for c in connections if not c.subscriber and not fair.pending(c)]
    if not candidates:
        return None
    return min(candidates, key=lambda c: (c.requests > 0, c.last_active))


def _one_line(text: str, limit: int) -> str:
    """Printable, single-line, bounded: event text lands in a status bar and logs."""
    return safe_text(text, limit)


# --------------------------------------------------------------------------- main


def _setup_logging(verbose: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if os.environ.get("JOURNAL_STREAM"):
        # stderr goes to the journal: sd-daemon(3) "<N>" prefixes carry the priority.
        class _Journal(logging.Formatter):
            def format(self, record: logging.LogRecord) -> str:
                prio = {"DEBUG": 7, "INFO": 6, "WARNING": 4, "ERROR": 3, "CRITICAL": 2}
                return f"<{prio.get(record.levelname, 6)}>{super().format(record)}"

        handler.setFormatter(_Journal("%(message)s"))
    else:
        handler.setFormatter(logging.Formatter("attyguard daemon: %(levelname)s: %(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(logging.DEBUG if verbose else logging.INFO)
    log.propagate = False


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="attyguard daemon",
        description="The attyguard sidecar: verdicts over a Unix socket, PID threat map, "
        "Tier-2, accumulator. Runs in the foreground; logs to stderr.")
    parser.add_argument("--socket", help="Unix socket path (default: daemon.socket of the "
                        "config, /run/attyguard/attyguard.sock)")
    parser.add_argument("--config", help=f"TOML config (default {DEFAULT_CONFIG_PATH}; "
                        "a missing default file means defaults)")
    parser.add_argument("--tier2", choices=TIER2_NAMES, help="Tier-2 scorer")
    parser.add_argument("--mode", choices=MODES,
                        help="enforce: Block refuses; warn: Block becomes an event + warn")
    parser.add_argument("--ebpf-mode", choices=("off", "warn", "enforce"),
                        help="the kernel layer (exec sensors): off (default), warn, enforce")
    parser.add_argument("--policy", metavar="FILE",
                        help="SEC-002 runtime policy (default: policy.file of the config, "
                        "/etc/attyguard/policy.yaml when it exists)")
    parser.add_argument("--audit-log", metavar="FILE",
                        help="write every decision to this hash-chained audit log "
                        "(daemon.audit_log; verify with `attyguard audit verify`)")
    parser.add_argument("--print-default-config", action="store_true",
                        help="print the commented default config and exit")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--probe", action="store_true",
                        help="probe the kernel enforcement ladder (lsm, fanotify, signal, audit), "
                        "print it and exit")
    parser.add_argument("--json", action="store_true", help="with --probe: one JSON object")
    parser.add_argument("--rung", choices=("lsm", "fanotify", "signal", "audit"),
                        help="with --probe: force this rung or a lower one")
    return parser


async def _run(server: DaemonServer) -> int:
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, server.request_stop)
    loop.add_signal_handler(signal.SIGINT, server.request_stop)
    loop.add_signal_handler(signal.SIGHUP, server.reload)
    try:
        await server.start()
    except DaemonStartError as exc:
        log.error("%s", exc)
        return 1
    try:
        await server.wait_stopped()
    finally:
        await server.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["status"]:
        from attyguard.commands.kernel import status_main

        return status_main(argv[1:])
    if argv[:1] == ["clear"]:
        from attyguard.daemon.admin import clear_main

        return clear_main(argv[1:])
    args = _parser().parse_args(argv)
    if args.print_default_config:
        sys.stdout.write(DEFAULT_DAEMON_CONFIG_TEXT)
        return 0
    if args.probe:
        from attyguard.kernel.report import print_probe

        return print_probe(args.rung, args.json)
    _setup_logging(args.verbose)
    config_path = Path(args.config or DEFAULT_CONFIG_PATH)
    missing_ok = args.config is None
    config, errors = load_daemon_config(config_path, missing_ok=missing_ok)
    if errors:
        for error in errors:
            print(f"attyguard daemon: {error}", file=sys.stderr)
        return 2
    # Warm the engine before READY=1: the first verdict must not pay for rule loading.
    from attyguard.engine.classify import classify

    classify("true")
    overrides = Overrides(args.socket, args.tier2, args.mode, args.ebpf_mode, args.policy,
                          args.audit_log)
    # A policy with errors stops the start (like the config): a typo must not
    # leave an administrator believing a process is watched.
    _policy, policy_errors = load_policy_for(overrides.apply(config))
    if policy_errors:
        for problem in policy_errors:
            print(f"attyguard daemon: {problem}", file=sys.stderr)
        return 2
    server = DaemonServer(config, config_path=config_path, config_missing_ok=missing_ok,
                          overrides=overrides, engine=classify)
    try:
        return asyncio.run(_run(server))
    except KeyboardInterrupt:
        return 0
