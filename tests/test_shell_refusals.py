"""Exec refusals reach the shell: WarnSubscriber's `refused` events and the Refusals queue."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

from attyguard.daemon import protocol
from attyguard.daemon.client import WarnSubscriber
from attyguard.shell.refusals import Refusals
from tests.daemon_harness import wait_for


def test_refusals_queue_wakes_and_drains_once() -> None:
    woken: list[int] = []
    r = Refusals()
    r.wake = lambda: woken.append(1)
    r.add("REFUSED — bash: x")
    r.add("REFUSED — nc: y")
    assert woken == [1, 1]
    assert r.take() == ["REFUSED — bash: x", "REFUSED — nc: y"]
    assert r.take() == []


def test_a_storm_of_refusals_is_bounded_and_says_so() -> None:
    r = Refusals()
    for i in range(150):
        r.add(f"REFUSED — p{i}: r")
    items = r.take()
    assert items[0] == "(50 more exec refusals not shown)" and len(items) == 101
    assert items[-1] == "REFUSED — p149: r"


def test_subscriber_routes_refused_events_apart_from_warnings(tmp_path: Path) -> None:
    path = str(tmp_path / "s.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            conn.recv(65536)  # the subscribe request
            conn.sendall(protocol.encode_reply("subscribe", subscribed=True)
                         + protocol.encode_event("warn", text="exec would be refused — sh: x")
                         + protocol.encode_event("refused", text="REFUSED — bash: y")
                         + protocol.encode_event("other", text="ignored"))
            conn.recv(1)  # until the subscriber goes

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    warned: list[str] = []
    refused: list[str] = []
    sub = WarnSubscriber(path, warned.append, on_refused=refused.append)
    sub.start()
    try:
        wait_for(lambda: warned and refused, 10, "both events")
        assert warned == ["exec would be refused — sh: x"]
        assert refused == ["REFUSED — bash: y"]
    finally:
        sub.stop()
        server.close()
        thread.join(5)
