"""A small harness to drive a real program inside a real tmux, for end-to-end tests.

    from tests.e2e.harness import Tmux
    with Tmux(["attyguard"], env=env, cols=100, rows=30) as t:
        t.wait_for(r"\\$ $")              # regex on the whole screen, with a deadline
        t.send_line("echo hi")            # literal text + Enter
        t.send_keys("C-c")                # tmux key names: C-c, C-z, Escape, Up, Tab, M-W …
        t.paste("line 1\nline 2")         # a bracketed paste
        t.wait_for(r"^hi$")
        print(t.screen())                 # the visible screen as text
        t.resize(80, 20)
    status = t.exit_status                # once the program has exited (None before)

Each Tmux has its own server (`tmux -L <unique socket>`), so tests never see
each other or the user's tmux. The pane stays after the program exits
(remain-on-exit) so its exit status and last screen can be read. Every
failed wait raises AssertionError carrying the whole screen. Nothing here
sleeps blindly: waits poll a condition until a deadline.

`run(argv, …)` runs a program without a terminal (for -c/script/stdin modes).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType

__all__ = ["Tmux", "WaitTimeout", "have_tmux", "run"]

_TMUX_CONF = """\
set -g remain-on-exit on
set -g status off
set -g default-terminal tmux-256color
set -g history-limit 5000
set -sg escape-time 0
"""


class WaitTimeout(AssertionError):
    pass


def have_tmux() -> bool:
    return shutil.which("tmux") is not None


class Tmux:
    def __init__(self, argv: Sequence[str], *, env: Mapping[str, str] | None = None,
                 cols: int = 100, rows: int = 30, cwd: str | os.PathLike[str] | None = None
                 ) -> None:
        self.argv = [str(a) for a in argv]
        self.env = dict(os.environ if env is None else env)
        self.cols, self.rows = cols, rows
        self.cwd = cwd
        self.socket = f"agtest-{uuid.uuid4().hex[:12]}"
        self._confdir = tempfile.mkdtemp(prefix="agtmux-")
        self.conf = Path(self._confdir) / "tmux.conf"
        self.conf.write_text(_TMUX_CONF)
        self.status_file = Path(self._confdir) / "status"
        self.started = False

    # --- lifecycle ----------------------------------------------------------------

    def tmux(self, *args: str, check: bool = True) -> str:
        proc = subprocess.run(["tmux", "-L", self.socket, "-f", str(self.conf), *args],
                              env=self.env, cwd=self.cwd, capture_output=True, text=True,
                              timeout=20)
        if check and proc.returncode != 0:
            raise RuntimeError(f"tmux {' '.join(args)}: {proc.stderr.strip()}")
        return proc.stdout

    def start(self) -> Tmux:
        import shlex

        # tmux 3.3 sometimes loses a dead pane's exit status, so a tiny sh
        # records it (the tty stays raw under attyguard: no signal reaches sh).
        wrapped = ["/bin/sh", "-c", 'status=0; "$@" || status=$?; echo $status > "$0"',
                   str(self.status_file), *self.argv]
        self.tmux("new-session", "-d", "-x", str(self.cols), "-y", str(self.rows),
                  shlex.join(wrapped))
        self.started = True
        return self

    def kill(self) -> None:
        if self.started:
            self.tmux("kill-server", check=False)
            self.started = False
        shutil.rmtree(self._confdir, ignore_errors=True)

    def __enter__(self) -> Tmux:
        return self.start()

    def __exit__(self, typ: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.kill()

    # --- input --------------------------------------------------------------------

    def send_keys(self, *keys: str) -> None:
        """tmux key names (C-c, Enter, Up, Tab, Escape, M-W…), one per argument."""
        self.tmux("send-keys", "-t", "0", *keys)

    def send_text(self, text: str) -> None:
        """Literal text, no Enter (newlines are sent as Enter keys)."""
        parts = text.split("\n")
        for i, part in enumerate(parts):
            if part:
                self.tmux("send-keys", "-t", "0", "-l", part)
            if i < len(parts) - 1:
                self.tmux("send-keys", "-t", "0", "Enter")

    def send_line(self, text: str) -> None:
        self.send_text(text)
        self.send_keys("Enter")

    def paste(self, text: str) -> None:
        """Paste `text` the way a terminal does (bracketed, if the program asked for it)."""
        self.tmux("set-buffer", "--", text)
        self.tmux("paste-buffer", "-p", "-d", "-t", "0")

    def resize(self, cols: int, rows: int) -> None:
        self.tmux("resize-window", "-t", "0", "-x", str(cols), "-y", str(rows))
        self.cols, self.rows = cols, rows

    # --- output -------------------------------------------------------------------

    def screen(self, history: bool = False) -> str:
        """The visible screen (with `history`, the scrollback too), trailing blanks trimmed."""
        args = ["capture-pane", "-p", "-t", "0"]
        if history:
            args += ["-S", "-"]
        lines = [line.rstrip() for line in self.tmux(*args).split("\n")]
        while lines and not lines[-1]:
            lines.pop()
        return "\n".join(lines)

    def cursor(self) -> tuple[int, int]:
        x, y = self.tmux("display", "-p", "-t", "0", "#{cursor_x} #{cursor_y}").split()
        return int(x), int(y)

    @property
    def exit_status(self) -> int | None:
        try:
            text = self.status_file.read_text()
        except FileNotFoundError:
            return None
        return int(text) if text.endswith("\n") else None

    def wait_for(self, pattern: str | Callable[[str], bool], timeout: float = 10.0,
                 history: bool = False) -> str:
        """Wait until the screen matches `pattern` (regex, MULTILINE) or the predicate holds."""
        if isinstance(pattern, str):
            regex = re.compile(pattern, re.MULTILINE)

            def check(screen: str) -> bool:
                return regex.search(screen) is not None
        else:
            check = pattern
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen(history)
            if check(screen):
                return screen
            time.sleep(0.02)
        raise WaitTimeout(f"timed out after {timeout}s waiting for {pattern!r}; screen:\n"
                          f"{'-' * self.cols}\n{screen}\n{'-' * self.cols}")

    def wait_exit(self, timeout: float = 10.0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.exit_status
            if status is not None:
                return status
            time.sleep(0.02)
        raise WaitTimeout(f"program did not exit within {timeout}s; screen:\n{self.screen()}")


def run(argv: Sequence[str], *, env: Mapping[str, str] | None = None, input: bytes | None = None,
        timeout: float = 30.0, cwd: str | os.PathLike[str] | None = None
        ) -> subprocess.CompletedProcess[bytes]:
    """Run without a terminal (stdin a pipe or /dev/null); output captured."""
    return subprocess.run([str(a) for a in argv], env=env, input=input,
                          stdin=None if input is not None else subprocess.DEVNULL,
                          capture_output=True, timeout=timeout, cwd=cwd)
