"""The interactive loop and THE one enforcement point.

Every line the user enters (typed, pasted, completed, recalled, or typed
ahead while a command ran) reaches bash only through `Session.submit`, which
asks the Guard first: allow -> run; warn -> `[y]es / [t]rust / cancel`;
block -> one REFUSED line and a cleared buffer. bash's parser decides when a
command is complete (it shows PS2 for more); the classifier always sees the
whole command entered so far.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from attyguard.shell.bash import BashChild, RunResult, raw_terminal
from attyguard.shell.text import one_line, split_typeahead
from attyguard.shell.warnings import WarnBuffer

if TYPE_CHECKING:  # imported lazily: bash is spawned before anything heavy
    from attyguard.config import Config
    from attyguard.engine.verdict import Verdict
    from attyguard.shell.wiring import Wired

__all__ = ["Session", "run_interactive"]


def _not_ready() -> Wired | None:
    return None


@dataclass(frozen=True)
class _Decided:
    """A verdict reached as Enter accepted `text`; `sent`: bash already has the line."""

    text: str
    verdict: Verdict
    sent: bool


@dataclass
class Session:
    child: BashChild
    get_wired: Callable[[], Wired]  # waits for the Guard if it is still loading
    config: Config
    ui: object  # ShellPrompt (typed loosely: prompt_toolkit is imported lazily)
    warnings: WarnBuffer
    ask_warn: Callable[[], str]
    show: Callable[[object], None]  # prints prompt_toolkit formatted text
    in_fd: int = 0
    out_fd: int = 1
    pending: str = ""  # the command so far while bash waits for more (PS2)
    keys: str = ""  # typed ahead while a command ran: replayed as keystrokes
    default: str = ""
    after_first_render: Callable[[], None] | None = None
    # The Guard if it is loaded and warm, else None (never waits): lets
    # `accepting` decide while the prompt is still finishing its last frame.
    ready_wired: Callable[[], Wired | None] = _not_ready
    _notes_shown: bool = False
    _decided: _Decided | None = None
    _held_marks: str = ""

    # --- the one enforcement point ----------------------------------------------------

    def accepting(self, text: str) -> None:
        """Enter has accepted `text`; the prompt has yet to draw its final frame.

        Called by the prompt from its Enter handler. Classifies the line here
        already and, if it is allowed, hands it to bash at once, so bash reads
        and runs it while the prompt finishes drawing and tears down (on the
        other core) instead of after. Still classified before bash sees it;
        `submit` then acts on this verdict and only passes the terminal
        through. Anything but a plain allow (warn, block), or a Guard still
        loading, is left to `submit` as before.
        """
        from attyguard.engine.verdict import Action

        self._decided = None
        wired = self.ready_wired()
        if wired is None or not self._notes_shown:
            return  # (the first line also shows the Guard's notes: submit's job)
        verdict = wired.guard.decide(self._full(text))
        sent = verdict.action is Action.ALLOW
        if sent:
            self.child.send_line(text, self.in_fd)
        self._decided = _Decided(text, verdict, sent)

    def _full(self, text: str) -> str:
        return f"{self.pending}\n{text}" if self.pending else text

    def submit(self, text: str) -> RunResult | None:
        """Classify what would run and act on the verdict; None if nothing ran."""
        from prompt_toolkit.formatted_text import FormattedText

        from attyguard.engine.verdict import Action
        from attyguard.shell.confirm import refused_text, warn_text

        decided, self._decided = self._decided, None
        if decided is not None and decided.sent:
            # Classified and allowed as Enter accepted it; bash is running it.
            return self._run(decided.text, self._full(decided.text), self._take_typeahead(),
                             sent=True)
        if decided is not None and decided.text != text:
            decided = None  # (not the line the prompt returned: decide again)
        full = self._full(text)
        wired = self.get_wired()
        if not self._notes_shown:
            self._notes_shown = True
            for note in wired.warnings:
                self.show(FormattedText([("", f"attyguard: {note}\n")]))
        verdict = decided.verdict if decided is not None else wired.guard.decide(full)
        if verdict.action is Action.BLOCK:
            self.show(refused_text(verdict, self.config.ui.refused_style))
            self.warnings.add(f"refused: {verdict.reason}: {one_line(full, 120)}")
            if self.pending:
                self._cancel_pending()
            return None
        # Keys typed after Enter are for what comes next, never an answer to
        # the question below: take them out of prompt_toolkit's hands first.
        early = self._take_typeahead()
        if verdict.action is Action.WARN:
            self.show(warn_text(verdict, self.config.ui.warn_style))
            answer = self.ask_warn()
            self.warnings.add(
                f"{'ran' if answer != 'cancel' else 'cancelled'}: {verdict.reason}: "
                f"{one_line(full, 120)}")
            if answer == "cancel":
                self.default = text  # nothing typed is lost
                self.keys = early + self.keys
                return None
            if answer == "trust":
                wired.guard.remember(full, verdict)
        return self._run(text, full, early)

    # --- running --------------------------------------------------------------------

    def _osc(self, body: str, *, hold: bool = False) -> None:
        """Write a shell-integration mark; `hold`: with the next one, in one write.

        A command's end (D), its directory (7) and the next prompt (A) go out
        together: one write instead of three, each of which wakes the
        terminal (or tmux) to parse a few bytes.
        """
        if not self.config.ui.shell_integration_marks:
            return
        self._held_marks += f"\x1b]{body}\x07"
        if not hold:
            self._flush_marks()

    def _flush_marks(self) -> None:
        if self._held_marks:
            data, self._held_marks = self._held_marks.encode(), ""
            os.write(self.out_fd, data)

    def _take_typeahead(self) -> str:
        take = getattr(self.ui, "take_typeahead", None)
        return take() if take is not None else ""

    def _run(self, text: str, full: str, early: str = "", sent: bool = False) -> RunResult:
        self._osc("133;C")
        keys = early.encode("utf-8", "surrogateescape")
        with raw_terminal(self.in_fd):
            if sent:  # (by `accepting`: bash has the line already)
                result = self.child.passthrough(self.in_fd, self.out_fd, early=keys)
            else:
                result = self.child.run(text, self.in_fd, self.out_fd, early=keys)
        if result.kind == "more":
            self.pending = full
            self._collect_typeahead()
            return result
        self.pending = ""
        if result.kind == "done":
            self._after_command(result.status)
        return result

    def _after_command(self, status: int) -> None:
        self._osc(f"133;D;{status}", hold=True)
        cwd = self.child.state.cwd
        if cwd and self.config.ui.shell_integration_marks:
            from urllib.parse import quote

            self._osc(f"7;file://{_hostname()}{quote(cwd)}", hold=True)
        self._collect_typeahead()

    def _collect_typeahead(self) -> None:
        """Keys typed while bash had the terminal: replayed into the next prompts."""
        typed = self.child.state.typeahead.decode("utf-8", "replace")
        self.child.state.typeahead = b""
        self.keys += typed

    def _cancel_pending(self) -> None:
        self.pending = ""
        self.child.cancel_continuation()

    def _exit(self) -> int | None:
        with raw_terminal(self.in_fd):
            result = self.child.exit(self.in_fd, self.out_fd)
        if result.kind == "exited":
            return result.status
        return None  # e.g. "There are stopped jobs.": bash stays

    # --- the loop -------------------------------------------------------------------

    def loop(self) -> int:
        from attyguard.shell.prompt import ChildGone, Eof, Interrupted

        while True:
            self._decided = None  # (set by `accepting` during the read below)
            default = self.default
            keys, self.keys = split_typeahead(self.keys)
            self.default = ""
            state = self.child.state
            message = state.ps2 if self.pending else state.ps1
            self.ui.set_editing_mode(state.editing_mode)  # type: ignore[attr-defined]
            if not self.pending:
                self._osc("133;A", hold=True)
            self._flush_marks()  # (before the prompt draws anything)
            first, self.after_first_render = self.after_first_render, None
            got = self.ui.read(  # type: ignore[attr-defined]
                message, default=default, keys=keys, after_render=first,
                continuation=state.ps2, on_accept=self.accepting,
                idle_fd=self.child.master, on_idle=self.child.read_idle)
            if isinstance(got, ChildGone):
                return self.child.close()
            if isinstance(got, Interrupted):
                if self.pending:
                    self._cancel_pending()
                continue
            if isinstance(got, Eof):
                if self.pending:
                    self._cancel_pending()
                    continue
                status = self._exit()
                if status is not None:
                    return status
                continue
            result = self.submit(got)
            if result is not None and result.kind == "exited":
                return result.status


def _hostname() -> str:
    """This host's name for OSC 7, asked once (a uname(2) per command otherwise)."""
    global _HOSTNAME
    if _HOSTNAME is None:
        _HOSTNAME = os.uname().nodename
    return _HOSTNAME


_HOSTNAME: str | None = None


def _terminal_size(fd: int) -> tuple[int, int] | None:
    try:
        size = os.get_terminal_size(fd)
    except OSError:
        return None
    return size.lines, size.columns


def run_interactive(*, login: bool, norc: bool = False, noprofile: bool = False) -> int:
    from attyguard.resources import data_path

    # bash first: its start-up runs while we import prompt_toolkit.
    env = dict(os.environ)
    if norc:
        env["__AG_NORC"] = "1"
    if noprofile:
        env["__AG_NOPROFILE"] = "1"
    child = BashChild.spawn(data_path("shellrc"), login=login, size=_terminal_size(0), env=env)
    # The terminal is raw whenever a key could matter (prompt, passthrough), so
    # ^C/^Z/^\ arrive as bytes; in the short cooked gaps between the two they
    # must not kill or stop the login shell itself (bash was spawned before).
    import signal

    for sig in (signal.SIGINT, signal.SIGQUIT, signal.SIGTSTP):
        signal.signal(sig, signal.SIG_IGN)
    try:
        return _interactive(child)
    finally:
        child.close()


def _interactive(child: BashChild) -> int:
    from attyguard.config import load_config
    from attyguard.paths import state_dir

    config, errors = load_config()
    for error in errors:
        print(f"attyguard: config: {error}", file=sys.stderr)
    # bash reads its rc files meanwhile; its output waits in the pty.
    from prompt_toolkit import print_formatted_text

    from attyguard.shell.confirm import ask_warn
    from attyguard.shell.history import SharedFileHistory
    from attyguard.shell.keys import load_shell_bindings
    from attyguard.shell.prompt import ShellPrompt
    from attyguard.shell.wiring import GuardLoader

    # Start-up output (motd, rc files) passes through untouched.
    with raw_terminal(0):
        first = child.passthrough(0, 1, phase="run")
    if first.kind == "exited":
        return first.status
    loader = GuardLoader(config)

    warnings = WarnBuffer()
    subscriber = _subscribe(config, warnings)
    ui = ShellPrompt(
        history=SharedFileHistory(state_dir() / "history", config.shell.history_size),
        complete=child.complete,
        warnings=warnings,
        bindings=load_shell_bindings(warnings),
        status_bar=config.ui.status_bar,
        daemon_state=lambda: loader.loaded.daemon_state if loader.loaded else "",
    )
    session = Session(child=child, get_wired=loader.get, config=config, ui=ui,
                      warnings=warnings, ask_warn=ask_warn,
                      show=lambda ft: print_formatted_text(ft, end=""),
                      after_first_render=loader.start,
                      ready_wired=lambda: loader.ready)
    session._after_command(child.state.status)
    try:
        return session.loop()
    finally:
        if subscriber is not None:
            subscriber.stop()
        if loader.loaded is not None:
            loader.loaded.close()


class _Stoppable(Protocol):
    def start(self) -> None: ...

    def stop(self) -> None: ...


def _subscribe(config: Config, warnings: WarnBuffer) -> _Stoppable | None:
    """Daemon warn events into the buffer, when a daemon is configured."""
    if not config.guard.daemon_socket_path:
        return None
    try:
        from attyguard.daemon.client import WarnSubscriber

        sub: _Stoppable = WarnSubscriber(config.guard.daemon_socket_path, warnings.add)
        sub.start()
    except Exception as exc:
        print(f"attyguard: daemon warnings unavailable: {exc}", file=sys.stderr)
        return None
    return sub


