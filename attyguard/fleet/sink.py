"""Send OCSF events to syslog (RFC 5424) or journald, never stalling the daemon.

`FleetSink.send(event)` only puts the event on a bounded queue; one worker
thread formats and sends. A full queue drops the event and counts it (the
audit log, written before, still has the record); a dead receiver is retried
with back-off, its errors counted and logged once per outage.

RFC 5424 framing is written here rather than with a library: Python's
`logging.handlers.SysLogHandler` speaks the older RFC 3164 format, and the
5424 header is one line of formatting. TCP uses octet counting (RFC 6587).
journald gets its native protocol (KEY=VALUE datagrams on its socket), the
form `journalctl -o json` shows field by field.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["FACILITIES", "FleetSink", "SinkError", "format_5424", "parse_address"]

log = logging.getLogger("attyguard.daemon")

FACILITIES = {
    "kern": 0, "user": 1, "daemon": 3, "auth": 4, "syslog": 5, "authpriv": 10,
    **{f"local{n}": 16 + n for n in range(8)},
}
# OCSF severity_id -> syslog severity (crit 2, err 3, warning 4, notice 5, info 6)
_SYSLOG_SEVERITY = {0: 6, 1: 6, 2: 5, 3: 4, 4: 3, 5: 2, 6: 2, 99: 6}
JOURNAL_SOCKET = "/run/systemd/journal/socket"


class SinkError(ValueError):
    """A bad sink address (one line, for config errors)."""


@dataclass(frozen=True)
class Address:
    transport: str  # "udp" | "tcp" | "unix"
    host: str = ""
    port: int = 0
    path: str = ""


def parse_address(text: str) -> Address:
    """`udp://HOST:PORT`, `tcp://HOST:PORT` or `unix:/PATH` (a datagram socket, e.g. /dev/log)."""
    if text.startswith("unix:"):
        path = text[5:].removeprefix("//")
        if not path.startswith("/"):
            raise SinkError(f"unix address needs an absolute path: {text!r}")
        return Address("unix", path=path)
    for transport in ("udp", "tcp"):
        prefix = transport + "://"
        if text.startswith(prefix):
            host, sep, port = text[len(prefix):].rpartition(":")
            host = host.strip("[]")
            if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise SinkError(f"expected {prefix}HOST:PORT, got {text!r}")
            return Address(transport, host=host, port=int(port))
    raise SinkError(f"expected udp://HOST:PORT, tcp://HOST:PORT or unix:/PATH, got {text!r}")


def format_5424(event: Mapping[str, Any], *, facility: int, hostname: str, app: str = "attyguard",
                procid: int | None = None) -> bytes:
    severity = _SYSLOG_SEVERITY.get(int(event.get("severity_id", 1)), 6)
    t = float(event.get("time", time.time() * 1000)) / 1000
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}Z"
    msgid = f"ocsf.{event.get('class_uid', 0)}"
    pid = os.getpid() if procid is None else procid
    body = json.dumps(event, separators=(",", ":"), ensure_ascii=False)
    host = hostname.replace(" ", "_")[:255] or "-"
    return f"<{facility * 8 + severity}>1 {stamp} {host} {app} {pid} {msgid} - {body}".encode()


def _journal_datagram(event: Mapping[str, Any]) -> bytes:
    body = json.dumps(event, separators=(",", ":"), ensure_ascii=False)
    fields = {
        "SYSLOG_IDENTIFIER": "attyguard",
        "PRIORITY": str(_SYSLOG_SEVERITY.get(int(event.get("severity_id", 1)), 6)),
        "OCSF_CLASS_UID": str(event.get("class_uid", "")),
        "OCSF_TYPE_UID": str(event.get("type_uid", "")),
    }
    out = b"".join(f"{k}={v}\n".encode() for k, v in fields.items())
    # MESSAGE may hold newlines in principle: the native protocol's length-prefixed form.
    data = body.encode()
    return out + b"MESSAGE\n" + len(data).to_bytes(8, "little") + data + b"\n"


class FleetSink:
    """A bounded queue and one sender thread for one destination."""

    def __init__(self, kind: str, address: str = "", *, facility: str = "authpriv",
                 hostname: str | None = None, capacity: int = 10000) -> None:
        if kind not in ("syslog", "journald"):
            raise SinkError(f"unknown sink {kind!r} (syslog or journald)")
        if facility not in FACILITIES:
            raise SinkError(f"unknown syslog facility {facility!r}")
        self.kind = kind
        self.address = parse_address(address) if kind == "syslog" else \
            Address("unix", path=address or JOURNAL_SOCKET)
        self.facility = FACILITIES[facility]
        self.hostname = hostname or socket.gethostname()
        self.queue: queue.Queue[Mapping[str, Any] | None] = queue.Queue(capacity)
        self.counters = {"sent": 0, "dropped": 0, "errors": 0}
        self._sock: socket.socket | None = None
        self._failing = False
        self._thread = threading.Thread(target=self._run, name="attyguard-fleet", daemon=True)
        self._thread.start()

    def send(self, event: Mapping[str, Any]) -> None:
        """Queue one event; never blocks (a full queue drops and counts it)."""
        try:
            self.queue.put_nowait(event)
        except queue.Full:
            self.counters["dropped"] += 1

    def close(self, timeout: float = 2.0) -> None:
        """Send what is queued (within `timeout`), then stop."""
        with contextlib.suppress(queue.Full):
            self.queue.put(None, timeout=timeout)
        self._thread.join(timeout)
        self._disconnect()

    # -- the sender thread ----------------------------------------------------------

    def _run(self) -> None:
        backoff = 0.1
        while True:
            event = self.queue.get()
            if event is None:
                return
            while True:
                try:
                    self._deliver(event)
                    self.counters["sent"] += 1
                    backoff = 0.1
                    if self._failing:
                        log.warning("fleet sink %s reachable again", self.kind)
                        self._failing = False
                    break
                except OSError as exc:
                    self.counters["errors"] += 1
                    self._disconnect()
                    if not self._failing:
                        log.error("fleet sink %s: %s", self.kind, exc.strerror or exc)
                        self._failing = True
                    if self.queue.full():
                        # Behind and failing: give the oldest up rather than stall forever.
                        self.counters["dropped"] += 1
                        break
                    time.sleep(backoff)  # back-off between retries of a dead receiver
                    backoff = min(backoff * 2, 5.0)

    def _connect(self) -> socket.socket:
        a = self.address
        if a.transport == "unix":
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            sock.connect(a.path)
        else:
            family = socket.AF_INET6 if ":" in a.host else socket.AF_INET
            kind = socket.SOCK_STREAM if a.transport == "tcp" else socket.SOCK_DGRAM
            sock = socket.socket(family, kind)
            sock.settimeout(5.0)
            sock.connect((a.host, a.port))
        return sock

    def _deliver(self, event: Mapping[str, Any]) -> None:
        if self._sock is None:
            self._sock = self._connect()
        if self.kind == "journald":
            self._sock.send(_journal_datagram(event))
            return
        data = format_5424(event, facility=self.facility, hostname=self.hostname)
        if self.address.transport == "tcp":
            self._sock.sendall(str(len(data)).encode() + b" " + data)
        else:
            # A datagram has a size limit (records are bounded far below it by redaction).
            self._sock.send(data[:65000])

    def _disconnect(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
            self._sock = None
