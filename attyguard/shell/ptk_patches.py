"""The adjustments of prompt_toolkit's internals the shell's prompt relies on for speed.

Each patch checks that the installed prompt_toolkit looks as expected and is
left out (reported False) where it does not; on the pinned version
(pyproject: `prompt_toolkit<3.1`) every one applies, which
tests/test_shell_prompt.py checks. `apply_patches` is the one entry point;
its report is `ShellPrompt.patches`.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterable
from typing import Any

from prompt_toolkit import PromptSession
from prompt_toolkit.application import Application
from prompt_toolkit.application.current import get_app
from prompt_toolkit.buffer import Buffer
from prompt_toolkit.enums import EditingMode
from prompt_toolkit.filters import base as _filters_base
from prompt_toolkit.key_binding.key_bindings import Binding, KeyBindingsBase, KeysTuple
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
from prompt_toolkit.layout.screen import Char, Screen, WritePosition
from prompt_toolkit.utils import to_str

from attyguard.shell.scrollback import erase_below_keeps_scrollback

__all__ = ["PATCHES", "KeyHold", "apply_patches", "history_now"]

# The names `apply_patches` reports, in the order it applies them.
PATCHES = ("cache_key_bindings", "slim_layout", "status_bar_without_cpr",
           "no_redraw_after_accept", "less_loop_churn", "lean_input_processors",
           "heights_once_per_render", "no_last_line_class", "fast_history",
           "erase_below_keeps_scrollback", "blank_runs_at_once", "hold_keys")


class KeyHold:
    """While `on`, the keys prompt_toolkit reads wait in its queue, unprocessed.

    The next prompt is drawn as soon as bash reports a command's end (its D
    mark), before bash has drained the keys typed during the command (they
    come back as its T record) and is back at readline (mark B). Keys typed
    meanwhile must neither overtake the drained ones nor be accepted while
    bash cannot take a line yet: they are held until both are in
    (`ShellPrompt.read`, `settle`). Answers to cursor-position requests are
    not keys and are processed at once (the renderer waits for them).
    """

    def __init__(self) -> None:
        self.on = False


def apply_patches(session: PromptSession[str], hold: KeyHold | None = None,
                  ) -> dict[str, bool]:
    """Apply every patch to `session`'s application; which applied (name -> bool).

    `hold`: the switch the `hold_keys` patch reads (a private one if None).
    """
    app = session.app
    return {
        "cache_key_bindings": _cache_key_bindings(app),
        "slim_layout": _slim_layout(app.layout.container),
        "status_bar_without_cpr": _status_bar_without_cpr(session),
        "no_redraw_after_accept": _no_redraw_after_accept(app),
        "less_loop_churn": _less_loop_churn(app, session.default_buffer),
        "lean_input_processors": _lean_input_processors(app.layout.find_all_windows()),
        "heights_once_per_render": _heights_once_per_render(app),
        "no_last_line_class": _no_last_line_class(app.layout.find_all_windows()),
        "fast_history": _fast_history(session.default_buffer),
        "erase_below_keeps_scrollback": erase_below_keeps_scrollback(app.output),
        "blank_runs_at_once": _blank_runs_at_once(),
        "hold_keys": _hold_keys(app, hold if hold is not None else KeyHold()),
    }


def _hold_keys(app: Application[str], hold: KeyHold) -> bool:
    """`app`'s key processing waits while `hold.on` (see `KeyHold`)."""
    from prompt_toolkit.keys import Keys

    processor = app.key_processor
    inner = getattr(processor, "process_keys", None)
    if inner is None or not hasattr(getattr(processor, "input_queue", None), "extend"):
        return False

    def process_keys() -> None:
        if not hold.on:
            inner()
            return
        queue = processor.input_queue  # (`reset` replaces it: looked up each time)
        answers = [p for p in queue if p.key is Keys.CPRResponse]
        if not answers:
            return
        kept = [p for p in queue if p.key is not Keys.CPRResponse]
        queue.clear()
        queue.extend(answers)
        try:
            inner()
        finally:
            queue.extend(kept)

    processor.process_keys = process_keys  # type: ignore[method-assign]
    return True


def _slim_layout(root: Container) -> bool:
    """Drop the parts of PromptSession's layout this shell never shows.

    Every render and every key walks the whole layout; PromptSession's holds its input twice
    (framed and unframed), toolbars for features not enabled here (system prompt, validation,
    multiline arg and search) and floats for menus never used (multi-column completion, right
    prompt). The renders are about half of a round trip (bench/README.md, "Figures behind the
    code"). Left alone if the layout is not the expected shape (another prompt_toolkit
    version).
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


def _less_loop_churn(app: object, buffer: Buffer) -> bool:
    """Stop the per-keystroke and per-line event-loop tasks this shell never needs.

    Per `true` + Enter there were a dozen background tasks and as many
    re-queued redraw callbacks, a large share of the front end's CPU per line
    (bench/README.md, "Figures behind the code"):
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

    One render asks each container for its height several times (the root HSplit, then its
    children again while dividing the room, each asking its control to build its content anew):
    a dozen calls per render for a layout of 4 containers (bench/README.md, "Figures behind the
    code"). Nothing a height depends on changes during a render; outside renders (key handlers)
    the cache is off and empty.
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

    prompt_toolkit re-reads the whole history into the input at every prompt, one
    async-generator step per entry: milliseconds per prompt with the default 50000 entries
    (bench/README.md, "Figures behind the code"). Once the History has its strings (the first
    prompt loads them the usual way), copy them in at C speed instead — the same lines in the
    same order. Left alone on another prompt_toolkit version.
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

    Typing then Enter invalidates the screen; the redraw is queued and ran
    in most round trips after Enter had already set the result,
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
    PromptSession layout each time): a large share of a `true` + Enter round
    trip (bench/README.md, "Figures behind the code"). The layout is fixed between two renders; only
    the focused window can change (a key handler moving focus), so it stays
    part of the key. Anything else forgets the cache at the next render.
    Each lookup on the merged bindings also re-derives their version from
    every nested registry (~30 calls per key press), for bindings that only
    change when a registry is edited: that check runs once per render here,
    and key presses read the merged copy it keeps up to date.

    Filters are still evaluated for every key, except that a key's list
    leaves out the bindings of the editing mode not in use: a binding whose
    filter is an "and" with one of prompt_toolkit's mode conditions
    (`vi_mode`, `vi_insert_mode`… or `emacs_mode`…, each false outside its
    mode) cannot match in the other mode, and in emacs mode two thirds of a
    printable key's bindings are vi's (bench/README.md, "Figures behind the
    code"). The mode is read at each lookup, so a handler that switches it
    mid-batch changes the next key's list.
    """

    def __init__(self, inner: KeyBindingsBase, app: object) -> None:
        self._inner = inner
        self._app = app
        self._window: object = None
        self._merged: KeyBindingsBase | None = None
        self._merged_before: KeyBindingsBase | None = None
        self._version_before: object = None
        self._for_keys: dict[tuple[KeysTuple, object], list[Binding]] = {}
        self._starting: dict[tuple[KeysTuple, object], list[Binding]] = {}

    def forget(self, _sender: object = None) -> None:
        self._merged = None

    def _current(self) -> KeyBindingsBase:
        window = self._app.layout.current_window  # type: ignore[attr-defined]
        if self._merged is None or window is not self._window:
            self._window = window
            merged = self._inner._key_bindings  # type: ignore[attr-defined]
            version = merged._version  # (brings the merged copy up to date)
            now = getattr(merged, "_bindings2", merged)
            if now is not self._merged_before or version != self._version_before:
                # (a registry was edited, or another window has the focus; the
                # same bindings keep their per-mode lists across renders)
                self._merged_before, self._version_before = now, version
                self._for_keys.clear()
                self._starting.clear()
            self._merged = now
        return self._merged

    @property
    def _version(self) -> object:
        return self._inner._version

    @property
    def bindings(self) -> list[Binding]:
        return self._inner.bindings

    def get_bindings_for_keys(self, keys: KeysTuple) -> list[Binding]:
        merged = self._current()
        return self._lookup(self._for_keys, keys, merged.get_bindings_for_keys)

    def get_bindings_starting_with_keys(self, keys: KeysTuple) -> list[Binding]:
        merged = self._current()
        return self._lookup(self._starting, keys, merged.get_bindings_starting_with_keys)

    @staticmethod
    def _lookup(cache: dict[tuple[KeysTuple, object], list[Binding]], keys: KeysTuple,
                fetch: Callable[[KeysTuple], list[Binding]]) -> list[Binding]:
        mode = get_app().editing_mode  # (what the mode conditions read)
        found = cache.get((keys, mode))
        if found is None:
            if len(cache) >= 512:  # (one entry per key typed: a bound)
                cache.clear()
            found = cache[keys, mode] = _possible_in(fetch(keys), mode)
        return found


def _mode_conditions() -> dict[object, EditingMode]:
    """prompt_toolkit's conditions that are false outside one editing mode (-> that mode)."""
    from prompt_toolkit.filters import app as f

    vi = ("vi_mode", "vi_navigation_mode", "vi_insert_mode", "vi_insert_multiple_mode",
          "vi_replace_mode", "vi_replace_single_mode", "vi_selection_mode",
          "vi_waiting_for_text_object_mode", "vi_digraph_mode", "vi_recording_macro")
    emacs = ("emacs_mode", "emacs_insert_mode", "emacs_selection_mode")
    only: dict[object, EditingMode] = {}
    for names, mode in ((vi, EditingMode.VI), (emacs, EditingMode.EMACS)):
        for name in names:
            condition = getattr(f, name, None)
            if condition is not None:
                only[condition] = mode
    return only


_MODE_ONLY = _mode_conditions()
# (prompt_toolkit's "and" of filters; if another version lacks it, no binding is left out)
_AndList: type = getattr(_filters_base, "_AndList", type(None))


def _possible_in(bindings: list[Binding], mode: object) -> list[Binding]:
    """`bindings` less those whose filter requires another editing mode than `mode`."""
    kept = []
    for binding in bindings:
        flt = binding.filter
        parts = getattr(flt, "filters", ()) if isinstance(flt, _AndList) else (flt,)
        if all(_MODE_ONLY.get(part, mode) is mode for part in parts):
            kept.append(binding)
    return kept


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


def history_now(buffer: Buffer) -> bool:
    """Fill the input's history now, not at the first render (keys replayed before it).

    prompt_toolkit loads the history when the input is first drawn, in a
    task; keys replayed into the first prompt (typed at the instant prompt,
    or while bash started) are processed before that render, so an Up or
    Ctrl-R among them would find no history. Loaded here, as History.load()
    does, the `_fast_history` path then copies it in at once, in order with
    the keys. False (nothing done) on another prompt_toolkit version.
    """
    history = buffer.history
    if not (hasattr(history, "_loaded") and hasattr(history, "_loaded_strings")
            and hasattr(buffer, "_load_history_task")):
        return False
    if not history._loaded:
        history._loaded_strings = list(history.load_history_strings())
        history._loaded = True
    buffer.load_history_if_not_yet_loaded()
    return True


# Runs shorter than this are drawn cell by cell, as prompt_toolkit does.
_MIN_RUN = 8


class _Blanks(Char):
    """`width` cells of one styled blank `cell` in one screen cell (`_blank_runs_at_once`)."""

    __slots__ = ("cell",)

    def __init__(self, cell: Char, width: int) -> None:
        super().__init__(" " * width, cell.style)
        self.cell = cell


def _merge_blank_runs(screen: Screen, has_style: Callable[[str], bool]) -> None:
    """Each run of one styled blank across a row becomes a `_Blanks` at its first column.

    The run's last cell stays as it is, so the row's last used column (which
    prompt_toolkit trims trailing blanks to) is the same; blanks whose style
    draws nothing, and runs with an escape sequence inside, are left alone.
    """
    for y, row in screen.data_buffer.items():
        if len(row) < _MIN_RUN:
            continue
        escapes = screen.zero_width_escapes.get(y)
        runs: list[tuple[int, int, Char]] = []
        cell_of_run: Char | None = None
        start = last = -2
        for x in sorted(row):
            cell = row[x]
            if cell is cell_of_run and x == last + 1:
                last = x
                continue
            if cell_of_run is not None and last - start + 1 >= _MIN_RUN:
                runs.append((start, last, cell_of_run))
            if type(cell) is Char and cell.char == " " and cell.width == 1 \
                    and has_style(cell.style):
                cell_of_run, start = cell, x
            else:
                cell_of_run = None
            last = x
        if cell_of_run is not None and last - start + 1 >= _MIN_RUN:
            runs.append((start, last, cell_of_run))
        for start, end, cell in runs:
            if escapes and any(x in escapes for x in range(start + 1, end)):
                continue
            row[start] = _Blanks(cell, end - start)
            for x in range(start + 1, end):
                del row[x]


def _split_changed_runs(previous: Screen, screen: Screen) -> None:
    """Runs of the last frame that this frame does not repeat go back to single cells.

    The diff then compares cell by cell there, as it always did (a run
    partly overwritten, or gone, is redrawn exactly where it changed).
    """
    for y, row in previous.data_buffer.items():
        new_row = screen.data_buffer.get(y)
        for x, cell in list(row.items()):
            if type(cell) is not _Blanks:
                continue
            new = new_row.get(x) if new_row is not None else None
            if type(new) is _Blanks and new.char == cell.char and new.style == cell.style:
                continue
            for i in range(cell.width):
                row[x + i] = cell.cell


def _blank_runs_at_once() -> bool:
    """Draw a run of identical styled blanks (the status bar's background) as one write.

    prompt_toolkit's screen diff handles every cell on its own (a cursor
    move, a style check and a write each); the status bar is a full row of
    styled blanks, so drawing it was ~0.2 ms of the ~0.55 ms render of each
    new prompt, on the path from Enter to the next prompt (bench/README.md,
    "Where a round trip goes"). Each frame's runs are merged into one wide
    cell before the diff (`_merge_blank_runs`), and the last frame's runs
    this one does not repeat are split again (`_split_changed_runs`), so
    the bytes on screen are the same. A patch of the renderer module's diff
    function, so for every prompt_toolkit application in this process (the
    shell has one); left out if that function does not look as expected.
    """
    import inspect

    from prompt_toolkit import renderer

    diff = renderer._output_screen_diff
    if getattr(diff, "_attyguard_blank_runs", False):
        return True
    names = list(inspect.signature(diff).parameters)
    if names[2:9] != ["screen", "current_pos", "color_depth", "previous_screen",
                      "last_style", "is_done", "full_screen"] \
            or "style_string_has_style" not in names:
        return False

    def _output_screen_diff(*args: Any, **kwargs: Any) -> Any:
        screen, previous = args[2], args[5]
        has_style = kwargs["style_string_has_style"]
        if isinstance(screen, Screen):
            _merge_blank_runs(screen, has_style.__getitem__)
            if isinstance(previous, Screen):
                _split_changed_runs(previous, screen)
        return diff(*args, **kwargs)

    _output_screen_diff._attyguard_blank_runs = True  # type: ignore[attr-defined]
    _output_screen_diff._attyguard_inner = diff  # type: ignore[attr-defined]
    renderer._output_screen_diff = _output_screen_diff
    return True
