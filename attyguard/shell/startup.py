"""Start-up of the interactive shell: from the bash child to the first prompt and the loop.

Owns the order things happen in while bash reads its rc files: the config,
the passthrough of start-up output, the instant prompt drawn before the
front end is imported (instant.py), the front end's imports (on a thread
when bash is slow), the Guard loaded once the first prompt is up
(wiring.GuardLoader), the daemon's warn subscriber; then it hands over to
`Session.loop` (session.py, the one enforcement point) and tears down after.
"""

from __future__ import annotations

import contextlib
import gc
import os
import select
import sys
import termios
import threading
import tty
from typing import TYPE_CHECKING, Any, Protocol

from attyguard.shell.bash import BashChild, Phase, RunResult
from attyguard.shell.echo_ahead import EchoAhead, echo_room
from attyguard.shell.instant import (
    InstantPrompt,
    draw_instant_prompt,
    ends_at_line_start,
    first_prompt_input,
    prompt_input_attrs,
    prompt_rows,
)
from attyguard.shell.session import Session, _finished_marks, _keep_partial_line, _osc_bytes
from attyguard.shell.spawn import (
    Started,
    clean_up_on_signals,
    ignore_terminal_signals,
    interactive_env,
    shellrc_dir,
    start_bash,
    terminal_size,
)
from attyguard.shell.warnings import WarnBuffer

if TYPE_CHECKING:  # imported lazily: bash is spawned before anything heavy
    from prompt_toolkit.output import ColorDepth

    from attyguard.config import Config
    from attyguard.shell.oscfilter import OscFilter
    from attyguard.shell.refusals import Refusals
    from attyguard.shell.wiring import GuardLoader

__all__ = ["run_interactive"]


def run_interactive(*, login: bool, norc: bool = False, noprofile: bool = False,
                    started: Started | None = None) -> int:
    """The interactive shell; `started`: the bash child shell/main.py started already."""
    if started is None:
        # bash first: its start-up runs while we import prompt_toolkit.
        started = start_bash(shellrc_dir(), login=login, size=terminal_size(0),
                             env=interactive_env(norc=norc, noprofile=noprofile))
        ignore_terminal_signals()
        clean_up_on_signals(started)
    child = BashChild.adopt(started)
    try:
        return _interactive(child)
    finally:
        child.close()


def _interactive(child: BashChild) -> int:
    from attyguard.config import load_config

    config, errors = load_config()
    for error in errors:
        print(f"attyguard: config: {error}", file=sys.stderr)
    child.osc_filter = _osc_filter(config)
    # bash reads its rc files meanwhile; its output waits in the pty.
    preload = _FrontEndPreload() if not _readable(child.fifo) else None
    saved = _tty_attrs(0)
    if saved is not None:
        tty.setraw(0, termios.TCSANOW)
    try:
        # Start-up output (motd, rc files) passes through untouched.
        first = child.passthrough(0, 1, phase=Phase.RUN)
        if saved is not None:
            # Straight from raw to prompt_toolkit's input mode, never cooked in
            # between: keys typed until its first prompt stay queued, unechoed.
            termios.tcsetattr(0, termios.TCSANOW, prompt_input_attrs(saved))
        if first.kind == "exited":
            return first.status
        return _first_prompt(child, config, first, saved, preload)
    finally:
        if preload is not None:
            preload.join()
        if saved is not None:
            with contextlib.suppress(termios.error):
                termios.tcsetattr(0, termios.TCSANOW, saved)


class _FrontEndPreload:
    """The front end's imports on a thread, while bash is still reading its rc files.

    Started only when bash has not reported its first prompt by the time our
    own set-up is done (a slow rc: version managers, bash-completion…): the
    main thread then only waits in select, so ≈120 ms of imports cost no
    wall time. With a fast rc the main thread imports them itself right
    after drawing the instant prompt (a thread then only competes with it).
    While it runs the GIL is handed over every 1 ms instead of 5 ms, so the
    main thread draws the instant prompt as soon as bash's record arrives.
    With a slow rc it brings the first key's echo forward and leaves the
    first prompt as it was (bench/README.md, "Figures behind the code").
    """

    def __init__(self) -> None:
        self._interval = sys.getswitchinterval()
        sys.setswitchinterval(0.001)
        self._thread = threading.Thread(target=self._work, name="attyguard-preload",
                                        daemon=True)
        self._thread.start()

    @staticmethod
    def _work() -> None:
        # A failure shows when the main thread imports the same modules.
        with contextlib.suppress(Exception):
            import attyguard.shell.confirm
            import attyguard.shell.history
            import attyguard.shell.keys
            import attyguard.shell.prompt
            import attyguard.shell.wiring  # noqa: F401

    def join(self) -> None:
        """Wait for the imports (idempotent); the usual GIL hand-over again."""
        self._thread.join()
        sys.setswitchinterval(self._interval)


def _osc_filter(config: Config) -> OscFilter | None:
    """The `[terminal]` stripping of programs' escape sequences, if any is asked for."""
    from attyguard.shell.oscfilter import OscFilter, osc_numbers

    term = config.terminal
    numbers = osc_numbers(clipboard=term.strip_clipboard, palette=term.strip_palette,
                          shell_marks=term.strip_shell_marks)
    return OscFilter(numbers) if numbers else None


def _direct_colour() -> ColorDepth | None:
    """24-bit colour for what attyguard prints (the REFUSED line above all): a
    program's output can recolour palette entries (OSC 4), not direct colours.
    Left to prompt_toolkit where the environment chose (NO_COLOR, its own
    variable) or the terminal cannot show it."""
    from prompt_toolkit.output import ColorDepth

    if ColorDepth.from_env() is not None or os.environ.get("TERM", "") in ("dumb", "linux", ""):
        return None
    return ColorDepth.TRUE_COLOR


def _readable(fd: int) -> bool:
    try:
        return bool(select.select([fd], [], [], 0)[0])
    except (OSError, ValueError):
        return False


def _first_prompt(child: BashChild, config: Config, first: RunResult,
                  saved: list[Any] | None, preload: _FrontEndPreload | None = None) -> int:
    """The instant prompt if it is safe, then prompt_toolkit and the loop."""
    warnings = WarnBuffer()
    from attyguard.shell.refusals import Refusals

    refusals = Refusals()
    subscriber = _subscribe(config, warnings, refusals)  # (may print: before anything is drawn)
    _finished_marks(config, 1, child.state.status, child.state.cwd)
    keep = _keep_partial_line(child.out_tail, 1)
    if keep:
        os.write(1, keep.encode())
        child.out_tail = b""
    instant = None
    size = terminal_size(0)
    if (saved is not None and size is not None and os.isatty(1) and first.kind == "done"
            and not first.repaired and ends_at_line_start(child.out_tail)):
        rows = prompt_rows(child.state.ps1, size[1], size[0])
        if rows is not None:
            instant = draw_instant_prompt(
                1, child.state.ps1, rows, reserve_below=1 if config.ui.status_bar else 0,
                mark=_osc_bytes(config, "133;A"), size=size)
    # Keys typed at the instant prompt are echoed at once, then replayed into
    # the first prompt (echo_ahead.py): before, they showed ≈70 ms later.
    echo = EchoAhead(0, 1, echo_room(child.state.ps1, size[1])) \
        if instant is not None and size is not None else None
    try:
        return _front_end(child, config, saved, instant, echo, warnings, refusals, subscriber,
                          preload)
    finally:
        if echo is not None:
            echo.stop()


def _front_end(child: BashChild, config: Config, saved: list[Any] | None,
               instant: InstantPrompt | None, echo: EchoAhead | None, warnings: WarnBuffer,
               refusals: Refusals, subscriber: _Stoppable | None,
               preload: _FrontEndPreload | None) -> int:
    """prompt_toolkit imported and set up, then the loop until bash ends."""

    # Only now the front end (≈120 ms of imports, then its set-up): the prompt is
    # on screen meanwhile and keys typed wait in the tty.
    if preload is not None:
        preload.join()
    from prompt_toolkit import print_formatted_text

    from attyguard.paths import state_dir
    from attyguard.shell.confirm import ask_warn
    from attyguard.shell.history import SharedFileHistory
    from attyguard.shell.keys import load_shell_bindings
    from attyguard.shell.prompt import ShellPrompt
    from attyguard.shell.wiring import GuardLoader

    loader = GuardLoader(config)
    depth = _direct_colour()
    notes: list[str] = []
    history = SharedFileHistory(state_dir() / "history", config.shell.history_size,
                                on_error=notes.append)
    ui = ShellPrompt(
        history=history,
        complete=child.complete,
        warnings=warnings,
        bindings=load_shell_bindings(warnings),
        status_bar=config.ui.status_bar,
        daemon_state=lambda: loader.loaded.daemon_state if loader.loaded else "",
        input=first_prompt_input(0, saved) if saved is not None else None,
    )
    from attyguard.shell.refusals import install

    install(ui.session.app, refusals, config.ui.refused_style)
    session = Session(child=child, get_wired=loader.get, config=config, ui=ui,
                      warnings=warnings, ask_warn=ask_warn,
                      show=lambda ft: print_formatted_text(ft, end="", color_depth=depth),
                      after_first_render=lambda: _started(loader, 0), instant=instant,
                      ready_wired=lambda: loader.ready, notes=notes, history=history)
    session._collect_typeahead()
    if echo is not None:
        session.keys += echo.stop()  # (typed after what bash's start-up held back)
    try:
        return session.loop()
    finally:
        if session.files is not None:
            session.files.close()
        history.finish_entry()  # (a command left half-entered is kept too)
        _collect_again()
        if subscriber is not None:
            subscriber.stop()
        if loader.loaded is not None:
            loader.loaded.close()


def _started(loader: GuardLoader, in_fd: int) -> None:
    """The first prompt is up: collector back on, then the Guard loads meanwhile.

    Keys typed during start-up (waiting in the tty) are handled first: the
    loader is ~0.2 s of CPU holding the GIL every other 5 ms, which would
    stretch their echo. It starts once none are waiting; a line entered
    before that starts it itself (`GuardLoader.get`), so nothing waits longer.
    A key typed as the instant prompt shows is echoed sooner this way
    (bench/README.md, "Figures behind the code").
    """
    _collect_again()
    if _readable(in_fd):
        import asyncio

        with contextlib.suppress(RuntimeError):  # no running loop: start now
            asyncio.get_running_loop().call_later(_IDLE_CHECK_S, _started, loader, in_fd)
            return
    loader.start()


# How often the first prompt looks again for keys still waiting (see _started).
_IDLE_CHECK_S = 0.01




def _collect_again() -> None:
    # Off since shell/main.py; what start-up made lives as long as the shell,
    # so it goes to the permanent generation that collections do not walk.
    if not gc.isenabled():
        gc.freeze()
        gc.enable()


def _tty_attrs(fd: int) -> list[Any] | None:
    if not os.isatty(fd):
        return None
    try:
        return termios.tcgetattr(fd)
    except termios.error:
        return None


class _Stoppable(Protocol):
    def start(self) -> None: ...

    def stop(self) -> None: ...


def _subscribe(config: Config, warnings: WarnBuffer,
               refusals: Refusals | None = None) -> _Stoppable | None:
    """Daemon warn events into the buffer, when a daemon is configured."""
    if not config.guard.daemon_socket_path:
        return None
    try:
        from attyguard.daemon.client import WarnSubscriber

        sub: _Stoppable = WarnSubscriber(config.guard.daemon_socket_path, warnings.add,
                                         on_refused=refusals.add if refusals else None,
                                         daemon_user=config.guard.daemon_user)
        sub.start()
    except Exception as exc:
        print(f"attyguard: daemon warnings unavailable: {exc}", file=sys.stderr)
        return None
    return sub
