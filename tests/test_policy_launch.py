"""`attyguard policy run`: a real daemon, a real seccomp filter, a real test program.

Each mode's answer to a blocked call (the x86-64 `unlinkat`, the ia32 `getppid`
through `int $0x80`) with the exact records, the call's effect (enforce: EPERM
and the file stays), a forked child under the same filter, the launch itself
with `execve` blocked, a mode switch at run time, failing closed (no daemon,
no entry), the daemon's death (ENOSYS), and hostile hand-overs."""

from __future__ import annotations

import array
import contextlib
import errno
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.daemon_harness import (
    ATTYGUARD,
    RunningDaemon,
    policy_records,
    remove_tmpdirs,
    short_tmpdir,
    wait_for,
)


def _seccomp_missing() -> str | None:
    from attyguard.policy.seccomp import unavailable_reason

    if sys.platform != "linux":
        return "seccomp is Linux only"
    return unavailable_reason()


pytestmark = pytest.mark.skipif(_seccomp_missing() is not None,
                                reason=str(_seccomp_missing()))


@pytest.fixture(autouse=True)
def _clean_tmpdirs() -> Iterator[None]:
    yield
    remove_tmpdirs()


PYTHON = os.path.realpath(sys.executable)

# argv: DIR [wait]. When asked, says it runs (DIR/ready) and waits for DIR/go.
# Then it unlinks DIR/victim through unlinkat, has a forked child unlink
# DIR/victim2, calls getppid through the ia32 entry, and writes what each call
# returned to DIR/results.
PROGRAM = r"""
import ctypes, json, mmap, os, sys, time
d = sys.argv[1]
if "wait" in sys.argv[2:]:
    open(os.path.join(d, "ready"), "w").close()
    while not os.path.exists(os.path.join(d, "go")):
        time.sleep(0.01)
dfd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)

def unlink(name):
    try:
        os.unlink(name, dir_fd=dfd)
        return 0
    except OSError as exc:
        return exc.errno

results = {"pid": os.getpid(), "unlinkat": unlink("victim")}
child = os.fork()
if child == 0:
    code = unlink("victim2")
    with open(os.path.join(d, "child"), "w") as f:
        json.dump({"pid": os.getpid(), "unlinkat": code}, f)
    os._exit(0)
os.waitpid(child, 0)
code = bytes([0xB8, 64, 0, 0, 0, 0xCD, 0x80, 0xC3])  # mov eax, 64; int 0x80; ret
buf = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
buf.write(code)
ia32 = ctypes.CFUNCTYPE(ctypes.c_int)(ctypes.addressof(ctypes.c_char.from_buffer(buf)))
results["ia32_getppid"] = ia32()
results["ppid"] = os.getppid()
with open(os.path.join(d, "results.tmp"), "w") as f:
    json.dump(results, f)
os.rename(os.path.join(d, "results.tmp"), os.path.join(d, "results"))
"""


def _setup(d: Path, mode: str) -> None:
    (d / "prog.py").write_text(PROGRAM)
    (d / "victim").write_text("v")
    (d / "victim2").write_text("v")
    (d / "policy.yaml").write_text(f"""\
mode: {mode}
processes:
  prog:
    match: {{exe: /nonexistent/agprog}}
    blocked_syscalls: [unlinkat, getppid, execve]
alerts:
  on_violation: ["jsonl:{d}/violations.jsonl"]
""")


def _launch(d: Path, daemon_socket: str, procs: list[subprocess.Popen[bytes]],
            *args: str, name: str = "prog") -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [str(ATTYGUARD), "policy", "run", name, "--socket", daemon_socket, "--",
         PYTHON, str(d / "prog.py"), str(d), *args],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    procs.append(proc)
    return proc


def _wait_listening(daemon: RunningDaemon) -> None:
    """Until the daemon holds the launch's seccomp listener."""
    def listening() -> bool:
        seccomp = daemon.call("policy_status")["seccomp"]
        return seccomp is not None and seccomp["listeners"] == 1
    wait_for(listening, 20, "the launch", daemon.log)


def _results(d: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    return (json.loads((d / "results").read_text()), json.loads((d / "child").read_text()))


ACTION = {"audit": "logged", "alert": "alerted", "enforce": "blocked"}


@pytest.mark.parametrize("mode", ["audit", "alert", "enforce"])
def test_blocked_calls_in_each_mode(mode: str, make_daemon: Callable[..., RunningDaemon],
                                    procs: list[subprocess.Popen[bytes]]) -> None:
    d = short_tmpdir()
    _setup(d, mode)
    daemon = make_daemon(d, ("--policy", str(d / "policy.yaml")))
    proc = _launch(d, daemon.socket, procs)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, (out, err, daemon.log())
    parent, child = _results(d)
    assert parent["pid"] == proc.pid  # the launcher became the command (exec, no fork)
    if mode == "enforce":  # refused, not run: both files are still there
        assert parent["unlinkat"] == child["unlinkat"] == errno.EPERM
        assert (d / "victim").exists() and (d / "victim2").exists()
        assert parent["ia32_getppid"] == -errno.EPERM
    else:  # recorded, and the call ran
        assert parent["unlinkat"] == child["unlinkat"] == 0
        assert not (d / "victim").exists() and not (d / "victim2").exists()
        assert parent["ia32_getppid"] == parent["ppid"] > 1
    base = {"process": "prog", "exe": PYTHON, "type": "syscall", "severity": "MEDIUM",
            "action": ACTION[mode], "mode": mode}
    expected = [
        {**base, "pid": parent["pid"], "detail": 'blocked syscall: unlinkat ("victim")'},
        {**base, "pid": child["pid"], "detail": 'blocked syscall: unlinkat ("victim2")'},
        {**base, "pid": parent["pid"], "detail": "blocked syscall: getppid (ia32)"},
        {**base, "pid": parent["pid"], "detail": "blocked syscall: getppid"},
    ]
    # Recorded after the answer, by another thread: wait for all four.
    wait_for(lambda: len(policy_records(daemon)) >= 4, 10, "four records", daemon.log)
    # The launcher's own blocked execve (the launch) is no violation.
    assert policy_records(daemon) == expected, daemon.log()
    status = daemon.call("policy_status")
    assert status["stats"]["by_type"] == {"syscall": 4}
    assert status["stats"]["blocked"] == (4 if mode == "enforce" else 0)
    assert status["seccomp"]["launched"] == 1 and status["seccomp"]["launcher_calls"] >= 1
    # Launched: no syscall tracepoint was attached for it.
    assert status["kernel"] is None or status["kernel"]["syscall_hooks"] == []
    text = subprocess.run([str(ATTYGUARD), "policy", "status", "--socket", daemon.socket],
                          capture_output=True, text=True, timeout=30).stdout
    refused = 4 if mode == "enforce" else 0
    assert "  policy run: 1 launched, " in text \
        and f"(refused {refused}, let run {4 - refused})" in text, text
    if mode == "audit":
        assert not (d / "violations.jsonl").exists()
    else:
        wait_for(lambda: (d / "violations.jsonl").exists()
                 and len((d / "violations.jsonl").read_text().splitlines()) == 4,
                 10, "the jsonl sink")
        sent = [json.loads(x) for x in (d / "violations.jsonl").read_text().splitlines()]
        assert [{k: v for k, v in r.items() if k != "timestamp"} for r in sent] == expected


def test_mode_switch_applies_to_a_running_launch(make_daemon: Callable[..., RunningDaemon],
                                                 procs: list[subprocess.Popen[bytes]]) -> None:
    d = short_tmpdir()
    _setup(d, "audit")
    daemon = make_daemon(d, ("--policy", str(d / "policy.yaml")))
    proc = _launch(d, daemon.socket, procs, "wait")
    _wait_listening(daemon)
    assert daemon.call("policy_mode", mode="enforce")["mode"] == "enforce"
    (d / "go").write_text("")
    assert proc.wait(30) == 0, daemon.log()
    parent, child = _results(d)
    assert parent["unlinkat"] == child["unlinkat"] == errno.EPERM
    assert (d / "victim").exists()
    wait_for(lambda: len(policy_records(daemon)) >= 4, 10, "four records", daemon.log)
    assert {r["action"] for r in policy_records(daemon)} == {"blocked"}


def test_daemon_death_fails_blocked_calls_with_enosys(
        make_daemon: Callable[..., RunningDaemon],
        procs: list[subprocess.Popen[bytes]]) -> None:
    d = short_tmpdir()
    _setup(d, "audit")
    daemon = make_daemon(d, ("--policy", str(d / "policy.yaml")))
    proc = _launch(d, daemon.socket, procs, "wait")
    _wait_listening(daemon)
    # The launcher's own execve is one of the blocked calls the daemon answers: kill
    # the daemon only once the program runs, or that exec fails instead (exit 127).
    wait_for(lambda: (d / "ready").exists(), 20, "the program to start", daemon.log)
    daemon.signal(signal.SIGKILL)
    assert daemon.proc is not None
    daemon.proc.wait(10)
    (d / "go").write_text("")
    assert proc.wait(30) == 0
    parent, child = _results(d)
    # Nobody holds the listener: the kernel fails the blocked calls; nothing ran.
    assert parent["unlinkat"] == child["unlinkat"] == errno.ENOSYS
    assert (d / "victim").exists() and (d / "victim2").exists()
    assert parent["ia32_getppid"] == -errno.ENOSYS


def test_no_daemon_fails_closed(procs: list[subprocess.Popen[bytes]]) -> None:
    d = short_tmpdir()
    _setup(d, "audit")
    proc = _launch(d, str(d / "nothing.sock"), procs)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 3
    lines = err.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("attyguard policy: no daemon at ") \
        and lines[0].endswith("; not started"), lines
    assert not (d / "results").exists() and (d / "victim").exists()


def test_unknown_entry_fails_closed(make_daemon: Callable[..., RunningDaemon],
                                    procs: list[subprocess.Popen[bytes]]) -> None:
    d = short_tmpdir()
    _setup(d, "audit")
    daemon = make_daemon(d, ("--policy", str(d / "policy.yaml")))
    proc = _launch(d, daemon.socket, procs, name="nosuch")
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 3
    assert err.decode() == ("attyguard policy: the daemon refused: no process entry 'nosuch' "
                            "in the policy; not started\n")
    assert not (d / "results").exists()


def _hand_in(path: str, fds: list[int], payload: bytes = b"F") -> dict[str, Any]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(path)
        s.sendall(b'{"v":1,"id":7,"op":"policy_launch","name":"prog"}\n')
        first = s.makefile("rb").readline()
        assert json.loads(first)["send_fd"] is True
        if fds:
            s.sendmsg([payload], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])
        else:
            s.sendall(payload)
        data = b""
        while not data.endswith(b"\n"):
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    lines = data.splitlines()
    assert len(lines) == 1, data
    return dict(json.loads(lines[0]))


def test_hostile_hand_overs_get_one_line_and_the_daemon_lives(
        make_daemon: Callable[..., RunningDaemon]) -> None:
    d = short_tmpdir()
    _setup(d, "enforce")
    daemon = make_daemon(d, ("--policy", str(d / "policy.yaml")))
    r, w = os.pipe()
    try:
        cases = [
            ([r], "policy_launch: the descriptor is not a seccomp listener"),
            ([], "policy_launch: expected one descriptor, got 0"),
            ([r, w], "policy_launch: expected one descriptor, got 2"),
        ]
        for fds, message in cases:
            reply = _hand_in(daemon.socket, fds)
            assert reply["ok"] is False and reply["error"]["message"] == message, reply
    finally:
        os.close(r)
        os.close(w)
    assert daemon.call("status")["ok"]
    assert daemon.call("policy_status")["seccomp"] is None  # nothing was taken


def test_an_x32_call_kills_the_process(make_daemon: Callable[..., RunningDaemon],
                                       procs: list[subprocess.Popen[bytes]]) -> None:
    """The x32 ABI (nr | 0x40000000 on the x86-64 entry) cannot be judged by name:
    the filter kills the process rather than let it slip past (audit mode too)."""
    d = short_tmpdir()
    _setup(d, "audit")
    (d / "prog.py").write_text(
        "import ctypes, sys\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "open(sys.argv[1] + '/before', 'w').close()\n"
        "libc.syscall(0x40000000 | 263, -100, b'victim', 0)  # x32 unlinkat\n"
        "open(sys.argv[1] + '/after', 'w').close()\n")
    daemon = make_daemon(d, ("--policy", str(d / "policy.yaml")))
    proc = _launch(d, daemon.socket, procs)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGSYS
    assert (d / "before").exists() and not (d / "after").exists()
    assert (d / "victim").exists()


def test_reload_applies_to_a_running_launch(make_daemon: Callable[..., RunningDaemon],
                                            procs: list[subprocess.Popen[bytes]]) -> None:
    """SIGHUP: the new mode applies; a call the new entry no longer blocks runs
    unrecorded (a filter cannot change: a call newly named is not caught)."""
    d = short_tmpdir()
    _setup(d, "audit")
    daemon = make_daemon(d, ("--policy", str(d / "policy.yaml")))
    proc = _launch(d, daemon.socket, procs, "wait")
    _wait_listening(daemon)
    text = (d / "policy.yaml").read_text().replace("mode: audit", "mode: enforce") \
        .replace("[unlinkat, getppid, execve]", "[getppid]")
    (d / "policy.yaml").write_text(text)
    daemon.signal(signal.SIGHUP)
    wait_for(lambda: daemon.call("policy_status")["mode"] == "enforce", 20, "the reload",
             daemon.log)
    (d / "go").write_text("")
    assert proc.wait(30) == 0, daemon.log()
    parent, child = _results(d)
    assert parent["unlinkat"] == child["unlinkat"] == 0  # no longer blocked: it ran
    assert parent["ia32_getppid"] == -errno.EPERM
    wait_for(lambda: len(policy_records(daemon)) >= 2, 10, "two records", daemon.log)
    assert [(r["detail"], r["action"]) for r in policy_records(daemon)] == [
        ("blocked syscall: getppid (ia32)", "blocked"), ("blocked syscall: getppid", "blocked")]


@pytest.mark.skipif(os.geteuid() != 0, reason="the kernel backend needs root")
def test_a_launched_process_keeps_its_file_rules(make_daemon: Callable[..., RunningDaemon],
                                                 procs: list[subprocess.Popen[bytes]]) -> None:
    """File rules of a launched process come from the kernel's open tracepoints (its
    entry's `policy run` variant), its syscalls from seccomp: no tracepoint for them."""
    from tests.kernel_support import bpf_missing_reason

    if bpf_missing_reason() is not None:
        pytest.skip(str(bpf_missing_reason()))
    d = short_tmpdir()
    _setup(d, "audit")
    (d / "policy.yaml").write_text(f"""\
mode: audit
processes:
  prog:
    match: {{exe: /nonexistent/agprog}}
    blocked_syscalls: [getpriority]
    blocked_files: ["{d}/secret"]
""")
    (d / "secret").write_text("s")
    (d / "prog.py").write_text(
        "import os, sys, time\n"
        "d = sys.argv[1]\n"
        "while not os.path.exists(d + '/go'):\n"
        "    time.sleep(0.01)\n"
        "open(d + '/secret').close()\n"
        "os.getpriority(os.PRIO_PROCESS, 0)\n"
        "open(d + '/done', 'w').close()\n"
        "while True:\n"
        "    time.sleep(0.05)\n")
    daemon = make_daemon(d, ("--policy", str(d / "policy.yaml")))
    proc = _launch(d, daemon.socket, procs)

    def hooks() -> list[str]:
        return list(daemon.call("policy_status")["kernel"]["syscall_hooks"])
    wait_for(lambda: hooks() != [], 20, "the open hooks for the launched process", daemon.log)
    assert hooks() == ["syscalls/sys_enter_open", "syscalls/sys_enter_openat",
                       "syscalls/sys_enter_openat2"]
    (d / "go").write_text("")
    wait_for(lambda: (d / "done").exists() and len(policy_records(daemon)) >= 2, 20,
             "two records", daemon.log)
    base = {"process": "prog", "exe": PYTHON, "pid": proc.pid, "action": "logged",
            "mode": "audit"}
    assert sorted(policy_records(daemon), key=lambda r: r["type"]) == [
        {**base, "type": "file", "detail": f"blocked file access: {d}/secret (pattern "
         f"{d}/secret)", "severity": "HIGH"},
        {**base, "type": "syscall", "detail": "blocked syscall: getpriority",
         "severity": "MEDIUM"}]


def test_a_non_root_member_of_the_group_may_launch(
        make_daemon: Callable[..., RunningDaemon],
        procs: list[subprocess.Popen[bytes]]) -> None:
    """policy run needs no root (no_new_privs): a user the daemon's socket admits
    launches, and the filter binds that user's program all the same, up to
    `[policy] launches_per_user` live launches."""
    import shutil

    setpriv = shutil.which("setpriv")
    if os.geteuid() != 0 or setpriv is None:
        pytest.skip("needs root and setpriv (util-linux) to run the launcher as nobody")
    drop = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"]
    # The command: an interpreter nobody can run (the venv's may live under /root).
    python = next((p for p in ("/usr/bin/python3", PYTHON) if subprocess.run(
        [*drop, p, "-c", "pass"], capture_output=True).returncode == 0), None)
    if python is None or subprocess.run([*drop, str(ATTYGUARD), "--help"],
                                        capture_output=True).returncode != 0:
        pytest.skip("no interpreter that nobody can run here")
    d = short_tmpdir()
    _setup(d, "enforce")
    os.chmod(d, 0o777)
    for name in ("victim", "victim2"):
        os.chown(d / name, 65534, 65534)
    daemon = make_daemon(d, ("--policy", str(d / "policy.yaml")),
                         '[daemon]\ngroup = "nogroup"\n[policy]\nlaunches_per_user = 1\n')
    run_as_nobody = [*drop, str(ATTYGUARD), "policy", "run", "prog", "--socket",
                     daemon.socket, "--", python, str(d / "prog.py"), str(d)]
    proc = subprocess.Popen([*run_as_nobody, "wait"], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    procs.append(proc)
    _wait_listening(daemon)
    # One live launch is that user's limit here: a second is refused, and not run.
    second = subprocess.run([*run_as_nobody, "second"], stdin=subprocess.DEVNULL,
                            capture_output=True, text=True, timeout=30)
    assert second.returncode == 3, (second, daemon.log())
    assert "uid 65534 already has 1 policy run processes" in second.stderr
    assert len(second.stderr.strip().splitlines()) == 1
    (d / "go").write_text("")
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, (out, err, daemon.log())
    parent, child = _results(d)
    assert parent["unlinkat"] == child["unlinkat"] == errno.EPERM
    assert (d / "victim").exists() and (d / "victim2").exists()
    wait_for(lambda: len(policy_records(daemon)) >= 4, 10, "four records", daemon.log)
    assert {(r["pid"], r["action"]) for r in policy_records(daemon)} == {
        (parent["pid"], "blocked"), (child["pid"], "blocked")}
    assert "runs " in daemon.log() and "(uid 65534)" in daemon.log()


def test_an_entry_without_blocked_syscalls_is_refused(
        make_daemon: Callable[..., RunningDaemon],
        procs: list[subprocess.Popen[bytes]]) -> None:
    d = short_tmpdir()
    _setup(d, "enforce")
    (d / "policy.yaml").write_text("processes:\n  quiet:\n    match: {exe: /opt/quiet}\n"
                                   "    max_memory_mb: 100\n")
    daemon = make_daemon(d, ("--policy", str(d / "policy.yaml")))
    proc = _launch(d, daemon.socket, procs, name="quiet")
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 3
    assert err.decode() == ("attyguard policy: the daemon refused: process entry 'quiet' "
                            "blocks no syscalls: nothing for policy run to do (its processes "
                            "are watched by match.exe); not started\n")
    assert not (d / "results").exists()


def test_a_command_that_cannot_be_run_exits_127(make_daemon: Callable[..., RunningDaemon],
                                                procs: list[subprocess.Popen[bytes]]) -> None:
    d = short_tmpdir()
    _setup(d, "enforce")
    daemon = make_daemon(d, ("--policy", str(d / "policy.yaml")))
    proc = subprocess.Popen([str(ATTYGUARD), "policy", "run", "prog", "--socket",
                             daemon.socket, "--", str(d / "missing")],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    procs.append(proc)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 127
    assert err.decode() == f"attyguard policy: {d}/missing: No such file or directory\n"
    # Its filter has no process left: the daemon drops the listener.
    wait_for(lambda: daemon.call("policy_status")["seccomp"]["listeners"] == 0, 10,
             "the listener dropped", daemon.log)


def test_a_stalled_sink_never_holds_a_blocked_call(
        make_daemon: Callable[..., RunningDaemon],
        procs: list[subprocess.Popen[bytes]]) -> None:
    """The answer comes before the record: with the webhook sink holding its first
    POST unanswered, the program's blocked calls all return and it finishes."""
    import threading

    release = threading.Event()
    got: list[bytes] = []
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()

    def hold() -> None:
        conn, _ = server.accept()
        with conn:
            got.append(conn.recv(65536))
            release.wait(30)

    holder = threading.Thread(target=hold, daemon=True)
    holder.start()
    try:
        d = short_tmpdir()
        _setup(d, "alert")
        text = (d / "policy.yaml").read_text().replace(
            f'"jsonl:{d}/violations.jsonl"',
            f'"webhook:http://127.0.0.1:{server.getsockname()[1]}/hook"')
        (d / "policy.yaml").write_text(text)
        daemon = make_daemon(d, ("--policy", str(d / "policy.yaml")))
        first = _launch(d, daemon.socket, procs)
        assert first.wait(30) == 0, daemon.log()
        wait_for(lambda: got, 10, "the webhook's first POST")  # now the sink is stuck
        for name in ("victim", "victim2", "results", "child"):
            with contextlib.suppress(FileNotFoundError):
                (d / name).unlink()
        (d / "victim").write_text("v")
        (d / "victim2").write_text("v")
        second = _launch(d, daemon.socket, procs)
        assert second.wait(30) == 0, daemon.log()
        assert holder.is_alive()  # the POST is still held while the calls returned
        parent, _child = _results(d)
        assert parent["pid"] == second.pid
        assert parent["unlinkat"] == 0 and not (d / "victim").exists()
        wait_for(lambda: len(policy_records(daemon)) >= 8, 10, "eight records", daemon.log)
    finally:
        release.set()
        server.close()
        holder.join(10)
