"""The prompt_toolkit front end: one PromptSession reused for every line.

Draws the user's own PS1/PS2 as bash expanded them, keeps history and Tab
completion, shows the status bar, and prints background-job output that
bash produces while the prompt is up (it reads the pty only while idle).
It returns what the user typed; deciding what happens to it is the session's
job (the one enforcement point).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import re
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from prompt_toolkit import PromptSession
from prompt_toolkit.application import run_in_terminal
from prompt_toolkit.buffer import Buffer
from prompt_toolkit.formatted_text import ANSI, FormattedText, StyleAndTextTuples
from prompt_toolkit.history import History
from prompt_toolkit.input import Input
from prompt_toolkit.input.vt100_parser import Vt100Parser
from prompt_toolkit.key_binding import KeyBindings
from prompt_toolkit.key_binding.key_processor import KeyPress
from prompt_toolkit.output import Output
from prompt_toolkit.shortcuts import CompleteStyle

from attyguard.shell.completion import BashCompleter
from attyguard.shell.ptk_patches import KeyHold, apply_patches, history_now
from attyguard.shell.warnings import WarnBuffer

__all__ = ["ChildGone", "Eof", "Interrupted", "ShellPrompt", "idle_noise"]


@dataclass(frozen=True)
class Eof:
    """Ctrl-D on an empty line."""


@dataclass(frozen=True)
class Interrupted:
    """Ctrl-C: the line was dropped."""


@dataclass(frozen=True)
class ChildGone:
    """bash went away while the prompt was shown."""


ReadResult = str | Eof | Interrupted | ChildGone

# What readline writes when it redraws its (invisible) prompt, e.g. after a
# bind -x handler: not output for the user.
_NOISE = re.compile(rb"\r|\x1b\[K|\x1b\[\?2004[hl]|\x1b\[\d*[ABCD]")


def idle_noise(data: bytes) -> bool:
    """True if idle pty output is only readline redrawing its prompt."""
    return not _NOISE.sub(b"", data).strip(b"\n")


_VALID_SIGNALS = frozenset(signal.valid_signals())


class _PromptLoop(asyncio.SelectorEventLoop):
    """The prompt's event loop, checking signal numbers against a cached set.

    prompt_toolkit installs and removes its SIGWINCH handler around every
    line; asyncio checks the number each time against `signal.valid_signals()`,
    a fresh set of ~64 enum members per call: a visible share of a round
    trip (bench/README.md, "Figures behind the code").
    """

    def _check_signal(self, sig: int) -> None:
        if not isinstance(sig, int):
            raise TypeError(f"sig must be an int, not {sig!r}")
        if sig not in _VALID_SIGNALS:
            raise ValueError(f"invalid signal number {sig}")

    def call_soon_threadsafe(self, callback: Callable[..., object], *args: object,
                             context: contextvars.Context | None = None) -> asyncio.Handle:
        """`call_soon` when already on the running loop's own thread.

        prompt_toolkit schedules every redraw and invalidate event this way,
        even from inside the loop; asyncio then wakes its own selector through
        the self-pipe (a send, a recv and an extra loop pass each time), for
        callbacks the running loop picks up anyway. Other threads (the warn
        subscriber) still wake the loop.
        """
        if self._thread_id == threading.get_ident():  # type: ignore[attr-defined]
            return self.call_soon(callback, *args, context=context)
        return super().call_soon_threadsafe(callback, *args, context=context)


class _ShellPromptSession(PromptSession[str]):
    """PromptSession that works out the prompt's fragments once per prompt, not per use.

    One render asks for the prompt text about six times (is it multi-line, the line above the
    input, the first input line), each time converting the message again and rebuilding the
    first line one character at a time, a good share of a render, more with a long PS1
    (bench/README.md, "Figures behind the code"). The message is a fixed ANSI text for the
    whole of one `read`.
    """

    def __init__(self, **kwargs: Any) -> None:
        self._prompt_of: object = None
        self._prompt: StyleAndTextTuples = []
        self._first_line_of: object = None
        self._first_line: StyleAndTextTuples = []
        super().__init__(**kwargs)

    def _get_prompt(self) -> StyleAndTextTuples:
        message = self.message
        if not isinstance(message, ANSI):
            return super()._get_prompt()
        if message is not self._prompt_of:
            self._prompt = super()._get_prompt()
            self._prompt_of = message
        return self._prompt

    def _get_line_prefix(self, line_number: int, wrap_count: int,
                         get_prompt_text_2: Callable[[], StyleAndTextTuples],
                         ) -> StyleAndTextTuples:
        def first_line() -> StyleAndTextTuples:
            message = self.message
            if not isinstance(message, ANSI):
                return get_prompt_text_2()
            if message is not self._first_line_of:
                self._first_line = get_prompt_text_2()
                self._first_line_of = message
            return self._first_line

        return super()._get_line_prefix(line_number, wrap_count, first_line)


class ShellPrompt:
    def __init__(
        self,
        *,
        history: History | None,
        complete: Callable[[str, int], tuple[str, list[str]]] | None,
        warnings: WarnBuffer,
        bindings: KeyBindings,
        status_bar: bool,
        daemon_state: Callable[[], str] = lambda: "",
        input: Input | None = None,
        output: Output | None = None,
    ) -> None:
        self.warnings = warnings
        self.daemon_state = daemon_state
        self.session: PromptSession[str] = _ShellPromptSession(
            history=history,
            completer=BashCompleter(complete) if complete is not None else None,
            complete_while_typing=False,
            complete_style=CompleteStyle.READLINE_LIKE,
            key_bindings=bindings,
            bottom_toolbar=self._toolbar if status_bar else None,
            input=input,
            output=output,
            erase_when_done=False,
            enable_history_search=False,
            # Ctrl-X Ctrl-E (vi: v): $VISUAL/$EDITOR on the line, then it is
            # accepted as if typed, so the session classifies what was written.
            enable_open_in_editor=True,
        )
        warnings.on_change = self._invalidate
        # prompt_toolkit's internals adjusted for speed (ptk_patches.py): which applied.
        self._hold = KeyHold()
        self.patches: dict[str, bool] = apply_patches(self.session, self._hold)
        # One event loop for every line: `PromptSession.prompt` would build and
        # tear down a fresh loop (epoll, self-pipe, signal handlers) per line.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._on_accept: Callable[[str], None] | None = None
        self._parsed: dict[str, ANSI] = {}
        _tell_on_accept(self.session.default_buffer, lambda: self._on_accept)

    def _invalidate(self) -> None:
        app = self.session.app
        with contextlib.suppress(Exception):
            app.invalidate()

    def _toolbar(self) -> FormattedText:
        parts: list[tuple[str, str]] = []
        n = self.warnings.count
        parts.append(("bold fg:ansiyellow" if n else "", f" ⚠ {n} " if n else " attyguard "))
        state = self.daemon_state()
        if state:
            parts.append(("", f"│ daemon: {state} "))
        if n:
            parts.append(("", "│ Alt+Shift+W: show warnings "))
        return FormattedText(parts)

    def _ansi(self, text: str) -> ANSI:
        """`text` parsed as ANSI once: PS1/PS2 rarely change between prompts.

        Parsing walks the text one character at a time, and the same object
        lets `_ShellPromptSession` keep the prompt's fragments from the last
        prompt too. A few recent texts are kept (PS1, PS2, a changing PS1).
        """
        found = self._parsed.get(text)
        if found is None:
            if len(self._parsed) >= 8:
                self._parsed.clear()
            found = self._parsed[text] = ANSI(text)
        return found

    def take_typeahead(self) -> str:
        """Keys prompt_toolkit read after the accepting Enter (it keeps them
        for its next application): they were typed for what comes next."""
        from prompt_toolkit.input.typeahead import get_typeahead

        return "".join(press.data for press in get_typeahead(self.session.input))

    def set_editing_mode(self, mode: str) -> None:
        """Follow bash's `set -o vi|emacs` (and readline's editing-mode)."""
        from prompt_toolkit.enums import EditingMode

        self.session.editing_mode = EditingMode.VI if mode == "vi" else EditingMode.EMACS

    def read(self, message: str, *, default: str = "", keys: str = "", continuation: str = "",
             idle_fd: int | None = None,
             on_idle: Callable[[], bytes | None] | None = None,
             gone_fd: int | None = None,
             after_render: Callable[[], None] | None = None,
             on_accept: Callable[[str], None] | None = None,
             settle: Callable[[], str | None] | None = None) -> ReadResult:
        """Read one line; while waiting, output on `idle_fd` is printed above the prompt.

        `on_accept(text)` runs as Enter accepts the line, before the prompt's
        final frame is drawn and the application torn down (the line is
        returned as usual afterwards). `gone_fd` (bash's pidfd) becoming
        readable also calls `on_idle`: bash may end while a background job
        keeps `idle_fd` open and silent.

        `settle`: the prompt is drawn while bash is still finishing the last
        command (between its D and B marks, `BashChild.settling`); `on_idle`
        reads the rest of it. `settle()` answers None until it is over, then
        the keys bash drained (typed while the command ran) for this prompt.
        Until then every key waits unprocessed (`KeyHold`): the drained keys
        go first, and no line is accepted before bash can read it.
        """
        if settle is not None and (idle_fd is None or on_idle is None):
            raise ValueError("settle needs idle_fd and on_idle: they move the run on")
        watched = [fd for fd in (idle_fd, gone_fd) if fd is not None]
        gone = False
        loops: list[asyncio.AbstractEventLoop] = []

        def accepted(text: str) -> None:
            # What bash writes from here on (its echo of the line, if
            # `on_accept` sent it) is the passthrough's to read, not idle output.
            for loop in loops:
                for fd in watched:
                    loop.remove_reader(fd)
            if on_accept is not None:
                on_accept(text)

        self._on_accept = accepted

        def replay(loop: asyncio.AbstractEventLoop, typed: str) -> None:
            # Typeahead replays as keystrokes: Tab completes, Enter accepts
            # (and the line then goes through the session's enforcement);
            # Up and Ctrl-R among them recall from the history, loaded first.
            # (First in the queue: keys read since were typed after them.)
            processor = self.session.app.key_processor
            if typed:
                history_now(self.session.default_buffer)
                presses: list[KeyPress] = []
                parser = Vt100Parser(presses.append)
                parser.feed(typed)
                parser.flush()
                processor.feed_multiple(presses, first=True)
            if processor.input_queue:
                loop.call_soon(processor.process_keys)

        def settled(loop: asyncio.AbstractEventLoop) -> bool:
            """Let the keys go once bash is back at readline (see `settle`)."""
            got = settle() if settle is not None else ""
            if got is None:
                return False
            self._hold.on = False
            replay(loop, keys + got)
            return True

        def pre_run() -> None:
            loop = asyncio.get_running_loop()
            if after_render is not None:
                def once(_app: object) -> None:
                    self.session.app.after_render -= once
                    loop.call_soon(after_render)
                self.session.app.after_render += once
            self._hold.on = True
            settled(loop)
            if idle_fd is None or on_idle is None:
                return
            loops.append(loop)

            def readable() -> None:
                nonlocal gone
                data = on_idle()
                if data is None:
                    gone = True
                    for fd in watched:
                        loop.remove_reader(fd)
                    with contextlib.suppress(Exception):
                        self.session.app.exit(result="")
                    return
                if data and not idle_noise(data):
                    run_in_terminal(lambda: _write_out(data))
                if self._hold.on:
                    settled(loop)

            for fd in watched:
                loop.add_reader(fd, readable)

        try:
            # Lines after the first (a pasted block) are drawn after the user's PS2.
            cont = self._ansi(continuation) if continuation else None
            if self._loop is None or self._loop.is_closed():
                self._loop = _PromptLoop()
            # handle_sigint=False: the terminal is raw, so ^C arrives as a key;
            # asyncio's SIGINT handler would also replace the login shell's
            # SIG_IGN with Python's default handler once the prompt ends.
            text = self._loop.run_until_complete(self.session.prompt_async(
                self._ansi(message), default=default, pre_run=pre_run, prompt_continuation=cont,
                handle_sigint=False))
        except EOFError:
            return ChildGone() if gone else Eof()
        except KeyboardInterrupt:
            return Interrupted()
        finally:
            self._on_accept = None
            self._hold.on = False
            for loop in loops:
                if not loop.is_closed():
                    for fd in watched:
                        loop.remove_reader(fd)
        return ChildGone() if gone else text


def _tell_on_accept(buffer: Buffer, listener: Callable[[], Callable[[str], None] | None]) -> None:
    """Call the current `listener()` with the text as Enter accepts it, first thing."""
    accept = buffer.accept_handler

    def accept_and_tell(buf: Buffer) -> bool:
        tell = listener()
        if tell is not None:
            tell(buf.document.text)
        return accept(buf) if accept is not None else False

    buffer.accept_handler = accept_and_tell




def _write_out(data: bytes) -> None:
    import os
    import sys

    sys.stdout.flush()
    os.write(sys.stdout.fileno(), data)
