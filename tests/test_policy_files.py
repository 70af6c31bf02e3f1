"""The file check against the real kernel: in enforce the file gate (fanotify
FAN_OPEN_PERM, attyguard/policy/files.py) refuses a watched process's open with
EPERM and records it once; in audit and alert the open goes through and the
syscall tracepoint records it. Plus the fast path for unwatched processes, the
answer deadline, a mode switch and a reload re-marking, and a daemon killed
with an open waiting on it."""

from __future__ import annotations

import contextlib
import errno
import os
import select
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from attyguard.kernel.fanotify import fanotify_unavailable_reason
from tests.daemon_harness import (
    RunningDaemon,
    policy_records,
    remove_tmpdirs,
    short_tmpdir,
    wait_for,
)
from tests.kernel_support import bpf_missing_reason

_ABSENT = bpf_missing_reason() or fanotify_unavailable_reason()
pytestmark = pytest.mark.skipif(_ABSENT is not None, reason=str(_ABSENT))


@pytest.fixture(autouse=True)
def _clean_tmpdirs() -> Iterator[None]:
    yield
    remove_tmpdirs()


# The test program: one command a line on stdin, one answer a line on stdout.
#   open PATH        -> "PID ok" | "PID <errno>"
#   fork PATH        -> a child says "CHILD_PID ready", waits for one more line, opens
#                       PATH, says "CHILD_PID ok|<errno>" and exits
#   forknow PATH     -> a child opens PATH at once, says "CHILD_PID ok|<errno>", exits
PROGRAM = r"""
import os, sys
def opened(path):
    try:
        with open(path) as f:
            f.read()
        return "ok"
    except OSError as exc:
        return str(exc.errno)
def say(text):
    sys.stdout.write(text + "\n")
    sys.stdout.flush()
for line in sys.stdin:
    what, _, path = line.strip().partition(" ")
    if what == "open":
        say(f"{os.getpid()} {opened(path)}")
    elif what == "fork":
        child = os.fork()
        if child == 0:
            say(f"{os.getpid()} ready")
            sys.stdin.readline()
            say(f"{os.getpid()} {opened(path)}")
            os._exit(0)
        os.waitpid(child, 0)
    elif what == "forknow":
        child = os.fork()
        if child == 0:
            say(f"{os.getpid()} {opened(path)}")
            os._exit(0)
        os.waitpid(child, 0)
"""

ACTION = {"audit": "logged", "alert": "alerted", "enforce": "blocked"}


class Program:
    def __init__(self, exe: Path, script: Path, procs: list[subprocess.Popen[bytes]]) -> None:
        self.proc = subprocess.Popen([str(exe), str(script)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE)
        procs.append(self.proc)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    def reply(self, timeout: float = 20.0) -> tuple[int, str]:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        assert ready, "the test program did not answer in time"
        pid, _, result = self.proc.stdout.readline().decode().strip().partition(" ")
        return int(pid), result

    def open(self, path: Path | str) -> str:
        self.send(f"open {path}")
        pid, result = self.reply()
        assert pid == self.pid
        return result


def _setup(d: Path, mode: str, rules: str, outside: Path,
           blocked: str = "") -> tuple[Path, Path]:
    exe = d / "agprog"
    shutil.copy(os.path.realpath(sys.executable), exe)
    exe.chmod(0o755)
    for sub in ("secret", "open"):
        (d / sub).mkdir()
    for name in ("secret/key", "secret/marker", "open/ok.txt"):
        (d / name).write_text("x")
    for name in ("outside.txt", "marker.txt"):
        (outside / name).write_text("x")
    script = d / "prog.py"
    script.write_text(PROGRAM)
    if rules == "blocked":
        files = f'    blocked_files: ["{blocked or f"{d}/secret/*"}"]\n'
    else:
        # Everything the interpreter reads at start, and the test's own directory.
        prefix = Path(os.path.realpath(sys.executable)).parents[1]  # the interpreter's tree
        files = ('    allowed_files: ["/usr/**", "/etc/**", "/lib/**", "/lib64/**", '
                 f'"/proc/**", "/sys/**", "/dev/**", "{prefix}/**", "{d}/**", '
                 # the interpreter looks for it beside its own directory
                 '"/tmp/pyvenv.cfg"]\n')
    (d / "policy.yaml").write_text(
        f"mode: {mode}\nprocesses:\n  prog:\n    match: {{exe: {exe}}}\n{files}"
        f'alerts:\n  on_violation: ["jsonl:{d}/violations.jsonl"]\n')
    return exe, script


def _targets(d: Path, rules: str, outside: Path) -> tuple[list[Path], list[str], str]:
    """The files the rules forbid (two that exist, one that does not), their details,
    the severity."""
    if rules == "blocked":
        names = ("key", "marker", "missing")
        return ([d / "secret" / n for n in names],
                [f"blocked file access: {d}/secret/{n} (pattern {d}/secret/*)"
                 for n in names], "HIGH")
    names = ("outside.txt", "marker.txt", "missing.txt")
    return ([outside / n for n in names],
            [f"file access outside allowed_files: {outside}/{n}" for n in names], "MEDIUM")


def _settled(daemon: RunningDaemon, reports: int) -> Callable[[], bool]:
    """In enforce: the tracepoint's reports of at least `reports` covered opens are all
    reconciled with the gate's answers (so no record of them is still to come)."""
    def check() -> bool:
        gate = daemon.call("policy_status")["file_gate"]
        return bool(gate["reports"] >= reports
                    and gate["reports"] == gate["reports_dropped"] + gate["reports_kept"])
    return check


def _watched(daemon: RunningDaemon, pid: int) -> bool:
    return any(pid in p.get("pids", []) for p in daemon.call("policy_status")["processes"])


def _start(d: Path, mode: str, rules: str, make_daemon: Callable[..., RunningDaemon],
           procs: list[subprocess.Popen[bytes]],
           config: str = "", blocked: str = "") -> tuple[RunningDaemon, Program, Path, Path]:
    outside = short_tmpdir()
    exe, script = _setup(d, mode, rules, outside, blocked)
    daemon = make_daemon(d, ("--policy", str(d / "policy.yaml")), config)
    status = daemon.call("policy_status")
    assert status["backend"] == "kernel", (status, daemon.log())
    prog = Program(exe, script, procs)
    # The gate judges a process from when the daemon has seen its exec (docs/policy.md).
    wait_for(lambda: _watched(daemon, prog.pid), 20, "the program to be watched", daemon.log)
    return daemon, prog, exe, outside


@pytest.mark.parametrize("rules", ["blocked", "allowed"])
@pytest.mark.parametrize("mode", ["audit", "alert", "enforce"])
def test_file_rules_in_each_mode(mode: str, rules: str,
                                 make_daemon: Callable[..., RunningDaemon],
                                 procs: list[subprocess.Popen[bytes]]) -> None:
    d = short_tmpdir()
    daemon, prog, exe, outside = _start(d, mode, rules, make_daemon, procs)
    status = daemon.call("policy_status")
    targets, details, severity = _targets(d, rules, outside)
    if mode == "enforce":
        gate = status["file_gate"]
        assert gate["running"] and "file" in status["blockable"], (status, daemon.log())
        hows = {m["how"] for m in gate["marks"]}
        assert hows == ({"inode"} if rules == "blocked" else {"filesystem"}), gate
    else:
        assert status["file_gate"] is None  # audit and alert place no permission marks
        assert "file" not in status["blockable"]

    refused = str(errno.EPERM) if mode == "enforce" else "ok"
    assert prog.open(d / "open/ok.txt") == "ok"
    assert [prog.open(t) for t in targets] == [refused, refused, str(errno.ENOENT)]
    base = {"process": "prog", "exe": str(exe), "pid": prog.pid, "type": "file",
            "severity": severity, "mode": mode}
    # A missing file has no permission event: the tracepoint's report is its record,
    # never `blocked`. Being last in the tracepoint's order, once it is recorded every
    # earlier report has reached the gate's reconciliation.
    actions = ["blocked", "blocked", "alerted"] if mode == "enforce" else [ACTION[mode]] * 3
    wait_for(lambda: len(policy_records(daemon)) >= 3, 20, "three violations", daemon.log)
    if mode == "enforce":  # the tracepoint saw the refused opens too: one record each
        wait_for(_settled(daemon, 2), 20, "the tracepoint's reports", daemon.log)
        gate = daemon.call("policy_status")["file_gate"]
        assert (gate["denied"], gate["reports_kept"]) == (2, 0), gate
    # The gate's records and the tracepoint's reach the ring from two threads: their
    # relative order is not fixed; each open's one record is.
    assert sorted(policy_records(daemon), key=lambda r: r["detail"]) == sorted(
        ({**base, "detail": detail, "action": action}
         for detail, action in zip(details, actions, strict=True)), key=lambda r: r["detail"])
    assert prog.proc.poll() is None  # a refused open is an error, never a kill


def test_a_child_of_a_watched_process_is_refused(
        make_daemon: Callable[..., RunningDaemon],
        procs: list[subprocess.Popen[bytes]]) -> None:
    d = short_tmpdir()
    daemon, prog, exe, _ = _start(d, "enforce", "blocked", make_daemon, procs)
    prog.send(f"fork {d}/secret/key")
    child, said = prog.reply()
    assert said == "ready" and child != prog.pid
    wait_for(lambda: _watched(daemon, child), 20, "the child to be watched", daemon.log)
    prog.send("go")
    assert prog.reply() == (child, str(errno.EPERM))
    wait_for(lambda: policy_records(daemon), 20, "the child's violation", daemon.log)
    assert policy_records(daemon) == [{
        "process": "prog", "exe": str(exe), "pid": child, "type": "file",
        "detail": f"blocked file access: {d}/secret/key (pattern {d}/secret/*)",
        "severity": "HIGH", "action": "blocked", "mode": "enforce"}]


def test_a_child_is_refused_before_the_daemon_hears_of_its_fork(
        make_daemon: Callable[..., RunningDaemon],
        procs: list[subprocess.Popen[bytes]]) -> None:
    # The child opens at once: the kernel watched it from its fork, and the gate's
    # miss path reads that, whether or not the daemon has seen the fork yet.
    d = short_tmpdir()
    daemon, prog, exe, _ = _start(d, "enforce", "blocked", make_daemon, procs)
    children = []
    for _ in range(5):
        prog.send(f"forknow {d}/secret/key")
        child, said = prog.reply()
        assert said == str(errno.EPERM) and child != prog.pid
        children.append(child)
    wait_for(lambda: len(policy_records(daemon)) >= 5, 20, "the children's violations", daemon.log)
    wait_for(_settled(daemon, 5), 20, "the tracepoint's reports", daemon.log)
    assert policy_records(daemon) == [{
        "process": "prog", "exe": str(exe), "pid": child, "type": "file",
        "detail": f"blocked file access: {d}/secret/key (pattern {d}/secret/*)",
        "severity": "HIGH", "action": "blocked", "mode": "enforce"} for child in children]


def test_an_unwatched_process_takes_the_fast_path(
        make_daemon: Callable[..., RunningDaemon],
        procs: list[subprocess.Popen[bytes]]) -> None:
    d = short_tmpdir()
    daemon, prog, _, _ = _start(d, "enforce", "blocked", make_daemon, procs)
    before = daemon.call("policy_status")["file_gate"]
    # The same script under the real interpreter: not the watched executable.
    other = Program(Path(os.path.realpath(sys.executable)), d / "prog.py", procs)
    assert other.open(d / "secret/key") == "ok"
    after = daemon.call("policy_status")["file_gate"]
    assert after["fast_path"] > before["fast_path"]
    assert after["judged"] == before["judged"] and after["denied"] == 0
    assert prog.open(d / "secret/key") == str(errno.EPERM)  # the gate does judge the watched
    wait_for(lambda: policy_records(daemon), 20, "the watched program's violation", daemon.log)
    assert [r["pid"] for r in policy_records(daemon)] == [prog.pid]


def test_mode_switch_and_reload_remark(make_daemon: Callable[..., RunningDaemon],
                                       procs: list[subprocess.Popen[bytes]]) -> None:
    d = short_tmpdir()
    daemon, prog, _, _ = _start(d, "audit", "blocked", make_daemon, procs)

    def recorded(n: int) -> None:  # each record in before the next open: their order
        wait_for(lambda: len(policy_records(daemon)) >= n, 20, f"violation {n}", daemon.log)

    assert prog.open(d / "secret/key") == "ok"
    recorded(1)
    reply = daemon.call("policy_mode", mode="enforce")
    assert reply["ok"] and reply["mode"] == "enforce", reply
    assert daemon.call("policy_status")["file_gate"]["running"]
    assert prog.open(d / "secret/key") == str(errno.EPERM)
    recorded(2)
    # A reload with another blocked directory: the marks follow the file.
    (d / "other").mkdir()
    (d / "other" / "f").write_text("x")
    policy = d / "policy.yaml"
    policy.write_text(policy.read_text().replace(f"{d}/secret/*", f"{d}/other/*")
                      .replace("mode: audit", "mode: enforce"))
    daemon.signal(signal.SIGHUP)
    wait_for(lambda: [m["path"] for m in
                      (daemon.call("policy_status")["file_gate"] or {}).get("marks", [])]
             == [f"{d}/other"], 20, "the new marks", daemon.log)
    assert prog.open(d / "secret/key") == "ok"
    assert prog.open(d / "other/f") == str(errno.EPERM)
    recorded(3)
    reply = daemon.call("policy_mode", mode="alert")
    assert reply["ok"] and daemon.call("policy_status")["file_gate"] is None
    assert prog.open(d / "other/f") == "ok"
    recorded(4)
    assert [(r["detail"].split(" (")[0], r["action"]) for r in policy_records(daemon)] == [
        (f"blocked file access: {d}/secret/key", "logged"),
        (f"blocked file access: {d}/secret/key", "blocked"),
        (f"blocked file access: {d}/other/f", "blocked"),
        (f"blocked file access: {d}/other/f", "alerted"),
    ]


def test_an_open_past_the_deadline_is_allowed_and_recorded_after(
        procs: list[subprocess.Popen[bytes]]) -> None:
    from attyguard.policy.load import load_policy
    from attyguard.policy.runtime import PolicyRuntime

    d = short_tmpdir()
    outside = short_tmpdir()
    exe, script = _setup(d, "enforce", "blocked", outside)
    rt = PolicyRuntime(load_policy(d / "policy.yaml"), sample_interval_s=0.05,
                       use_connector=False, file_deadline_ms=100)
    try:
        rt.start(None)
        assert rt.files is not None and rt.files.running, rt.status(True)
        prog = Program(exe, script, procs)
        wait_for(lambda: prog.pid in rt.evaluator.watched, 20, "the program to be watched")
        # Held lock: the gate cannot judge; it must answer anyway, within its deadline.
        with rt._lock:
            assert prog.open(d / "secret/key") == "ok"
            assert rt.files.counters.deadline_misses == 1
        wait_for(lambda: rt.violations(None), 20, "the after-the-fact record")
        (record,) = rt.violations(None)
        assert {k: v for k, v in record.items() if k != "timestamp"} == {
            "process": "prog", "exe": str(exe), "pid": prog.pid, "type": "file",
            "detail": f"blocked file access: {d}/secret/key (pattern {d}/secret/*)",
            "severity": "HIGH", "action": "alerted", "mode": "enforce"}
        assert prog.open(d / "secret/key") == str(errno.EPERM)  # judged again when it can
    finally:
        rt.stop()


def test_a_killed_daemon_leaves_no_open_blocked(make_daemon: Callable[..., RunningDaemon],
                                                procs: list[subprocess.Popen[bytes]]) -> None:
    d = short_tmpdir()
    daemon, prog, _, _ = _start(d, "enforce", "blocked", make_daemon, procs)
    assert daemon.proc is not None
    try:
        daemon.signal(signal.SIGSTOP)  # nobody reads the group: the next open waits
        prog.send(f"open {d}/secret/key")

        def in_open() -> bool:
            with contextlib.suppress(OSError):
                nr = Path(f"/proc/{prog.pid}/syscall").read_text().split()[0]
                return nr == "257"  # openat, waiting for the permission answer
            return False

        wait_for(in_open, 20, "the open to wait on the stopped daemon")
        assert not select.select([prog.proc.stdout], [], [], 0.2)[0]  # still waiting
        daemon.signal(signal.SIGKILL)
        assert daemon.proc.wait(10) == -signal.SIGKILL
        # The kernel answers a closed group's events itself (allow): the open completes.
        assert prog.reply(10) == (prog.pid, "ok")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(daemon.proc.pid, signal.SIGCONT)
            os.kill(daemon.proc.pid, signal.SIGKILL)


@pytest.mark.parametrize(("pattern", "expected"), [
    ("/a/b/c", ("/a/b", ("c",))),
    ("/a/*/c", ("/a", ("*", "c"))),
    ("/a/b/**", ("/a/b", ("**",))),
    ("/x?", ("/", ("x?",))),
    ("/[ab]/k", ("/", ("[ab]", "k"))),
])
def test_fixed_prefix(pattern: str, expected: tuple[str, tuple[str, ...]]) -> None:
    from attyguard.policy.files import fixed_prefix

    assert fixed_prefix(pattern) == expected


def test_plan_marks_walks_only_directories_that_can_match(tmp_path: Path) -> None:
    from attyguard.policy.files import plan_marks
    from attyguard.policy.load import parse_policy

    for sub in ("home/ann/.ssh/old", "home/bob/.ssh", "home/bob/docs", "srv/x/y/z"):
        (tmp_path / sub).mkdir(parents=True)
    policy = parse_policy(f"""\
processes:
  p:
    match: {{exe: /opt/p}}
    blocked_files: ["{tmp_path}/home/*/.ssh/*", "{tmp_path}/srv/**", "{tmp_path}/none/*"]
""", "t.yaml")
    plan = plan_marks(policy, filesystems=lambda: [])
    assert sorted((m.path.removeprefix(str(tmp_path)), m.how) for m in plan.marks) == [
        ("/home", "inode"), ("/home/ann", "inode"), ("/home/ann/.ssh", "inode"),
        ("/home/bob", "inode"), ("/home/bob/.ssh", "inode"),
        ("/srv", "inode"), ("/srv/x", "inode"), ("/srv/x/y", "inode"), ("/srv/x/y/z", "inode")]
    assert plan.notes == (f"t.yaml:4: {tmp_path}/none/*: no directory of it exists now; "
                          "marked when one is created",)
    assert plan.globs == tuple(f"{tmp_path}/{g}" for g in ("home/*/.ssh/*", "srv/**", "none/*"))
    # Past the bound, a glob's filesystem is marked whole instead.
    narrow = plan_marks(policy, max_marks=3, filesystems=lambda: [])
    assert [(m.how, m.why) for m in narrow.marks if m.how == "filesystem"] == [
        ("filesystem", f"{tmp_path}/home/*/.ssh/*")]
    assert any("needs more than 3 directory marks" in n for n in narrow.notes)


@pytest.mark.parametrize(("glob", "made", "before"), [
    # The glob's fixed directory does not exist when the gate is built.
    ("later/**", "later/sub", []),
    # A `**` glob whose existing tree gains new levels, made faster than marks are
    # added (mkdir -p): the walk of each new directory finds what its event missed.
    ("tree/**", "tree/a/new/deeper/deepest", ["tree", "tree/a"]),
    # A wildcard level created later, and a directory no glob can reach.
    ("home/*/.ssh/*", "home/ann/.ssh", ["home"]),
])
def test_a_directory_created_later_is_marked(
        glob: str, made: str, before: list[str], make_daemon: Callable[..., RunningDaemon],
        procs: list[subprocess.Popen[bytes]]) -> None:
    d = short_tmpdir()
    for sub in before:
        (d / sub).mkdir()
    daemon, prog, exe, _ = _start(d, "enforce", "blocked", make_daemon, procs,
                                  blocked=f"{d}/{glob}")
    gate = daemon.call("policy_status")["file_gate"]
    assert gate["running"] and gate["marked_later"] == 0, gate
    assert {m["path"] for m in gate["marks"]} == {f"{d}/{sub}" for sub in before}
    (d / made).mkdir(parents=True)
    (d / made / "secret").write_text("x")
    (d / "home/ann/docs").mkdir(parents=True, exist_ok=True)  # no glob reaches it
    wanted = {str(d / made)} | {str(p) for p in (d / made).parents
                                if p.is_relative_to(d / glob.split("/")[0])}
    if glob.startswith("home/"):
        wanted = {f"{d}/home/ann", f"{d}/home/ann/.ssh"}

    def marked() -> bool:
        gate = daemon.call("policy_status")["file_gate"]
        return {m["path"] for m in gate["marks"]} >= wanted and gate["marked_later"] >= (
            len(wanted - {str(d / b) for b in before}))

    wait_for(marked, 20, "the new directories to be marked", daemon.log)
    gate = daemon.call("policy_status")["file_gate"]
    assert gate["marked_later"] == len(wanted - {str(d / b) for b in before}), gate
    assert f"{d}/home/ann/docs" not in {m["path"] for m in gate["marks"]}
    assert prog.open(d / made / "secret") == str(errno.EPERM)
    wait_for(lambda: policy_records(daemon), 20, "the violation", daemon.log)
    wait_for(_settled(daemon, 1), 20, "the tracepoint's report", daemon.log)
    assert policy_records(daemon) == [{
        "process": "prog", "exe": str(exe), "pid": prog.pid, "type": "file",
        "detail": f"blocked file access: {d}/{made}/secret (pattern {d}/{glob})",
        "severity": "HIGH", "action": "blocked", "mode": "enforce"}]


def test_directories_created_past_the_mark_budget_mark_their_filesystem(
        procs: list[subprocess.Popen[bytes]]) -> None:
    from attyguard.policy.files import FileGate, MarkPlan

    d = short_tmpdir()
    gate = FileGate(MarkPlan((), (), (f"{d}/x/**",)), set(), lambda *a: None,
                    lambda v: None, lambda *a: None, max_marks=2)
    gate.start()
    try:
        (d / "x/a/b/c").mkdir(parents=True)
        wait_for(lambda: gate.counters.whole_later == 1, 20, "the filesystem mark")
        assert gate.counters.marked_later == 2
        assert [how for _, how in gate.marked] == ["inode", "inode", "filesystem"]
        assert gate.status()["whole_later"] == 1
    finally:
        gate.stop()


@pytest.mark.parametrize(("pattern", "directory", "expected"), [
    ("/a/b/**", "/a/b", (True, True)),
    ("/a/b/**", "/a/b/c/d", (True, True)),
    ("/a/b/**", "/a", (False, True)),  # above the prefix, on its path: watched only
    ("/a/b/**", "/a/c", (False, False)),
    ("/a/*/k/*", "/a/x", (True, True)),
    ("/a/*/k/*", "/a/x/k", (True, False)),  # holds the files; nothing deeper can match
    ("/a/*/k/*", "/a/x/j", (False, False)),
    ("/a/b/f", "/a/b", (True, False)),
    ("/a/b/f", "/", (False, True)),
])
def test_reach(pattern: str, directory: str, expected: tuple[bool, bool]) -> None:
    from attyguard.policy.files import reach

    assert reach(pattern, directory) == expected


@pytest.mark.parametrize("watched", [False, True])
def test_the_tracepoint_report_stands_only_for_an_open_the_gate_did_not_judge(
        watched: bool, procs: list[subprocess.Popen[bytes]]) -> None:
    # The real gate on a real group: an opener the gate does not know yet is answered
    # on the fast path, and its tracepoint report is then the one record; once the
    # gate judged the open itself, the report is dropped.
    import threading

    from attyguard.policy.files import FileGate, Mark, MarkPlan
    from attyguard.policy.model import OpenEvent

    d = short_tmpdir()
    (d / "f").write_text("x")
    pids: set[int] = set()
    judged: list[str] = []
    unjudged: list[OpenEvent] = []
    done = threading.Event()  # set by the last report

    def judge(pid: int, path: str, when: float, deadline: float) -> None:
        judged.append(path)

    def report(event: OpenEvent) -> None:
        unjudged.append(event)

    gate = FileGate(MarkPlan((Mark(str(d), "inode", "test"),)), pids, judge,
                    lambda v: None, lambda *a: None, deadline_s=0.05)
    gate.start()
    try:
        child = subprocess.Popen([sys.executable, "-c",
                                  "import sys; sys.stdin.readline(); open(sys.argv[1]).read()",
                                  str(d / "f")], stdin=subprocess.PIPE)
        procs.append(child)
        if watched:
            pids.add(child.pid)
        assert child.stdin is not None
        child.stdin.write(b"go\n")
        child.stdin.flush()
        assert child.wait(20) == 0
        event = OpenEvent(0.0, child.pid, str(d / "f"))
        key = gate.cover_key(event)
        assert key is not None and key[0] == child.pid
        gate.reconcile(key, event, report)
        gate.reconcile(key, event, report)  # a second report, checked after the first
        gate.reconcile(key, event, lambda ev: done.set())  # the marker: both are done
        wait_for(done.is_set, 10, "the reconciliation")
        # Watched: the first report is the gate's own open (dropped), the second had no
        # open of its own; unwatched: the gate judged neither.
        assert (judged, len(unjudged)) == (([str(d / "f")], 1) if watched else ([], 2))
        assert gate.counters.fast_path >= (0 if watched else 1)
    finally:
        gate.stop()
