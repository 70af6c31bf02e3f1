"""Alert sinks for policy violations, and the dispatcher that keeps them off the check path.

A sink name comes from the policy's `alerts.on_violation` / `alerts.on_critical`
(validated by `attyguard.policy.load.parse_sink`):

- `log`: the daemon's own log, which every violation reaches anyway;
- `syslog` / `journald`: one line to the local syslog socket (`/dev/log`, which
  journald also serves), facility authpriv, priority from the severity;
- `shell`: a warn event to the guarded shells' `⚠ N` buffers (the daemon's
  existing warn-event subscription), only to shells allowed to see that process;
- `jsonl:/PATH`: one JSON object a line appended to PATH (created 0600);
- `webhook:URL`: an HTTP POST of the JSON record.

Every sink has its own bounded queue and worker thread: a dead webhook does not
delay the syslog line, and nothing here ever blocks the caller. A full queue
drops the *delivery* (counted, logged once per burst), never the record: the
runtime logs and keeps each violation before it is handed to the sinks.
"""

from __future__ import annotations

import contextlib
import json
import logging
import logging.handlers
import os
import queue
import threading
import urllib.request
from collections.abc import Callable
from typing import Any, ClassVar

__all__ = ["JsonlSink", "ShellSink", "SinkDispatcher", "SyslogSink", "WebhookSink", "make_sink"]

log = logging.getLogger("attyguard.daemon")

QUEUE_LIMIT = 1000
WEBHOOK_TIMEOUT_S = 5.0
_STOP = object()


class JsonlSink:
    def __init__(self, path: str) -> None:
        self.name = f"jsonl:{path}"
        self.path = path

    def send(self, record: dict[str, Any]) -> None:
        line = (json.dumps(record, ensure_ascii=False) + "\n").encode()
        # O_APPEND: one write per record, so concurrent writers never interleave lines.
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)


class SyslogSink:
    """Through the stdlib's SysLogHandler (it reconnects after a syslog restart).

    The handler is made on first use and again after a failure: at boot the
    daemon may start before the syslog socket exists.
    """

    _LEVEL: ClassVar[dict[str, int]] = {"CRITICAL": logging.CRITICAL, "HIGH": logging.ERROR,
                                        "MEDIUM": logging.WARNING, "LOW": logging.INFO}

    def __init__(self, name: str = "syslog", address: str = "/dev/log") -> None:
        self.name = name
        self.address = address
        self.handler: logging.handlers.SysLogHandler | None = None

    def send(self, record: dict[str, Any]) -> None:
        text = (f"{record['severity']} {record['type']} violation by {record['process']} "
                f"pid {record['pid']} ({record['exe']}): {record['detail']} "
                f"[{record['action']}, mode {record['mode']}]")
        level = self._LEVEL.get(str(record["severity"]), logging.WARNING)
        entry = logging.LogRecord("attyguard.policy", level, "", 0, text, None, None)
        if self.handler is None:
            handler = logging.handlers.SysLogHandler(
                address=self.address, facility=logging.handlers.SysLogHandler.LOG_AUTHPRIV)
            handler.ident = "attyguard-policy: "
            # emit() reports failures through handleError (stderr); raise them to our lane.
            handler.handleError = _raise_current  # type: ignore[method-assign,assignment]
            self.handler = handler
        try:
            self.handler.emit(entry)
        except Exception:
            self.close()
            raise

    def close(self) -> None:
        if self.handler is not None:
            with contextlib.suppress(Exception):
                self.handler.close()
            self.handler = None


def _raise_current(_record: logging.LogRecord) -> None:
    raise


class ShellSink:
    """A warn event to the shells; `publish(text, pid)` must itself never block."""

    name = "shell"

    def __init__(self, publish: Callable[[str, int], None]) -> None:
        self.publish = publish

    def send(self, record: dict[str, Any]) -> None:
        self.publish(f"policy {record['process']}: {record['type']} {record['action']} — "
                     f"{record['detail']}", int(record["pid"]))


class WebhookSink:
    def __init__(self, url: str, timeout: float = WEBHOOK_TIMEOUT_S) -> None:
        self.name = f"webhook:{url}"
        self.url = url
        self.timeout = timeout

    def send(self, record: dict[str, Any]) -> None:
        request = urllib.request.Request(
            self.url, data=json.dumps(record).encode(), method="POST",
            headers={"Content-Type": "application/json", "User-Agent": "attyguard-policy"})
        with urllib.request.urlopen(request, timeout=self.timeout) as reply:
            reply.read(65536)


class _NullSink:
    """`log`: the record is already in the daemon's log."""

    name = "log"

    def send(self, record: dict[str, Any]) -> None:
        return None


def make_sink(spec: str, *, publish: Callable[[str, int], None] | None = None,
              syslog_address: str = "/dev/log") -> Any:
    if spec == "log":
        return _NullSink()
    if spec in ("syslog", "journald"):
        return SyslogSink(spec, syslog_address)
    if spec == "shell":
        return ShellSink(publish or (lambda _text, _pid: None))
    if spec.startswith("jsonl:"):
        return JsonlSink(spec[len("jsonl:"):])
    if spec.startswith("webhook:"):
        return WebhookSink(spec[len("webhook:"):])
    raise ValueError(f"unknown sink {spec!r}")


class _Lane:
    """One sink's queue and worker."""

    def __init__(self, sink: Any, limit: int) -> None:
        self.sink = sink
        self.queue: queue.Queue[object] = queue.Queue(maxsize=limit)
        self.sent = 0
        self.failed = 0
        self.dropped = 0
        self._failing = False
        self._dropping = False
        self.thread = threading.Thread(target=self._run, name=f"policy-sink {sink.name}",
                                       daemon=True)
        self.thread.start()

    def offer(self, record: dict[str, Any]) -> None:
        try:
            self.queue.put_nowait(record)
            self._dropping = False
        except queue.Full:
            self.dropped += 1
            if not self._dropping:  # once per burst: a dead sink must not flood the log
                self._dropping = True
                log.warning("policy: sink %s is %d records behind; dropping deliveries "
                            "(the records are kept)", self.sink.name, self.queue.maxsize)

    def _run(self) -> None:
        while True:
            item = self.queue.get()
            if item is _STOP:
                return
            assert isinstance(item, dict)
            try:
                self.sink.send(item)
                self.sent += 1
                if self._failing:
                    self._failing = False
                    log.info("policy: sink %s delivers again", self.sink.name)
            except Exception as exc:
                self.failed += 1
                if not self._failing:
                    self._failing = True
                    log.warning("policy: sink %s failed (%s); will keep trying",
                                self.sink.name, exc)

    def stop(self, timeout: float) -> None:
        with contextlib.suppress(queue.Full):
            self.queue.put(_STOP, timeout=timeout)
        self.thread.join(timeout)
        close = getattr(self.sink, "close", None)
        if close is not None:
            with contextlib.suppress(Exception):
                close()


class SinkDispatcher:
    """Routes records to the sinks of `on_violation` (all) and `on_critical` (CRITICAL)."""

    def __init__(self, on_violation: tuple[str, ...], on_critical: tuple[str, ...], *,
                 publish: Callable[[str, int], None] | None = None,
                 syslog_address: str = "/dev/log", limit: int = QUEUE_LIMIT) -> None:
        self.on_violation = on_violation
        self.on_critical = on_critical
        self.lanes: dict[str, _Lane] = {}
        for spec in dict.fromkeys(on_violation + on_critical):
            try:
                sink = make_sink(spec, publish=publish, syslog_address=syslog_address)
            except Exception as exc:  # e.g. a syslog address that cannot be opened at all
                log.warning("policy: sink %s unavailable: %s", spec, exc)
                continue
            self.lanes[spec] = _Lane(sink, limit)

    def submit(self, record: dict[str, Any]) -> None:
        """Never blocks, never raises."""
        names = list(self.on_violation)
        if record.get("severity") == "CRITICAL":
            names += [n for n in self.on_critical if n not in names]
        for name in names:
            lane = self.lanes.get(name)
            if lane is not None:
                lane.offer(record)

    def status(self) -> dict[str, dict[str, int]]:
        return {name: {"sent": lane.sent, "failed": lane.failed, "dropped": lane.dropped,
                       "queued": lane.queue.qsize()} for name, lane in self.lanes.items()}

    def stop(self, timeout: float = 2.0) -> None:
        for lane in self.lanes.values():
            lane.stop(timeout)
