"""The policy's kernel checks (policy.bpf.o through the kernel layer's loader) in the
real daemon, in each mode, against a real test program: syscalls, file opens and
connects recorded with exact records; a blocked syscall killed in enforce; memory
over its limit killed in enforce; the sinks fed in alert mode."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.daemon_harness import (
    RunningDaemon,
    policy_records,
    remove_tmpdirs,
    short_tmpdir,
    wait_for,
)
from tests.kernel_support import bpf_missing_reason

pytestmark = pytest.mark.skipif(bpf_missing_reason() is not None,
                                reason=str(bpf_missing_reason()))


@pytest.fixture(autouse=True)
def _clean_tmpdirs() -> Iterator[None]:
    yield
    remove_tmpdirs()


PROGRAM = r"""
import os, socket, sys, time
d, ready, what = sys.argv[1], sys.argv[2], sys.argv[3:]
if "file" in what:
    try:
        open(os.path.join(d, "secret", "key")).close()
    except PermissionError:  # enforce: the file gate refuses it
        pass
if "net" in what:
    for family, address in ((socket.AF_INET, ("127.0.0.1", 9)), (socket.AF_INET6, ("::1", 9))):
        with socket.socket(family) as s:
            s.connect_ex(address)
if "memory" in what:
    hog = b"x" * (80 << 20)
if "connects" in what:
    results = []
    for target in (("127.0.0.1", 9), ("127.0.0.1", int(os.environ["AG_PORT"]))):
        with socket.socket() as s:
            results.append(s.connect_ex(target))
    with open(os.path.join(d, "connects"), "w") as f:
        f.write(repr(results))
if "exec" in what:
    child = os.fork()
    if child == 0:
        try:
            os.execv("/usr/bin/tail", ["tail", "-f", "/dev/null"])
        except OSError as exc:
            os._exit(100 + exc.errno)
    with open(os.path.join(d, "child"), "w") as f:
        f.write(str(child))
    def reap():
        _, status = os.waitpid(child, 0)
        with open(os.path.join(d, "child-status.tmp"), "w") as f:
            f.write(str(os.waitstatus_to_exitcode(status)))
        os.rename(os.path.join(d, "child-status.tmp"), os.path.join(d, "child-status"))
    import threading
    threading.Thread(target=reap, daemon=True).start()
with open(ready + ".tmp", "w") as f:
    f.write("ok")
os.rename(ready + ".tmp", ready)
if "syscall" in what:
    os.getpriority(os.PRIO_PROCESS, 0)
while True:
    time.sleep(0.05)
"""


def _setup(d: Path, mode: str) -> Path:
    exe = d / "agprog"
    shutil.copy(os.path.realpath(sys.executable), exe)
    exe.chmod(0o755)
    (d / "secret").mkdir()
    (d / "secret" / "key").write_text("k")
    (d / "prog.py").write_text(PROGRAM)
    (d / "policy.yaml").write_text(f"""\
mode: {mode}
processes:
  prog:
    match: {{exe: {exe}}}
    blocked_syscalls: [getpriority, ptrace]
    blocked_files: ["{d}/secret/*"]
    allowed_network: ["127.0.0.0/8"]
    blocked_network: ["127.0.0.0/8:9"]
    max_memory_mb: 40
alerts:
  on_violation: ["jsonl:{d}/violations.jsonl"]
""")
    return exe


def _run(d: Path, exe: Path, procs: list[subprocess.Popen[bytes]], *what: str,
         env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    ready = d / f"ready-{len(procs)}"
    proc = subprocess.Popen([str(exe), str(d / "prog.py"), str(d), str(ready), *what],
                            stdin=subprocess.DEVNULL, env={**os.environ, **(env or {})})
    procs.append(proc)
    wait_for(lambda: ready.exists() or proc.poll() is not None, 20, "the program")
    return proc


ACTIONS = {  # mode -> (action of a stoppable violation, of one not stoppable here)
    "audit": ("logged", "logged"),
    "alert": ("alerted", "alerted"),
    "enforce": ("blocked", "alerted"),
}


@pytest.mark.parametrize("mode", ["audit", "alert", "enforce"])
def test_kernel_checks_in_each_mode(mode: str, make_daemon: Callable[..., RunningDaemon],
                                    procs: list[subprocess.Popen[bytes]]) -> None:
    d = short_tmpdir()
    exe = _setup(d, mode)
    daemon = make_daemon(d, ("--policy", str(d / "policy.yaml")),
                         "[policy]\nsample_interval_s = 0.05\n")
    status = daemon.call("policy_status")
    assert status["backend"] == "kernel", (status, daemon.log())
    assert status["mode"] == mode and status["blind"] == []
    assert status["blockable"] == (["file"] if mode == "enforce" else []) + [
        "network", "resource", "syscall"]
    # No process of the entry alive yet: no syscall hook (every process would pay it).
    assert sorted(status["kernel"]["programs"]) == ["agp_connect4", "agp_connect6", "agp_exec",
                                                    "agp_exit", "agp_fork"]
    assert status["kernel"]["syscall_hooks"] == []

    proc = _run(d, exe, procs, "file", "net", "syscall")
    stoppable, _ = ACTIONS[mode]
    stopped = stoppable  # connects: refused by cgroup/connect4/6 in enforce
    base = {"process": "prog", "exe": str(exe), "pid": proc.pid, "mode": mode}
    expected = [  # files: refused by the file gate (fanotify FAN_OPEN_PERM) in enforce
        {**base, "type": "file", "detail": f"blocked file access: {d}/secret/key "
         f"(pattern {d}/secret/*)", "severity": "HIGH", "action": stoppable},
        {**base, "type": "network", "detail": "connect to 127.0.0.1:9 matches "
         "blocked_network 127.0.0.0/8:9", "severity": "HIGH", "action": stopped},
        {**base, "type": "network", "detail": "connect to [::1]:9 outside allowed_network",
         "severity": "HIGH", "action": stopped},
        {**base, "type": "syscall", "detail": "blocked syscall: getpriority" + (
            " (process killed at syscall entry; the call itself was not refused)"
            if mode == "enforce" else ""), "severity": "MEDIUM", "action": stoppable},
    ]
    wait_for(lambda: len(policy_records(daemon)) >= 4, 20, "four violations", daemon.log)

    def by_detail(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        # In enforce the file gate records from its own thread: its record and the
        # tracepoint's reach the ring in either order.
        return sorted(records, key=lambda r: (r["type"], r["detail"]))

    assert by_detail(policy_records(daemon)) == by_detail(expected)
    if mode == "enforce":
        assert proc.wait(10) == -signal.SIGKILL  # killed at the blocked syscall
        assert daemon.call("policy_status")["kernel"]["connect_denied"] == 2
    else:
        assert proc.poll() is None  # audit and alert never stop it
        hooks = daemon.call("policy_status")["kernel"]["syscall_hooks"]
        assert hooks == ["syscalls/sys_enter_connect", "syscalls/sys_enter_getpriority",
                         "syscalls/sys_enter_open", "syscalls/sys_enter_openat",
                         "syscalls/sys_enter_openat2", "syscalls/sys_enter_ptrace"]
    if mode == "audit":
        assert not (d / "violations.jsonl").exists()  # audit sends nothing
    else:
        wait_for(lambda: (d / "violations.jsonl").exists()
                 and len((d / "violations.jsonl").read_text().splitlines()) == 4,
                 10, "the jsonl sink")
        sent = [json.loads(x) for x in (d / "violations.jsonl").read_text().splitlines()]
        assert by_detail([{k: v for k, v in r.items() if k != "timestamp"}
                          for r in sent]) == by_detail(expected)


def test_unwatched_processes_are_not_judged(make_daemon: Callable[..., RunningDaemon],
                                            procs: list[subprocess.Popen[bytes]]) -> None:
    d = short_tmpdir()
    _setup(d, "enforce")
    daemon = make_daemon(d, ("--policy", str(d / "policy.yaml")))
    # The same program under the real interpreter's path: not the watched executable.
    proc = _run(d, Path(os.path.realpath(sys.executable)), procs, "file", "net", "syscall")
    probe = _run(d, d / "agprog", procs)  # a watched one, as a marker that events flow
    os.kill(probe.pid, signal.SIGSTOP)
    wait_for(lambda: daemon.call("policy_status")["processes"][0]["watched"] >= 1, 10,
             "the watched marker")
    assert proc.poll() is None
    assert policy_records(daemon) == []


def test_children_inherit_in_the_kernel(make_daemon: Callable[..., RunningDaemon],
                                        procs: list[subprocess.Popen[bytes]]) -> None:
    d = short_tmpdir()
    exe = _setup(d, "audit")
    (d / "parent.py").write_text(
        "import os, sys, time\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    os.getpriority(os.PRIO_PROCESS, 0)\n"
        "    os._exit(0)\n"
        "os.waitpid(pid, 0)\n"
        # written whole, then renamed: the test waits for the name to appear
        "open(sys.argv[1] + '.tmp', 'w').write(str(pid))\n"
        "os.rename(sys.argv[1] + '.tmp', sys.argv[1])\n"
        "time.sleep(60)\n")
    daemon = make_daemon(d, ("--policy", str(d / "policy.yaml")))
    out = d / "child"
    proc = subprocess.Popen([str(exe), str(d / "parent.py"), str(out)])
    procs.append(proc)
    wait_for(out.exists, 20, "the child")
    child = int(out.read_text())
    wait_for(lambda: policy_records(daemon), 10, "the child's violation", daemon.log)
    assert policy_records(daemon) == [{"process": "prog", "exe": str(exe), "pid": child,
                                 "type": "syscall", "detail": "blocked syscall: getpriority",
                                 "severity": "MEDIUM", "action": "logged", "mode": "audit"}]


def test_memory_limit_kills_in_enforce(make_daemon: Callable[..., RunningDaemon],
                                       procs: list[subprocess.Popen[bytes]]) -> None:
    d = short_tmpdir()
    exe = _setup(d, "enforce")
    daemon = make_daemon(d, ("--policy", str(d / "policy.yaml")),
                         "[policy]\nsample_interval_s = 0.05\n")
    proc = _run(d, exe, procs, "memory")
    assert proc.wait(20) == -signal.SIGKILL
    (record,) = policy_records(daemon)
    assert record["type"] == "resource" and record["action"] == "blocked"
    assert record["detail"].startswith("memory limit exceeded: ")
    assert record["detail"].endswith(" > 40MB")


def test_mode_switch_reaches_the_kernel(make_daemon: Callable[..., RunningDaemon],
                                        procs: list[subprocess.Popen[bytes]]) -> None:
    d = short_tmpdir()
    exe = _setup(d, "audit")
    daemon = make_daemon(d, ("--policy", str(d / "policy.yaml")))
    reply = daemon.call("policy_mode", mode="enforce")
    assert reply["ok"] and (reply["mode"], reply["previous"]) == ("enforce", "audit")
    proc = _run(d, exe, procs, "syscall")
    assert proc.wait(10) == -signal.SIGKILL
    assert [r["action"] for r in policy_records(daemon)] == ["blocked"]


@pytest.mark.parametrize(("struct", "mirror"), [
    ("agp_hdr", "Hdr"), ("agp_syscall", "SyscallRec"), ("agp_open", "OpenRec"),
    ("agp_connect", "ConnectRec"), ("agp_exec", "ExecRec"),
    ("agp_blocked_key", "BlockedKey"), ("agp_inode_key", "InodeKey"),
])
def test_ctypes_mirror_matches_btf(struct: str, mirror: str) -> None:
    import ctypes

    from attyguard.kernel.bpf import BpfObject
    from attyguard.policy import kernel

    with BpfObject.open(kernel.OBJECT) as obj:
        assert obj.btf_type_size(struct) == ctypes.sizeof(getattr(kernel, mirror))


def test_committed_object_matches_its_sources() -> None:
    from attyguard.kernel import build

    stamp = build.stamp_path("policy.bpf.o").read_text().strip()
    assert stamp == build.source_digest("policy.bpf.o"), \
        "policy.bpf.o is stale: python -m attyguard.kernel.build"


@pytest.mark.parametrize("mode", ["audit", "enforce"])
def test_exec_outside_allowed_exec_at_the_exec_gate(
        mode: str, make_daemon: Callable[..., RunningDaemon],
        procs: list[subprocess.Popen[bytes]]) -> None:
    d = short_tmpdir()
    exe = _setup(d, mode)
    policy = d / "policy.yaml"
    policy.write_text(policy.read_text().replace("    max_memory_mb: 40\n",
                                                 "    max_memory_mb: 40\n"
                                                 "    allowed_exec: [sleep]\n"))
    daemon = make_daemon(d, ("--policy", str(policy), "--ebpf-mode", "enforce"))
    status = daemon.call("status")
    if status["exec"].get("rung") not in ("fanotify", "lsm"):
        pytest.fail(f"no permission rung for execs here: {status['exec']}")
    # The gate is there in every mode; only enforce uses it.
    assert daemon.call("policy_status")["blockable"] == [
        "exec", *(["file"] if mode == "enforce" else []), "network", "resource", "syscall"]
    proc = _run(d, exe, procs, "exec")
    child = int((d / "child").read_text())
    try:
        wait_for(lambda: policy_records(daemon), 20, "the exec violation", daemon.log)
        assert policy_records(daemon) == [{
            "process": "prog", "exe": str(exe), "pid": child, "type": "exec",
            "detail": "exec of /usr/bin/tail not in allowed_exec", "severity": "HIGH",
            "action": "blocked" if mode == "enforce" else "logged", "mode": mode}]
        if mode == "enforce":
            # execv failed with EPERM in the child; the program itself lives on.
            wait_for((d / "child-status").exists, 10, "the refused child to exit", daemon.log)
            assert (d / "child-status").read_text() == str(100 + 1)
            assert proc.poll() is None
        else:
            assert os.readlink(f"/proc/{child}/exe") == "/usr/bin/tail"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGKILL)


def test_no_syscall_hook_without_a_rule_that_needs_it(
        make_daemon: Callable[..., RunningDaemon]) -> None:
    # Every syscall of every process pays for the sys_enter hook: a policy of
    # exec and resource rules only must not install it.
    d = short_tmpdir()
    (d / "policy.yaml").write_text("processes:\n  p:\n    match: {exe: /opt/p}\n"
                                   "    allowed_exec: [sh]\n    max_memory_mb: 10\n")
    daemon = make_daemon(d, ("--policy", str(d / "policy.yaml")))
    status = daemon.call("policy_status")
    assert status["backend"] == "kernel", daemon.log()
    assert sorted(status["kernel"]["programs"]) == ["agp_connect4", "agp_connect6", "agp_exec",
                                                    "agp_exit", "agp_fork"]


@pytest.mark.parametrize("mode", ["alert", "enforce"])
def test_connects_refused_in_the_kernel_only_in_enforce(
        mode: str, make_daemon: Callable[..., RunningDaemon],
        procs: list[subprocess.Popen[bytes]]) -> None:
    import errno
    import socket

    d = short_tmpdir()
    exe = _setup(d, mode)
    daemon = make_daemon(d, ("--policy", str(d / "policy.yaml")))
    with socket.socket() as listener:  # an allowed destination that accepts
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        port = listener.getsockname()[1]
        _run(d, exe, procs, "connects", env={"AG_PORT": str(port)})
        refused = errno.EPERM if mode == "enforce" else errno.ECONNREFUSED
        assert eval((d / "connects").read_text()) == [refused, 0]
    records = policy_records(daemon)
    assert [(r["detail"], r["action"]) for r in records] == [
        ("connect to 127.0.0.1:9 matches blocked_network 127.0.0.0/8:9",
         "blocked" if mode == "enforce" else "alerted")]


@pytest.mark.parametrize(("rules", "expected"), [
    # (prefixlen, family, first address bytes, port ranges or None for any)
    (["10.0.0.0/8:443"], [(24, 4, b"\x0a", [(443, 443)])]),
    (["10.0.0.0/8:443", "10.1.0.0/16:80-90"],
     [(24, 4, b"\x0a", [(443, 443)]), (32, 4, b"\x0a\x01", [(80, 90), (443, 443)])]),
    (["*:53", "[fd00::/8]:443"], [(8, 0, b"", [(53, 53)]),
                                  (24, 6, b"\xfd", [(53, 53), (443, 443)])]),
    (["10.0.0.0/8", "10.1.0.0/16:80"], [(24, 4, b"\x0a", None), (32, 4, b"\x0a\x01", None)]),
])
def test_lpm_entries_merge_containing_prefixes(
        rules: list[str], expected: list[tuple[int, int, bytes, list[tuple[int, int]] | None]]
) -> None:
    from attyguard.policy.kernel import lpm_entries
    from attyguard.policy.load import parse_net_rule

    got = []
    for key, value in lpm_entries(3, [parse_net_rule(r) for r in rules]):
        assert key.entry == 3
        ranges = None if value.nranges == 0 else \
            [(value.lo[i], value.hi[i]) for i in range(value.nranges)]
        addr = bytes(key.addr)
        got.append((key.prefixlen, key.family, addr[: len(addr.rstrip(b"\0"))], ranges))
    assert sorted(got, key=lambda g: g[0]) == expected


def test_shell_sink_reaches_a_warn_subscriber(make_daemon: Callable[..., RunningDaemon],
                                              procs: list[subprocess.Popen[bytes]]) -> None:
    import socket

    d = short_tmpdir()
    exe = _setup(d, "alert")
    policy = d / "policy.yaml"
    policy.write_text(policy.read_text().replace(f'["jsonl:{d}/violations.jsonl"]',
                                                 '[shell]'))
    daemon = make_daemon(d, ("--policy", str(policy)))
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sub:
        sub.settimeout(20)
        sub.connect(daemon.socket)
        sub.sendall(b'{"v": 1, "id": 1, "op": "subscribe"}\n')
        reader = sub.makefile("r")
        assert json.loads(reader.readline())["subscribed"] is True
        proc = _run(d, exe, procs, "syscall")
        event = json.loads(reader.readline())  # the subscription's next line
    assert event["event"] == "warn" and event["pid"] == proc.pid
    assert event["text"] == "policy prog: syscall alerted — blocked syscall: getpriority"
