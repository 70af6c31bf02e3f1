"""Daemon fairness (issue 12, item 12): no client's work starves another's; eviction spares
connections in use.

The real `attyguard daemon` on a real socket. Each test counts or orders
replies instead of timing them: how many of a pipelining client's requests
were answered between two of a second client's, whether a slow line's reply
came before a quick one sent after it, whether a connection in use survives
a flood of new ones.
"""

from __future__ import annotations

import json
import select
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from daemon_harness import RunningDaemon, remove_tmpdirs, short_tmpdir, wait_for

# A line the engine takes a while over (~0.1-0.2 s here; it decodes 10,000
# escapes), under the daemon's 64 KiB request limit once JSON doubles its
# backslashes: far longer than a status round trip.
SLOW_LINE = "printf '" + "\\x41\\x42" * 5000 + "' | bash"


@pytest.fixture
def make_daemon() -> Iterator[Callable[..., RunningDaemon]]:
    started: list[RunningDaemon] = []

    def make(config_text: str = "") -> RunningDaemon:
        daemon = RunningDaemon(short_tmpdir(), (), config_text)
        started.append(daemon)
        return daemon.start()

    yield make
    for daemon in started:
        daemon.stop()
        print(f"--- daemon log ---\n{daemon.log()}")
    remove_tmpdirs()


class Client:
    """One connection speaking the protocol: send lines, read reply lines."""

    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(30)
        self.sock.connect(path)
        self.buffer = b""
        self.next_id = 0

    def send(self, op: str, **args: Any) -> None:
        self.next_id += 1
        self.sock.sendall(json.dumps({"v": 1, "id": self.next_id, "op": op, **args}).encode()
                          + b"\n")

    def reply(self) -> dict[str, Any]:
        while b"\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            assert chunk, "the daemon closed the connection"
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return dict(json.loads(line))

    def call(self, op: str, **args: Any) -> dict[str, Any]:
        self.send(op, **args)
        return self.reply()

    def replies_waiting(self) -> int:
        """Replies already here, without waiting for more."""
        while select.select([self.sock], [], [], 0)[0]:
            chunk = self.sock.recv(65536)
            if not chunk:
                break
            self.buffer += chunk
        return self.buffer.count(b"\n")

    def close(self) -> None:
        self.sock.close()


def _requests(reply: dict[str, Any]) -> int:
    assert reply.get("ok") is True, reply
    return int(reply["counters"]["requests"])


def test_a_pipelining_client_does_not_starve_another(make_daemon):
    daemon = make_daemon()
    greedy, other = Client(daemon.socket), Client(daemon.socket)
    total = 4000
    got = 0

    def read_all() -> None:
        nonlocal got
        for _ in range(total):
            greedy.reply()
            got += 1

    reader = threading.Thread(target=read_all, daemon=True)
    reader.start()
    try:
        batch = b"".join(
            json.dumps({"v": 1, "id": i, "op": "classify",
                        "line": f"tar czf /tmp/b{i}.tgz ~/work | ssh host 'cat > b{i}'"}
                       ).encode() + b"\n" for i in range(total))
        greedy.sock.sendall(batch)
        first = _requests(other.call("status"))
        second = _requests(other.call("status"))
        assert got < total, "the other client waited until all pipelined requests were answered"
        # Between two back-to-back requests of the other client, the greedy
        # one got a turn or two, not a whole read's worth (hundreds).
        between = second - first - 1
        assert between <= 8, f"{between} of the pipelining client's requests went first"
    finally:
        reader.join(60)
        greedy.close()
        other.close()
    assert got == total


def test_a_slow_line_does_not_delay_another_client(make_daemon):
    daemon = make_daemon()
    slow, other = Client(daemon.socket), Client(daemon.socket)
    try:
        for i in range(6):  # ~1 s of work, one connection (distinct lines: no cache)
            slow.send("classify", line=f"{SLOW_LINE} # {i}")
        first = other.call("status")
        assert first.get("ok") is True, first
        second = other.call("status")
        assert second.get("ok") is True, second
        # The quick requests were answered while the slow line was still being analysed.
        assert slow.replies_waiting() <= 1, "the other client waited for the slow lines"
        for _ in range(6):
            verdict = slow.reply()
            assert verdict.get("ok") is True and verdict["verdict"]["action"] == "block", verdict
    finally:
        slow.close()
        other.close()


def test_a_connection_flood_does_not_evict_connections_in_use(make_daemon):
    daemon = make_daemon("[daemon]\nmax_connections = 4\nmax_subscribers = 1\n")
    shell = Client(daemon.socket)
    flood: list[Client] = []
    try:
        assert shell.call("status").get("ok") is True
        for _ in range(12):
            flood.append(Client(daemon.socket))

        def flood_accepted() -> bool:
            reply = shell.call("status")
            assert reply.get("ok") is True, f"the connection in use was closed: {reply}"
            return int(reply["counters"]["evicted"]) >= 8

        wait_for(flood_accepted, 10, "the daemon to accept the flood")
    finally:
        shell.close()
        for c in flood:
            c.close()
