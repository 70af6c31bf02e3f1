"""Alert sinks: real files, a real syslog datagram socket, a real HTTP server on
127.0.0.1; a slow or dead sink never stalls submit() nor the other sinks."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from attyguard.policy.sinks import SinkDispatcher
from tests.daemon_harness import wait_for

RECORD: dict[str, Any] = {
    "timestamp": 1.5, "process": "worker", "exe": "/opt/w/run", "pid": 4321, "type": "exec",
    "detail": "exec of /bin/nc not in allowed_exec", "severity": "HIGH", "action": "alerted",
    "mode": "alert"}
CRITICAL = {**RECORD, "type": "syscall", "detail": "blocked syscall: ptrace",
            "severity": "CRITICAL"}


class _Hook(BaseHTTPRequestHandler):
    received: list[dict[str, Any]]
    delay: threading.Event | None = None

    def do_POST(self) -> None:
        if self.delay is not None:
            self.delay.wait(30)  # a stalled receiver, until the test releases it
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append(  # type: ignore[attr-defined]
            {"body": json.loads(body), "type": self.headers["Content-Type"]})
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    server.received = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def _url(server: ThreadingHTTPServer) -> str:
    return f"webhook:http://127.0.0.1:{server.server_address[1]}/hook"


def test_jsonl_and_routing_by_severity(tmp_path: Path) -> None:
    every, critical = tmp_path / "all.jsonl", tmp_path / "critical.jsonl"
    d = SinkDispatcher((f"jsonl:{every}",), (f"jsonl:{critical}",))
    try:
        d.submit(RECORD)
        d.submit(CRITICAL)
        wait_for(lambda: d.status()[f"jsonl:{critical}"]["sent"] == 1
                 and d.status()[f"jsonl:{every}"]["sent"] == 2, 10, "deliveries")
    finally:
        d.stop()
    assert [json.loads(x) for x in every.read_text().splitlines()] == [RECORD, CRITICAL]
    assert [json.loads(x) for x in critical.read_text().splitlines()] == [CRITICAL]
    assert every.stat().st_mode & 0o777 == 0o600


def test_a_sink_in_both_lists_gets_a_critical_once(tmp_path: Path) -> None:
    out = tmp_path / "v.jsonl"
    d = SinkDispatcher((f"jsonl:{out}",), (f"jsonl:{out}",))
    try:
        d.submit(CRITICAL)
        wait_for(lambda: d.status()[f"jsonl:{out}"]["sent"] == 1, 10, "delivery")
    finally:
        d.stop()
    assert len(out.read_text().splitlines()) == 1


def test_syslog_line_on_a_real_datagram_socket(tmp_path: Path) -> None:
    address = str(tmp_path / "log")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind(address)
        listener.settimeout(10)
        d = SinkDispatcher(("syslog",), (), syslog_address=address)
        try:
            d.submit(CRITICAL)
            data = listener.recv(65536).decode()
        finally:
            d.stop()
    # authpriv (10) * 8 + crit (2) = 82
    assert data.startswith("<82>attyguard-policy: CRITICAL syscall violation by worker pid 4321 "
                           "(/opt/w/run): blocked syscall: ptrace [alerted, mode alert]"), data


def test_syslog_absent_is_a_counted_failure_not_a_crash(tmp_path: Path) -> None:
    d = SinkDispatcher(("journald",), (), syslog_address=str(tmp_path / "nobody"))
    try:
        d.submit(RECORD)
        wait_for(lambda: d.status()["journald"]["failed"] == 1, 10, "the failure")
    finally:
        d.stop()


def test_webhook_posts_json(webhook: ThreadingHTTPServer) -> None:
    d = SinkDispatcher((_url(webhook),), ())
    try:
        d.submit(RECORD)
        wait_for(lambda: webhook.received, 10, "the POST")  # type: ignore[attr-defined]
    finally:
        d.stop()
    assert webhook.received == [{"body": RECORD,  # type: ignore[attr-defined]
                                 "type": "application/json"}]


def test_slow_webhook_stalls_neither_submit_nor_other_sinks(
        webhook: ThreadingHTTPServer, tmp_path: Path) -> None:
    gate = threading.Event()
    _Hook.delay = gate
    out = tmp_path / "v.jsonl"
    d = SinkDispatcher((_url(webhook), f"jsonl:{out}"), (), limit=60)
    try:
        for _ in range(50):
            d.submit(RECORD)
        # The file sink got all 50 while the webhook is stuck on its first POST.
        wait_for(lambda: d.status()[f"jsonl:{out}"]["sent"] == 50, 10, "the file sink")
        assert d.status()[_url(webhook)]["sent"] == 0
        gate.set()
        wait_for(lambda: d.status()[_url(webhook)]["sent"] == 50, 20, "the hook to drain")
    finally:
        gate.set()
        _Hook.delay = None
        d.stop()
    assert len(out.read_text().splitlines()) == 50
    assert len(webhook.received) == 50  # type: ignore[attr-defined]


def test_a_stuck_sink_drops_deliveries_beyond_its_queue(webhook: ThreadingHTTPServer) -> None:
    gate = threading.Event()
    _Hook.delay = gate
    d = SinkDispatcher((_url(webhook),), (), limit=5)
    try:
        for _ in range(50):
            d.submit(RECORD)
        status = d.status()[_url(webhook)]
        # One in flight (stuck), five queued, the rest dropped. Nothing was sent
        # or timed out meanwhile: submit() never waited for the stuck POST.
        assert status["dropped"] in (44, 45) and status["queued"] <= 5
        assert status["sent"] == 0 and status["failed"] == 0
    finally:
        gate.set()
        _Hook.delay = None
        d.stop()


def test_dead_webhook_is_counted(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"webhook:http://127.0.0.1:{port}/x"
    d = SinkDispatcher((url,), ())
    try:
        d.submit(RECORD)
        d.submit(RECORD)
        wait_for(lambda: d.status()[url]["failed"] == 2, 20, "two failures")
    finally:
        d.stop()


def test_shell_sink_calls_publish() -> None:
    seen: list[tuple[str, int]] = []
    d = SinkDispatcher(("shell",), (), publish=lambda text, pid: seen.append((text, pid)))
    try:
        d.submit(RECORD)
        wait_for(lambda: seen, 10, "the shell event")
    finally:
        d.stop()
    assert seen == [("policy worker: exec alerted — exec of /bin/nc not in allowed_exec", 4321)]
