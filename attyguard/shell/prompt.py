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
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from prompt_toolkit import PromptSession
from prompt_toolkit.application import Application, run_in_terminal
from prompt_toolkit.buffer import Buffer
from prompt_toolkit.formatted_text import ANSI, FormattedText, StyleAndTextTuples
from prompt_toolkit.history import History
from prompt_toolkit.input import Input
from prompt_toolkit.input.vt100_parser import Vt100Parser
from prompt_toolkit.key_binding import KeyBindings
from prompt_toolkit.key_binding.key_bindings import Binding, KeyBindingsBase, KeysTuple
from prompt_toolkit.key_binding.key_processor import KeyPress
from prompt_toolkit.layout.containers import (
    ConditionalContainer,
    Container,
    FloatContainer,
    HSplit,
    Window,
)
from prompt_toolkit.layout.controls import BufferControl, UIContent
from prompt_toolkit.layout.dimension import Dimension
from prompt_toolkit.layout.menus import CompletionsMenu
from prompt_toolkit.layout.processors import (
    AfterInput,
    AppendAutoSuggestion,
    ConditionalProcessor,
    DynamicProcessor,
    PasswordProcessor,
)
from prompt_toolkit.layout.screen import Screen, WritePosition
from prompt_toolkit.output import Output
from prompt_toolkit.shortcuts import CompleteStyle
from prompt_toolkit.utils import to_str

from attyguard.shell.completion import BashCompleter
from attyguard.shell.scrollback import erase_below_keeps_scrollback
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
    a fresh set of ~64 enum members per call: measured ~7% of a round trip.
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

    One render asks for the prompt text about six times (is it multi-line,
    the line above the input, the first input line), each time converting
    the message again and rebuilding the first line one character at a time:
    ~15% of a render measured with a short coloured PS1, more with a long
    one. The message is a fixed ANSI text for the whole of one `read`.
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
        app = self.session.app
        # The adjustments of prompt_toolkit's internals, each left out (False)
        # where the installed version does not look as expected; on the pinned
        # version every one applies (tests/test_shell_prompt.py).
        self.patches: dict[str, bool] = {
            "cache_key_bindings": _cache_key_bindings(app),
            "slim_layout": _slim_layout(app.layout.container),
            "status_bar_without_cpr": _status_bar_without_cpr(self.session),
            "no_redraw_after_accept": _no_redraw_after_accept(app),
            "less_loop_churn": _less_loop_churn(app, self.session.default_buffer),
            "lean_input_processors": _lean_input_processors(app.layout.find_all_windows()),
            "heights_once_per_render": _heights_once_per_render(app),
            "no_last_line_class": _no_last_line_class(app.layout.find_all_windows()),
            "fast_history": _fast_history(self.session.default_buffer),
            "erase_below_keeps_scrollback": erase_below_keeps_scrollback(app.output),
        }
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
             on_accept: Callable[[str], None] | None = None) -> ReadResult:
        """Read one line; while waiting, output on `idle_fd` is printed above the prompt.

        `on_accept(text)` runs as Enter accepts the line, before the prompt's
        final frame is drawn and the application torn down (the line is
        returned as usual afterwards). `gone_fd` (bash's pidfd) becoming
        readable also calls `on_idle`: bash may end while a background job
        keeps `idle_fd` open and silent.
        """
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

        def pre_run() -> None:
            loop = asyncio.get_running_loop()
            if after_render is not None:
                def once(_app: object) -> None:
                    self.session.app.after_render -= once
                    loop.call_soon(after_render)
                self.session.app.after_render += once
            if keys:
                # Typeahead replays as keystrokes: Tab completes, Enter accepts
                # (and the line then goes through the session's enforcement).
                presses: list[KeyPress] = []
                parser = Vt100Parser(presses.append)
                parser.feed(keys)
                parser.flush()
                processor = self.session.app.key_processor
                processor.feed_multiple(presses)
                loop.call_soon(processor.process_keys)
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
            for loop in loops:
                if not loop.is_closed():
                    for fd in watched:
                        loop.remove_reader(fd)
        return ChildGone() if gone else text


def _slim_layout(root: Container) -> bool:
    """Drop the parts of PromptSession's layout this shell never shows.

    Every render and every key walks the whole layout; PromptSession's holds
    its input twice (framed and unframed), toolbars for features not enabled
    here (system prompt, validation, multiline arg and search) and floats for
    menus never used (multi-column completion, right prompt). Measured: the
    renders are half of a round trip. Left alone if the layout is not the
    expected shape (another prompt_toolkit version).
    """
    if not isinstance(root, HSplit) or len(root.children) != 6:
        return False
    framed, bottom = root.children[0], root.children[-1]
    if not isinstance(framed, ConditionalContainer):
        return False
    main = framed.alternative_content
    if not isinstance(main, FloatContainer):
        return False
    # Only the readline-like completion menu can appear (Ctrl-N in vi mode).
    main.floats = [f for f in main.floats if isinstance(f.content, CompletionsMenu)]
    root.children = [main, bottom]
    return True


def _status_bar_without_cpr(session: PromptSession[str]) -> bool:
    """Show the status bar on terminals that never answer cursor-position requests.

    PromptSession hides its bottom toolbar until it knows how far the screen
    goes below the cursor (a CPR answer), to spare terminals that answer late
    a toolbar that jumps. A terminal that does not answer at all (or
    PROMPT_TOOLKIT_NO_CPR=1) would never see the warn counter: there the
    toolbar is drawn right under the input instead.
    """
    from prompt_toolkit.filters import Condition, is_done, renderer_height_is_known
    from prompt_toolkit.renderer import CPR_Support

    app = session.app
    # A frame drawn "as done" while the prompt goes on (before readline-like
    # completion lists are printed above it) stays in the scrollback: `is_done`
    # is still false then, so the status bar was left there, once per listing.
    drawing_done = [False]
    redraw = getattr(app, "_redraw", None)
    if redraw is not None:
        def _redraw(render_as_done: bool = False) -> None:
            drawing_done[0] = render_as_done
            try:
                redraw(render_as_done)
            finally:
                drawing_done[0] = False

        app._redraw = _redraw  # type: ignore[method-assign]
    for child in getattr(app.layout.container, "children", []):
        if (isinstance(child, ConditionalContainer) and isinstance(child.content, Window)
                and "bottom-toolbar" in str(child.content.style)):
            no_cpr = Condition(lambda: app.renderer.cpr_support is CPR_Support.NOT_SUPPORTED)
            wanted = Condition(lambda: session.bottom_toolbar is not None)
            not_done_frame = Condition(lambda: not drawing_done[0])
            child.filter = ~is_done & not_done_frame & (renderer_height_is_known | no_cpr) \
                & wanted
            return True
    return False


def _tell_on_accept(buffer: Buffer, listener: Callable[[], Callable[[str], None] | None]) -> None:
    """Call the current `listener()` with the text as Enter accepts it, first thing."""
    accept = buffer.accept_handler

    def accept_and_tell(buf: Buffer) -> bool:
        tell = listener()
        if tell is not None:
            tell(buf.document.text)
        return accept(buf) if accept is not None else False

    buffer.accept_handler = accept_and_tell


def _less_loop_churn(app: object, buffer: Buffer) -> bool:
    """Stop the per-keystroke and per-line event-loop tasks this shell never needs.

    Measured per `true` + Enter: ~12 background tasks and ~19 re-queued
    redraw callbacks, about a third of the front end's CPU per line:
    - PromptSession gives its buffer always-present validator and auto-suggest
      wrappers, so every inserted character starts two tasks that find
      nothing to do (this shell has neither; completion is Tab-only);
    - the key processor starts a `timeoutlen` timer task after every batch
      of keys, even when no key sequence is pending (only then it matters);
    - redraws are re-queued until the loop is idle (`max_render_postpone_time`)
      — a throttle for busy full-screen apps; here it meant one more loop
      pass per queued task, and the redraw is still coalesced (prompt_toolkit
      never queues a second one while one is pending);
    - the terminal size is also polled by a task, for threads/Windows where
      SIGWINCH cannot be used; this prompt runs in the main thread on Unix,
      where prompt_toolkit's SIGWINCH handler does the job.
    Each is left alone if this prompt_toolkit does not look as expected.
    """
    if hasattr(buffer, "validator") and hasattr(buffer, "auto_suggest"):
        buffer.validator = None
        buffer.auto_suggest = None
    if hasattr(app, "max_render_postpone_time"):
        app.max_render_postpone_time = None
    if hasattr(app, "terminal_size_polling_interval") and \
            threading.current_thread() is threading.main_thread():
        app.terminal_size_polling_interval = None
    processor = getattr(app, "key_processor", None)
    start = getattr(processor, "_start_timeout", None)
    if start is None or not hasattr(processor, "key_buffer") \
            or not hasattr(processor, "_flush_wait_task"):
        return False

    def _start_timeout() -> None:
        # As prompt_toolkit does: a new batch of keys cancels the old timer;
        # a new one is only needed while a key sequence waits for its end.
        if processor.key_buffer:  # type: ignore[union-attr]
            start()
            return
        task = processor._flush_wait_task  # type: ignore[union-attr]
        if task is not None:
            task.cancel()
            processor._flush_wait_task = None  # type: ignore[union-attr]

    processor._start_timeout = _start_timeout  # type: ignore[union-attr]
    return True


def _lean_input_processors(windows: Iterable[Window]) -> bool:
    """Drop the input processors of PromptSession features this shell never uses.

    Every render runs each processor over every input line (twice: once to
    measure, once to draw). Auto-suggestion, password masking, extra
    per-call processors and the placeholder are never enabled here
    (`ShellPrompt.read` passes none of them); search and selection
    highlighting and vi's multiple cursors stay.
    """
    unused = (AppendAutoSuggestion, PasswordProcessor, DynamicProcessor, AfterInput)
    done = False
    for window in windows:
        control = window.content
        if not isinstance(control, BufferControl) or not control.input_processors:
            continue
        done = True
        control.input_processors = [
            p for p in control.input_processors
            if not isinstance(p.processor if isinstance(p, ConditionalProcessor) else p, unused)]
    return done


def _no_last_line_class(windows: Iterable[Window]) -> bool:
    """Skip styling each window's last row as "class:last-line".

    prompt_toolkit restyles every cell of that row on every render (for
    full-screen apps that underline it); no style this prompt uses gives the
    class a look (prompt_toolkit's own default only styles it inside dialogs),
    so it changed nothing on screen and cost two passes over a terminal row
    per render. Left alone if `Window` does not look as expected.
    """
    for window in windows:
        if not hasattr(window, "_apply_style"):
            return False

        def apply_style(new_screen: Screen, write_position: WritePosition, parent_style: str,
                        window: Window = window) -> None:
            new_screen.fill_area(write_position, style=f"{parent_style} {to_str(window.style)}",
                                 after=False)

        window._apply_style = apply_style  # type: ignore[method-assign]
    return True


class _HeightCache:
    """A container's `preferred_height`, computed once per (width, room) while rendering.

    One render asks each container for its height several times (the root
    HSplit, then its children again while dividing the room, each asking its
    control to build its content anew): measured ~12 calls per render for a
    layout of 4 containers. Nothing a height depends on changes during a
    render; outside renders (key handlers) the cache is off and empty.
    """

    def __init__(self, compute: Callable[[int, int], Dimension]) -> None:
        self.compute = compute
        self.on = False
        self.seen: dict[tuple[int, int], Dimension] = {}

    def __call__(self, width: int, max_available_height: int) -> Dimension:
        if not self.on:
            return self.compute(width, max_available_height)
        key = (width, max_available_height)
        found = self.seen.get(key)
        if found is None:
            found = self.seen[key] = self.compute(width, max_available_height)
        return found


class _ContentCache:
    """The input's `create_content`, built once per (width, preview) while rendering.

    A render builds the input's content twice: once to measure its height
    (asked with a dummy height of 1), once to draw it, running every input
    processor over every line both times. The processors used here (search
    and selection highlighting, vi multiple cursors) do not look at the
    height; outside renders the cache is off and empty.
    """

    def __init__(self, compute: Callable[..., UIContent]) -> None:
        self.compute = compute
        self.on = False
        self.seen: dict[tuple[int, bool], UIContent] = {}

    def __call__(self, width: int, height: int, preview_search: bool = False) -> UIContent:
        if not self.on:
            return self.compute(width, height, preview_search)
        key = (width, preview_search)
        found = self.seen.get(key)
        if found is None:
            found = self.seen[key] = self.compute(width, height, preview_search)
        return found


def _heights_once_per_render(app: Application[str]) -> bool:
    caches: list[_HeightCache | _ContentCache] = []
    for container in app.layout.walk():
        cache = _HeightCache(container.preferred_height)
        container.preferred_height = cache  # type: ignore[method-assign]
        caches.append(cache)
        if isinstance(container, Window) and type(container.content) is BufferControl:
            content = _ContentCache(container.content.create_content)
            container.content.create_content = content  # type: ignore[method-assign]
            caches.append(content)

    def start(_app: object) -> None:
        for cache in caches:
            cache.seen.clear()  # (a render that raised never reached `stop`)
            cache.on = True

    def stop(_app: object) -> None:
        for cache in caches:
            cache.on = False
            cache.seen.clear()

    app.before_render += start
    app.after_render += stop
    return bool(caches)


def _fast_history(buffer: Buffer) -> bool:
    """Fill the input's history in one step once it is loaded.

    prompt_toolkit re-reads the whole history into the input at every prompt,
    one async-generator step per entry: measured +11 ms per prompt with the
    default 50000 entries. Once the History has its strings (the first prompt
    loads them the usual way), copy them in at C speed instead — the same
    lines in the same order. Left alone on another prompt_toolkit version.
    """
    history = buffer.history
    if not (hasattr(history, "_loaded") and hasattr(history, "_loaded_strings")
            and hasattr(buffer, "_working_lines") and hasattr(buffer, "_Buffer__working_index")
            and hasattr(buffer, "_load_history_task")):
        return False
    slow = buffer.load_history_if_not_yet_loaded

    def load_history_if_not_yet_loaded() -> None:
        if buffer._load_history_task is not None or not history._loaded:
            slow()
            return
        strings = history._loaded_strings  # newest first, as History.load() yields them
        buffer._working_lines.extendleft(strings)
        buffer._Buffer__working_index += len(strings)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        buffer._load_history_task = done

    buffer.load_history_if_not_yet_loaded = load_history_if_not_yet_loaded  # type: ignore[method-assign]
    return True


def _no_redraw_after_accept(app: object) -> bool:
    """Skip the redraw a keystroke scheduled when the line is already accepted.

    Typing then Enter invalidates the screen; the redraw is queued and,
    measured, ran in most round trips after Enter had already set the result,
    just before prompt_toolkit's own final ("done") render: a whole render
    for nothing. The final render is never skipped.
    """
    redraw = getattr(app, "_redraw", None)
    if redraw is None or not hasattr(app, "future"):
        return False  # another prompt_toolkit version: keep its behaviour

    def _redraw(render_as_done: bool = False) -> None:
        future = app.future
        if not render_as_done and future is not None and future.done():
            return
        redraw(render_as_done)

    app._redraw = _redraw  # type: ignore[attr-defined]
    return True


class _PerRenderBindings(KeyBindingsBase):
    """The application's combined key bindings, looked up once per render.

    prompt_toolkit rebuilds the lookup twice per key (walking the whole
    PromptSession layout each time): about a fifth of a `true` + Enter round
    trip was measured there. The layout is fixed between two renders; only
    the focused window can change (a key handler moving focus), so it stays
    part of the key. Anything else forgets the cache at the next render.
    Each lookup on the merged bindings also re-derives their version from
    every nested registry (~30 calls per key press), for bindings that only
    change when a registry is edited: that check runs once per render here,
    and key presses read the merged copy it keeps up to date. Filters are not
    cached: the key processor still evaluates them for every key.
    """

    def __init__(self, inner: KeyBindingsBase, app: object) -> None:
        self._inner = inner
        self._app = app
        self._window: object = None
        self._merged: KeyBindingsBase | None = None

    def forget(self, _sender: object = None) -> None:
        self._merged = None

    def _current(self) -> KeyBindingsBase:
        window = self._app.layout.current_window  # type: ignore[attr-defined]
        if self._merged is None or window is not self._window:
            self._window = window
            merged = self._inner._key_bindings  # type: ignore[attr-defined]
            merged._version  # noqa: B018  (brings the merged copy up to date)
            self._merged = getattr(merged, "_bindings2", merged)
        return self._merged

    @property
    def _version(self) -> object:
        return self._inner._version

    @property
    def bindings(self) -> list[Binding]:
        return self._inner.bindings

    def get_bindings_for_keys(self, keys: KeysTuple) -> list[Binding]:
        return self._current().get_bindings_for_keys(keys)

    def get_bindings_starting_with_keys(self, keys: KeysTuple) -> list[Binding]:
        return self._current().get_bindings_starting_with_keys(keys)


def _cache_key_bindings(app: object) -> bool:
    """Install `_PerRenderBindings` if this prompt_toolkit looks as expected."""
    processor = getattr(app, "key_processor", None)
    inner = getattr(processor, "_bindings", None)
    if inner is None or not hasattr(type(inner), "_key_bindings"):
        return False  # another prompt_toolkit version: keep its own lookup
    cached = _PerRenderBindings(inner, app)
    processor._bindings = cached  # type: ignore[union-attr]
    app.before_render += cached.forget  # type: ignore[attr-defined]
    return True


def _write_out(data: bytes) -> None:
    import os
    import sys

    sys.stdout.flush()
    os.write(sys.stdout.fileno(), data)
