"""The policy in the real daemon: the audit-only fallback against real processes
(a copied interpreter gives the test program its own executable path), the CLI ops,
root-only mode switching (SO_PEERCRED), located start-up errors and SIGHUP reloads."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.daemon_harness import (
    ATTYGUARD,
    RunningDaemon,
    raw_call,
    remove_tmpdirs,
    short_tmpdir,
    wait_for,
)

ROOT = os.geteuid() == 0


@pytest.fixture(autouse=True)
def _clean_tmpdirs() -> Iterator[None]:
    yield
    remove_tmpdirs()


def _program(directory: Path) -> Path:
    """A private copy of the interpreter: the policy matches this exact path."""
    exe = directory / "agprog"
    shutil.copy(os.path.realpath(sys.executable), exe)
    exe.chmod(0o755)
    return exe


PROGRAM = r"""
import os, subprocess, sys, time
out = sys.argv[1]
what = sys.argv[2:]
pids = {}
if "exec" in what:
    # stays alive, so even an audit sensor can read what it runs
    pids["tail"] = subprocess.Popen(["/usr/bin/tail", "-f", "/dev/null"]).pid
if "memory" in what:
    hog = b"x" * (80 << 20)
if "cpu" in what:
    end = time.monotonic() + 30
with open(out + ".tmp", "w") as f:
    f.write(repr(pids))
os.rename(out + ".tmp", out)
while True:
    if "cpu" in what:
        sum(range(10000))
    else:
        time.sleep(0.05)
"""


def _policy(exe: Path, mode: str = "enforce", extra: str = "") -> str:
    return f"""\
version: "1.0"
mode: {mode}
processes:
  prog:
    description: the test program
    match: {{exe: {exe}}}
    allowed_exec: [sleep]
    max_memory_mb: 40
    max_cpu_percent: 30
{extra}"""


def _start_program(directory: Path, exe: Path, procs: list[subprocess.Popen[bytes]],
                   *what: str) -> tuple[int, dict[str, int]]:
    script = directory / "prog.py"
    script.write_text(PROGRAM)
    ready = directory / f"ready-{len(procs)}"
    proc = subprocess.Popen([str(exe), str(script), str(ready), *what],
                            stdin=subprocess.DEVNULL)
    procs.append(proc)
    wait_for(ready.exists, 20, "the test program to start")
    pids: dict[str, int] = eval(ready.read_text())  # our own repr() of a dict of ints
    return proc.pid, pids


def _violations(daemon: RunningDaemon) -> list[dict[str, Any]]:
    reply = daemon.call("policy_violations")
    assert reply["ok"], reply
    return list(reply["violations"])


def _cli(*args: str, user: bool = False) -> subprocess.CompletedProcess[str]:
    cmd = [str(ATTYGUARD), "policy", *args]
    if user:
        cmd = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60)


needs_root = pytest.mark.skipif(not ROOT, reason="the proc connector and /proc of other "
                                "users' processes need root")


@needs_root
def test_fallback_records_exec_memory_and_cpu_and_forces_audit(
        make_daemon: Callable[..., RunningDaemon], procs: list[subprocess.Popen[bytes]]
) -> None:
    d = short_tmpdir()
    exe = _program(d)
    (d / "policy.yaml").write_text(_policy(exe))
    daemon = make_daemon(d, ("--policy", str(d / "policy.yaml")),
                         '[policy]\nkernel = "off"\nsample_interval_s = 0.05\n')
    log = daemon.log()
    assert log.count("audit-only fallback") == 1, log
    assert 'forced by config ([policy] kernel = "off")' in log
    assert "cannot see file, syscall, network; mode enforce forced to audit" in log

    pid, pids = _start_program(d, exe, procs, "exec", "memory", "cpu")
    want_types = {"exec", "resource"}
    wait_for(lambda: sum(1 for v in _violations(daemon) if v["type"] == "resource") >= 2
             and want_types <= {v["type"] for v in _violations(daemon)},
             20, "exec, memory and CPU violations", daemon.log)
    records = _violations(daemon)
    for r in records:
        assert isinstance(r.pop("timestamp"), float)
    assert {"process": "prog", "exe": str(exe), "pid": pids["tail"], "type": "exec",
            "detail": "exec of /usr/bin/tail not in allowed_exec", "severity": "HIGH",
            "action": "logged", "mode": "audit"} in records
    memory = [r for r in records if r["detail"].startswith("memory")]
    cpu = [r for r in records if r["detail"].startswith("CPU")]
    assert len(memory) == 1 and len(cpu) == 1, records  # once per crossing, not per sample
    assert re.fullmatch(r"memory limit exceeded: \d+MB > 40MB", memory[0].pop("detail"))
    assert re.fullmatch(r"CPU limit exceeded: \d+% > 30% over 1\.\d+s", cpu[0].pop("detail"))
    for r in (memory[0], cpu[0]):
        assert r == {"process": "prog", "exe": str(exe), "pid": pid, "type": "resource",
                     "severity": r["severity"], "action": "logged", "mode": "audit"}
    assert (memory[0]["severity"], cpu[0]["severity"]) == ("HIGH", "MEDIUM")

    status = daemon.call("policy_status")
    assert status["mode"] == "audit" and status["requested_mode"] == "enforce"
    assert status["backend"] == "fallback" and status["blind"] == ["file", "syscall", "network"]
    assert status["exec_source"] == "proc connector"
    (entry,) = status["processes"]
    assert pid in entry["pids"] and pids["tail"] in entry["pids"]
    assert status["stats"]["by_process"] == {"prog": len(records)}
    assert status["stats"]["by_type"] == {"exec": 1, "resource": 2}
    # The daemon's own log has every record (written before any sink).
    assert daemon.log().count("policy violation: {") == len(records)


@needs_root
def test_cli_status_violations_follow_and_mode(
        make_daemon: Callable[..., RunningDaemon], procs: list[subprocess.Popen[bytes]]
) -> None:
    d = short_tmpdir()
    exe = _program(d)
    (d / "policy.yaml").write_text(_policy(exe, mode="alert"))
    daemon = make_daemon(d, ("--policy", str(d / "policy.yaml")),
                         '[daemon]\ngroup = "nogroup"\n[policy]\nkernel = "off"\n'
                         'sample_interval_s = 0.05\n')
    follower = subprocess.Popen([str(ATTYGUARD), "policy", "violations", "--follow",
                                 "--socket", daemon.socket], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: daemon.call("status")["subscribers"] == 1, 10, "the follower")
        _pid, pids = _start_program(d, exe, procs, "exec")
        assert follower.stdout is not None
        line = follower.stdout.readline()  # blocks until the record is pushed
        record = json.loads(line)
        assert record["pid"] == pids["tail"] and record["type"] == "exec"
        assert record["detail"] == "exec of /usr/bin/tail not in allowed_exec"
    finally:
        follower.kill()
        follower.wait()

    result = _cli("violations", "--socket", daemon.socket)
    assert result.returncode == 0, result.stderr
    assert [json.loads(x)["detail"] for x in result.stdout.splitlines()] == \
        ["exec of /usr/bin/tail not in allowed_exec"]

    result = _cli("status", "--socket", daemon.socket)
    assert result.returncode == 0, result.stderr
    assert f"policy {d / 'policy.yaml'}: mode audit (alert asked; " in result.stdout
    assert "not seen with this backend: file, syscall, network" in result.stdout
    status = json.loads(_cli("status", "--json", "--socket", daemon.socket).stdout)
    assert status["stats"]["violations"] == 1

    # Root may switch the mode (the fallback keeps it at audit and says so) ...
    result = _cli("mode", "enforce", "--socket", daemon.socket)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("policy mode: audit (was audit) — fallback backend")
    assert daemon.call("policy_status")["requested_mode"] == "enforce"
    # ... a member of the socket's group may connect, but not switch it.
    result = _cli("mode", "audit", "--socket", daemon.socket, user=True)
    assert result.returncode == 3
    assert result.stderr.strip() == \
        "attyguard policy: forbidden: only root may change the policy mode"
    assert daemon.call("policy_status")["requested_mode"] == "enforce"
    # and sees only their own processes' violations (none).
    result = _cli("violations", "--socket", daemon.socket, user=True)
    assert result.returncode == 0 and result.stdout == ""


def test_policy_errors_stop_the_start_located(make_daemon: Callable[..., RunningDaemon]
                                              ) -> None:
    d = short_tmpdir()
    bad = d / "policy.yaml"
    bad.write_text("processes:\n  a:\n    match: {exe: /bin/a}\n"
                   "    blocked_syscalls: [ptrace, nosuchcall]\n")
    daemon = RunningDaemon(d, ("--policy", str(bad)))
    with pytest.raises(AssertionError, match="daemon exited 2"):
        daemon.start(timeout=20)
    assert f"attyguard daemon: {bad}:4: processes.a.blocked_syscalls: unknown syscall " \
        "'nosuchcall'" in daemon.log()
    assert "Traceback" not in daemon.log()


def test_missing_explicit_policy_is_an_error_default_is_not(
        make_daemon: Callable[..., RunningDaemon]) -> None:
    d = short_tmpdir()
    daemon = RunningDaemon(d, ("--policy", str(d / "none.yaml")))
    with pytest.raises(AssertionError, match="daemon exited 2"):
        daemon.start(timeout=20)
    assert f"{d / 'none.yaml'}: No such file or directory" in daemon.log()
    # No --policy and no /etc/attyguard/policy.yaml: runs without a policy.
    if os.path.lexists("/etc/attyguard/policy.yaml"):
        pytest.skip("this machine has /etc/attyguard/policy.yaml")
    d2 = short_tmpdir()
    running = make_daemon(d2)
    assert running.call("policy_status")["loaded"] is False
    reply = running.call("policy_mode", mode="enforce")
    assert reply["error"]["code"] == ("not_found" if ROOT else "forbidden")


def test_sighup_reload_keeps_the_old_policy_on_error(
        make_daemon: Callable[..., RunningDaemon]) -> None:
    d = short_tmpdir()
    path = d / "policy.yaml"
    path.write_text("processes:\n  first:\n    match: {exe: /opt/first}\n")
    daemon = make_daemon(d, ("--policy", str(path)), '[policy]\nkernel = "off"\n')
    assert [p["name"] for p in daemon.call("policy_status")["processes"]] == ["first"]

    path.write_text("processes:\n  second:\n    match: {exe: /opt/second}\n"
                    "    blocked_network: ['10.0.0.0/33']\n")
    daemon.signal(signal.SIGHUP)
    wait_for(lambda: "policy reload failed" in daemon.log(), 10, "the reload", daemon.log)
    assert f"policy reload failed, keeping the running policy: {path}:4: " \
        "processes.second.blocked_network: network rule '10.0.0.0/33'" in daemon.log()
    assert [p["name"] for p in daemon.call("policy_status")["processes"]] == ["first"]

    path.write_text("mode: alert\nprocesses:\n  second:\n    match: {exe: /opt/second}\n")
    daemon.signal(signal.SIGHUP)
    wait_for(lambda: [p["name"] for p in daemon.call("policy_status")["processes"]]
             == ["second"], 10, "the new policy", daemon.log)
    assert daemon.call("policy_status")["requested_mode"] == "alert"


def test_policy_ops_bad_requests(make_daemon: Callable[..., RunningDaemon]) -> None:
    d = short_tmpdir()
    path = d / "policy.yaml"
    path.write_text("processes:\n  a:\n    match: {exe: /opt/a}\n")
    daemon = make_daemon(d, ("--policy", str(path)), '[policy]\nkernel = "off"\n')
    reply = raw_call(daemon.socket, "policy_violations", follow="yes")
    assert reply["error"]["code"] == "bad_request"
    if ROOT:
        reply = raw_call(daemon.socket, "policy_mode", mode="block")
        assert reply["error"]["code"] == "bad_request"
        assert "audit, alert or enforce" in reply["error"]["message"]
