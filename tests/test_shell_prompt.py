"""Headless tests of the prompt front end and its key bindings."""

from __future__ import annotations

import asyncio
import os
import re
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from prompt_toolkit.application import create_app_session
from prompt_toolkit.history import InMemoryHistory
from prompt_toolkit.input import PipeInput, create_pipe_input
from prompt_toolkit.output import DummyOutput

from attyguard.shell.keys import load_shell_bindings
from attyguard.shell.prompt import Eof, Interrupted, ShellPrompt, idle_noise
from attyguard.shell.warnings import WarnBuffer


@pytest.fixture
def pipe() -> Iterator[PipeInput]:
    with create_pipe_input() as inp, create_app_session(input=inp, output=DummyOutput()):
        yield inp


def make(pipe: PipeInput, warnings: WarnBuffer | None = None,
         complete=None, history=None) -> ShellPrompt:
    warnings = warnings or WarnBuffer()
    return ShellPrompt(history=history or InMemoryHistory(), complete=complete,
                       warnings=warnings, bindings=load_shell_bindings(warnings),
                       status_bar=True, input=pipe, output=DummyOutput())


def test_enter_returns_the_line(pipe):
    pipe.send_text("echo hi\r")
    assert make(pipe).read("$ ") == "echo hi"


def test_ctrl_d_on_empty_line_is_eof_and_ctrl_c_interrupts(pipe):
    ui = make(pipe)
    pipe.send_text("\x04")
    assert isinstance(ui.read("$ "), Eof)
    pipe.send_text("half a line\x03")
    assert isinstance(ui.read("$ "), Interrupted)


def test_alt_shift_w_drains_warnings(pipe, capsys):
    warnings = WarnBuffer()
    warnings.add("first warning")
    ui = make(pipe, warnings)
    pipe.send_text("\x1bW")
    pipe.send_text("done\r")
    assert ui.read("$ ") == "done"
    assert warnings.count == 0


def test_status_bar_shows_count():
    warnings = WarnBuffer()
    with create_pipe_input() as inp:
        ui = make(inp, warnings)
        assert "attyguard" in "".join(t for _, t in ui._toolbar())
        warnings.add("x")
        assert "⚠ 1" in "".join(t for _, t in ui._toolbar())


def test_tab_asks_the_completer_only_on_tab(pipe):
    asked: list[tuple[str, int]] = []

    def complete(line: str, point: int) -> tuple[str, list[str]]:
        asked.append((line, point))
        return "zzf", ["zzfunc_defined"]

    ui = make(pipe, complete=complete)
    pipe.send_text("zzf\t\r")
    assert ui.read("$ ") == "zzfunc_defined "
    assert asked == [("zzf", 3)]


def test_typeahead_keys_replay(pipe):
    ui = make(pipe)
    assert ui.read("$ ", keys="echo typed\r") == "echo typed"
    pipe.send_text(" more\r")
    assert ui.read("$ ", keys="partial") == "partial more"


def test_ctrl_r_then_enter_runs_match(pipe):
    history = InMemoryHistory()
    history.append_string("echo remembered-line")
    history.append_string("ls")
    ui = make(pipe, history=history)
    pipe.send_text("\x12remem\r")
    assert ui.read("$ ") == "echo remembered-line"


@pytest.mark.parametrize(
    ("data", "noise"),
    [(b"\r\x1b[K\r", True), (b"\x1b[?2004h", True), (b"hello\r\n", False), (b"", True)],
)
def test_idle_noise(data, noise):
    assert idle_noise(data) is noise


def test_editing_mode_follows_bash():
    from prompt_toolkit.enums import EditingMode

    with create_pipe_input() as inp:
        ui = make(inp)
        ui.set_editing_mode("vi")
        assert ui.session.editing_mode is EditingMode.VI
        ui.set_editing_mode("emacs")
        assert ui.session.editing_mode is EditingMode.EMACS


def test_slim_layout_keeps_what_the_shell_shows(pipe):
    from prompt_toolkit.layout.containers import Window
    from prompt_toolkit.layout.controls import SearchBufferControl
    from prompt_toolkit.layout.menus import CompletionsMenu, MultiColumnCompletionsMenu

    ui = make(pipe)
    parts = list(ui.session.app.layout.walk())
    assert any(isinstance(c, CompletionsMenu) for c in parts)
    assert any(isinstance(c, Window) and isinstance(c.content, SearchBufferControl)
               for c in parts)
    # The input once: PromptSession's layout also holds a framed copy of it.
    inputs = [c for c in parts if isinstance(c, Window)
              and getattr(c.content, "buffer", None) is ui.session.default_buffer]
    assert len(inputs) == 1
    assert not any(isinstance(c, MultiColumnCompletionsMenu) for c in parts)


def test_no_render_after_the_line_is_accepted_but_the_final_one(pipe, tmp_path):
    # A real VT100 output (to a file): DummyOutput renders too quickly for the
    # keystroke's queued redraw to still be pending when Enter is handled.
    from prompt_toolkit.data_structures import Size
    from prompt_toolkit.output.vt100 import Vt100_Output

    warnings = WarnBuffer()
    with open(tmp_path / "screen", "w") as screen:
        out = Vt100_Output(screen, lambda: Size(24, 80), term="xterm-256color",
                           enable_cpr=False)
        ui = ShellPrompt(history=InMemoryHistory(), complete=None, warnings=warnings,
                         bindings=load_shell_bindings(warnings), status_bar=True,
                         input=pipe, output=out)
        app = ui.session.app
        after_accept: list[bool] = []

        def note(_app: object) -> None:
            if app.future is not None and app.future.done():
                after_accept.append(True)

        app.before_render += note
        lines = [f"echo {i}" for i in range(20)]
        for line in lines:
            pipe.send_text(line + "\r")
            assert ui.read("$ ") == line
    assert len(after_accept) == len(lines)  # one "done" render per line, nothing in between


def test_history_recall_order_after_the_first_prompt(pipe):
    history = InMemoryHistory()
    for i in range(50):
        history.append_string(f"echo {i}")
    ui = make(pipe, history=history)
    pipe.send_text("first\r")
    assert ui.read("$ ") == "first"
    # Filled in one step from here on: the same entries, newest first.
    pipe.send_text("\x1b[A\x1b[A\r")
    assert ui.read("$ ") == "echo 49"
    pipe.send_text("\x1b[A" * 4 + "\r")  # echo 49, first, echo 49, echo 48
    assert ui.read("$ ") == "echo 48"
    assert list(ui.session.default_buffer._working_lines)[:3] == ["echo 0", "echo 1", "echo 2"]


def test_a_pending_key_sequence_is_still_flushed_after_timeoutlen(pipe):
    # Ctrl-X alone is also the prefix of Ctrl-X Ctrl-Y: the key processor
    # waits `timeoutlen` for the rest, then runs the short binding.
    from prompt_toolkit.key_binding import KeyBindings

    bindings = KeyBindings()
    bindings.add("c-x")(lambda event: event.current_buffer.insert_text("short"))
    bindings.add("c-x", "c-y")(lambda event: event.current_buffer.insert_text("long"))
    ui = ShellPrompt(history=InMemoryHistory(), complete=None, warnings=WarnBuffer(),
                     bindings=bindings, status_bar=False, input=pipe, output=DummyOutput())
    ui.session.app.timeoutlen = 0.05
    flushed: list[str] = []

    def after_render() -> None:
        # The first frame is drawn: Ctrl-X now, Enter once the timer ran it.
        pipe.send_text("\x18")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10

        def wait() -> None:
            if "short" in ui.session.default_buffer.text or loop.time() > deadline:
                flushed.append(ui.session.default_buffer.text)
                pipe.send_text("\r")
                return
            loop.call_later(0.01, wait)

        loop.call_soon(wait)

    assert ui.read("$ ", after_render=after_render) == "short"
    assert flushed == ["short"]
    pipe.send_text("\x18\x19\r")  # the whole sequence still takes the long binding
    assert ui.read("$ ") == "long"


def test_a_warning_from_another_thread_redraws_the_waiting_prompt(pipe):
    # The prompt's loop skips the self-pipe only for its own thread: a warn
    # event arriving on the subscriber's thread must still wake it.
    warnings = WarnBuffer()
    ui = make(pipe, warnings)
    app = ui.session.app
    renders: list[int] = []

    def after_render() -> None:
        renders.append(app.render_counter)
        # Deadline: a loop left asleep would only wake here; Ctrl-C then fails the test.
        asyncio.get_running_loop().call_later(10, pipe.send_text, "\x03")
        threading.Thread(target=warnings.add, args=("from a thread",)).start()

    def note(_app: object) -> None:
        if renders and app.render_counter > renders[0] and "⚠ 1" in "".join(
                t for _, t in ui._toolbar()):
            renders.append(app.render_counter)
            pipe.send_text("\r")

    app.after_render += note
    assert ui.read("$ ", after_render=after_render) == ""
    assert len(renders) >= 2


def test_typing_starts_no_per_key_background_tasks(pipe):
    # No validator or auto-suggest here: inserting text must not start tasks.
    ui = make(pipe)
    app = ui.session.app
    started: list[object] = []
    create = app.create_background_task

    def counting(coroutine):  # type: ignore[no-untyped-def]
        started.append(coroutine)
        return create(coroutine)

    app.create_background_task = counting
    pipe.send_text("echo a long enough line\r")
    assert ui.read("$ ") == "echo a long enough line"
    names = [getattr(c, "__qualname__", "") for c in started]
    assert not [n for n in names if "validat" in n or "suggest" in n or "wait" in n], names


def test_only_unused_input_processors_are_dropped(pipe):
    from prompt_toolkit.layout.processors import (
        AppendAutoSuggestion,
        ConditionalProcessor,
        DisplayMultipleCursors,
        HighlightIncrementalSearchProcessor,
        HighlightSelectionProcessor,
        PasswordProcessor,
    )

    ui = make(pipe)
    [control] = [w.content for w in ui.session.app.layout.find_all_windows()
                 if getattr(w.content, "buffer", None) is ui.session.default_buffer]
    kinds = {type(p.processor if isinstance(p, ConditionalProcessor) else p)
             for p in control.input_processors}
    assert {HighlightIncrementalSearchProcessor, HighlightSelectionProcessor,
            DisplayMultipleCursors} <= kinds
    assert not kinds & {AppendAutoSuggestion, PasswordProcessor}


def test_heights_follow_the_buffer_between_renders(pipe):
    ui = make(pipe)
    root = ui.session.app.layout.container
    heights: list[int] = []

    def after_render() -> None:
        buffer = ui.session.default_buffer
        heights.append(root.preferred_height(80, 24).preferred)
        buffer.text = "one\ntwo\nthree"  # (a key handler could do this)
        heights.append(root.preferred_height(80, 24).preferred)
        pipe.send_text("\r")

    assert ui.read("$ ", after_render=after_render) == "one\ntwo\nthree"
    assert heights[1] == heights[0] + 2


def test_on_accept_hears_the_line_before_the_final_frame(pipe):
    ui = make(pipe)
    app = ui.session.app
    heard: list[tuple[str, int]] = []
    pipe.send_text("echo early\r")
    result = ui.read("$ ", on_accept=lambda text: heard.append((text, app.render_counter)))
    assert result == "echo early"
    assert len(heard) == 1 and heard[0][0] == "echo early"
    assert app.render_counter > heard[0][1]  # the "done" frame came after
    pipe.send_text("next\r")
    assert ui.read("$ ") == "next" and len(heard) == 1  # only for the read that asked


def _drawing_to(screen, pipe: PipeInput) -> ShellPrompt:
    """A prompt with the status bar whose real VT100 output goes to `screen` (24x80)."""
    from prompt_toolkit.data_structures import Size
    from prompt_toolkit.output.vt100 import Vt100_Output

    warnings = WarnBuffer()
    out = Vt100_Output(screen, lambda: Size(24, 80), term="xterm-256color", enable_cpr=False)
    return ShellPrompt(history=InMemoryHistory(), complete=None, warnings=warnings,
                       bindings=load_shell_bindings(warnings), status_bar=True,
                       input=pipe, output=out)


def test_each_read_draws_its_own_prompt_message(pipe, tmp_path):
    # The prompt's fragments are worked out once per message: a new message
    # (the next PS1, or PS2) must still be drawn, and a two-line PS1 too.
    path = tmp_path / "screen"
    with open(path, "w") as screen:
        ui = _drawing_to(screen, pipe)
        for message in ("\x1b[32mfirst\x1b[0m> ", "second> ", "upper line\nthird> "):
            pipe.send_text("x\r")
            assert ui.read(message) == "x"
    drawn = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", path.read_text())
    for text in ("first> x", "second> x", "upper line", "third> x"):
        assert text in drawn, drawn


def test_the_status_bar_keeps_its_own_style_across_the_row(pipe, tmp_path):
    # Window styles are still applied to the whole row (only the unused
    # "class:last-line" pass is skipped): the bar is drawn reversed.
    path = tmp_path / "screen"
    with open(path, "w") as screen:
        ui = _drawing_to(screen, pipe)
        app = ui.session.app

        def height_known() -> None:
            # (what a terminal's cursor position report tells; a file has none)
            app.renderer._min_available_height = 10
            app.after_render += lambda _app: pipe.send_text("x\r")
            app.invalidate()

        assert ui.read("$ ", after_render=height_known) == "x"
    drawn = path.read_text()
    bar = drawn[drawn.index(" attyguard "):]
    # reverse video (SGR 7) from the bar's text to the end of its 80 columns
    assert re.search(r"\x1b\[[0-9;]*\b7m attyguard ", drawn), drawn
    assert " " * 60 in re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", bar)


def test_a_typed_ahead_ctrl_d_on_an_empty_line_is_eof(pipe):
    ui = make(pipe)
    assert isinstance(ui.read("$ ", keys="\x04"), Eof)
    pipe.send_text("x\r")
    assert ui.read("$ ", keys="ab\x01\x04") == "xb"  # not empty: Ctrl-D deletes a character


def test_every_prompt_toolkit_adjustment_applies_on_the_pinned_version(pipe):
    # Each adjustment leaves prompt_toolkit alone where its internals differ;
    # on the version pyproject.toml pins, every one must take effect (a new
    # prompt_toolkit that silently drops one shows up here, not as lost speed).
    import prompt_toolkit

    patches = make(pipe).patches
    missing = [name for name, applied in patches.items() if not applied]
    assert not missing, f"prompt_toolkit {prompt_toolkit.__version__}: not applied: {missing}"
    from attyguard.shell.ptk_patches import PATCHES

    assert tuple(patches) == PATCHES  # (each patch reported, by its name)


def test_erase_below_never_starts_at_the_top_left_cell():
    """tmux pushes the screen into its scrollback on an erase-below issued at
    the top-left cell: the override clears the row, then erases from the next."""
    from attyguard.shell.scrollback import ERASE_BELOW, erase_below_keeps_scrollback

    written: list[str] = []

    class Out:
        def write_raw(self, data: str) -> None:
            written.append(data)

        def erase_down(self) -> None:
            written.append("\x1b[J")

    out = Out()
    assert erase_below_keeps_scrollback(out)
    out.erase_down()
    assert written == [ERASE_BELOW]
    # the erase-below comes only after a move down a row
    assert ERASE_BELOW.index("\x1b[B") < ERASE_BELOW.index("\x1b[J")
    assert not erase_below_keeps_scrollback(object())
def _frames() -> list[object]:
    """Screens as the shell's prompt draws them: a prompt row, then a status bar row
    (styled blanks across the width), the bar's text changing, gone, back, widened."""
    from prompt_toolkit.layout.screen import _CHAR_CACHE, Screen

    def frame(prompt: str, bar: str | None, width: int = 40) -> Screen:
        screen = Screen()
        for x, c in enumerate(prompt):
            screen.data_buffer[0][x] = _CHAR_CACHE[c, ""]  # (as Screen interns them)
        if bar is not None:
            for x in range(width):
                c = bar[x] if x < len(bar) else " "
                screen.data_buffer[1][x] = _CHAR_CACHE[c, "class:bottom-toolbar reverse"]
        screen.height = 2 if bar is not None else 1
        screen.width = width
        return screen

    def text_below(prompt: str) -> Screen:
        # Plain text where the bar was, with unstyled blanks between: the
        # bar's blanks there must be redrawn as plain ones.
        screen = frame(prompt, None)
        screen.data_buffer[1][0] = _CHAR_CACHE["a", ""]
        screen.data_buffer[1][30] = _CHAR_CACHE["z", ""]
        screen.height = 2
        return screen

    return [
        lambda: frame("$ ", " attyguard "),
        lambda: frame("$ ls", " attyguard "),
        lambda: frame("$ ls", " ⚠ 1 │ Alt+Shift+W: show warnings "),
        lambda: frame("$ ls -l", " x " + "  " * 3),
        lambda: frame("$ ls -l", None),
        lambda: frame("$ ", " attyguard "),
        lambda: text_below("$ "),
        lambda: frame("$ ", " attyguard "),
        lambda: frame("$ ", " attyguard ", width=50),
    ]


def _diff_bytes(diff: Any, frames: list[Any], is_done_at: int | None = None) -> list[str]:
    import io

    from prompt_toolkit.application import Application
    from prompt_toolkit.data_structures import Point, Size
    from prompt_toolkit.output.color_depth import ColorDepth
    from prompt_toolkit.output.vt100 import Vt100_Output
    from prompt_toolkit.renderer import _StyleStringHasStyleCache, _StyleStringToAttrsCache
    from prompt_toolkit.styles import DummyStyleTransformation, Style

    style = Style([("bottom-toolbar", "reverse")])
    attrs = _StyleStringToAttrsCache(style.get_attrs_for_style_str, DummyStyleTransformation())
    has_style = _StyleStringHasStyleCache(attrs)
    out: list[str] = []
    previous = None
    pos, last = Point(0, 0), None
    app: Application[None] = Application()
    for i, make_frame in enumerate(frames):
        screen = make_frame()
        buf = io.StringIO()
        output = Vt100_Output(buf, lambda: Size(24, 80), term="xterm")
        pos, last = diff(app, output, screen, pos, ColorDepth.DEPTH_8_BIT, previous, last,
                         i == is_done_at, full_screen=False, attrs_for_style_string=attrs,
                         style_string_has_style=has_style, size=Size(24, screen.width),
                         previous_width=previous.width if previous is not None else 0)
        output.flush()
        out.append(buf.getvalue())
        previous = screen
    return out


def _on_a_terminal(writes: list[str]) -> list[tuple[object, ...]]:
    """What a terminal (pyte) shows after each frame: characters, reverse video, cursor."""
    import pyte

    term = pyte.Screen(60, 6)
    stream = pyte.Stream(term)
    shown = []
    for data in writes:
        stream.feed(data)
        cells = tuple(tuple((term.buffer[y][x].data, term.buffer[y][x].reverse)
                            for x in range(60)) for y in range(6))
        shown.append((cells, term.cursor.x, term.cursor.y))
    return shown


def test_blank_runs_drawn_at_once_look_the_same(pipe):
    # The status bar's styled blanks go out as one write per run; what the
    # terminal shows, frame after frame, is what prompt_toolkit's own diff shows.
    from prompt_toolkit import renderer

    make(pipe)
    patched = renderer._output_screen_diff
    inner = getattr(patched, "_attyguard_inner", None)
    assert inner is not None, "blank_runs_at_once not applied"
    frames = _frames()
    for done in (None, 4):
        got = _diff_bytes(patched, frames, done)
        assert _on_a_terminal(got) == _on_a_terminal(_diff_bytes(inner, frames, done))
    # It did merge: the bar's blanks are one cell of the patched frame, and
    # the first frame's bytes are prompt_toolkit's, byte for byte.
    from attyguard.shell.ptk_patches import _Blanks

    screen = frames[0]()
    assert _diff_bytes(patched, [lambda: screen]) == _diff_bytes(inner, frames[:1])
    assert any(isinstance(c, _Blanks) for c in screen.data_buffer[1].values())


@pytest.mark.parametrize("state", ["emacs", "emacs-selection", "vi-insert", "vi-navigation",
                                   "vi-selection", "vi-operator"])
def test_per_mode_binding_lists_match_the_same_keys_as_all_bindings(pipe, state):
    # The key lookup leaves out the other editing mode's bindings: in every
    # mode and sub-mode, exactly the bindings that would match still match.
    from prompt_toolkit.application.current import set_app
    from prompt_toolkit.enums import EditingMode
    from prompt_toolkit.key_binding.vi_state import InputMode
    from prompt_toolkit.keys import Keys
    from prompt_toolkit.selection import SelectionState

    ui = make(pipe)
    app = ui.session.app
    lookup = app.key_processor._bindings
    everything = lookup._inner
    buffer = ui.session.default_buffer
    buffer.text = "echo one two"
    app.editing_mode = EditingMode.VI if state.startswith("vi") else EditingMode.EMACS
    if state == "vi-navigation":
        app.vi_state.input_mode = InputMode.NAVIGATION
    if state.endswith("selection"):
        buffer.selection_state = SelectionState(0)
    if state == "vi-operator":
        app.vi_state.operator_func = lambda *_: None
    keys: list[tuple[str | Keys, ...]] = [
        ("t",), ("d",), ("x",), ("v",), (Keys.ControlM,), (Keys.Escape,), (Keys.Escape, "b"),
        (Keys.ControlX,), (Keys.ControlX, Keys.ControlE), (Keys.ControlR,), (Keys.Tab,),
        (Keys.ControlC,), (Keys.Up,), ("g",), ("g", "g")]
    pruned_somewhere = False
    with set_app(app):
        for key in keys:
            full = everything.get_bindings_for_keys(key)
            kept = lookup.get_bindings_for_keys(key)
            pruned_somewhere |= len(kept) < len(full)
            assert [b for b in kept if b.filter()] == [b for b in full if b.filter()], key
            longer = everything.get_bindings_starting_with_keys(key)
            kept_longer = lookup.get_bindings_starting_with_keys(key)
            assert any(b.filter() for b in kept_longer) == any(b.filter() for b in longer), key
    assert pruned_somewhere  # (the other mode's bindings were left out)


def test_switching_to_vi_mid_batch_uses_vi_keys_for_the_rest(pipe):
    # The editing mode is read at each key, not once per batch or render.
    from prompt_toolkit.enums import EditingMode
    from prompt_toolkit.key_binding import KeyBindings

    warnings = WarnBuffer()
    bindings = load_shell_bindings(warnings)
    extra = KeyBindings()

    @extra.add("c-t")
    def _(event: Any) -> None:
        event.app.editing_mode = EditingMode.VI

    from prompt_toolkit.key_binding import merge_key_bindings

    ui = ShellPrompt(history=InMemoryHistory(), complete=None, warnings=warnings,
                     bindings=merge_key_bindings([bindings, extra]), status_bar=True,
                     input=pipe, output=DummyOutput())
    # Emacs: Ctrl-A goes to the start. Then vi: Escape, `x` deletes the character
    # under the cursor (in emacs `x` would be typed).
    pipe.send_text("abc\x01\x14\x1bx\r")
    assert ui.read("$ ") == "bc"


def test_keys_wait_while_bash_settles_and_the_drained_keys_go_first(pipe):
    # The prompt is up while bash still finishes the last command: keys typed
    # now are held (not accepted, not ahead of the keys bash drains), then
    # follow the drained ones once `settle` answers.
    ui = make(pipe)
    r, w = os.pipe()
    back = [False]
    accepted: list[tuple[str, bool]] = []

    def settle() -> str | None:
        return "echo ab" if back[0] else None

    def on_idle() -> bytes:
        os.read(r, 64)
        return b""

    def after_render() -> None:
        pipe.send_text("cd\r")  # typed after the prompt showed, before bash is back
        loop = asyncio.get_running_loop()
        processor = ui.session.app.key_processor

        def when_read() -> None:
            if not processor.input_queue:  # (not read from the input yet)
                loop.call_soon(when_read)
                return
            back[0] = True
            os.write(w, b"x")  # (bash's prompt mark arriving on the pty)

        loop.call_soon(when_read)

    try:
        got = ui.read("$ ", idle_fd=r, on_idle=on_idle, settle=settle,
                      after_render=after_render,
                      on_accept=lambda text: accepted.append((text, back[0])))
    finally:
        os.close(r)
        os.close(w)
    assert got == "echo abcd"
    assert accepted == [("echo abcd", True)]
