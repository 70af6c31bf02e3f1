"""The shell prompt's own key bindings, as named functions over passed-in state.

Ctrl-D (empty line -> end the shell), Ctrl-C (drop the line), Enter, Tab,
Up/Down and Ctrl-R are prompt_toolkit's own emacs/vi bindings; here is what
attyguard adds.
"""

from __future__ import annotations

from collections.abc import Callable

from prompt_toolkit import search
from prompt_toolkit.application import run_in_terminal
from prompt_toolkit.buffer import Buffer
from prompt_toolkit.filters import is_searching
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent

from attyguard.shell.completion import complete_or_list
from attyguard.shell.text import one_line
from attyguard.shell.warnings import WarnBuffer

__all__ = ["dump_warnings", "format_warnings", "load_shell_bindings"]


def format_warnings(items: list[str]) -> str:
    """The text Alt+Shift+W puts into scrollback for these buffered warnings."""
    if not items:
        return "attyguard: no warnings\n"
    lines = [f"attyguard: {len(items)} warning(s):"]
    lines += [f"  ⚠ {one_line(item)}" for item in items]
    return "\n".join(lines) + "\n"


def dump_warnings(warnings: WarnBuffer) -> str:
    """Drain the buffer (so the status bar goes back to no ⚠) and format it."""
    return format_warnings(warnings.drain())


def load_shell_bindings(warnings: WarnBuffer) -> KeyBindings:
    kb = KeyBindings()

    @kb.add("escape", "W")
    def _show_warnings(event: KeyPressEvent) -> None:
        """Alt+Shift+W: print the buffered warnings above the prompt and clear them."""
        text = dump_warnings(warnings)
        run_in_terminal(lambda: print(text, end="", flush=True))

    @kb.add("c-c", filter=~is_searching)
    def _interrupt(event: KeyPressEvent) -> None:
        """Ctrl-C: the line stays on screen with ^C after it, as in bash; nothing runs."""
        buffer = event.app.current_buffer
        buffer.cursor_position = len(buffer.text)
        buffer.insert_text("^C", fire_event=False)
        event.app.exit(exception=KeyboardInterrupt, style="class:aborting")

    def _take_match(move: Callable[[Buffer], None]) -> Callable[[KeyPressEvent], None]:
        def handler(event: KeyPressEvent) -> None:
            """In a Ctrl-R search: take the match into the line for editing (readline)."""
            search.accept_search()
            move(event.app.current_buffer)
        return handler

    def _to_end(b: Buffer) -> None:
        b.cursor_position = len(b.text)

    def _to_start(b: Buffer) -> None:
        b.cursor_position = 0

    def _right(b: Buffer) -> None:
        b.cursor_position += b.document.get_cursor_right_position()

    def _left(b: Buffer) -> None:
        b.cursor_position += b.document.get_cursor_left_position()

    for keys, move in ((("end",), _to_end), (("c-e",), _to_end), (("home",), _to_start),
                       (("c-a",), _to_start), (("right",), _right), (("left",), _left)):
        kb.add(*keys, filter=is_searching)(_take_match(move))

    # Tab as bash: the shared prefix first, then the listing in readline's columns.
    kb.add("c-i", filter=~is_searching)(complete_or_list)

    @kb.add("enter", filter=is_searching)
    def _accept_search_and_run(event: KeyPressEvent) -> None:
        """Enter in a Ctrl-R search runs the match, as in readline."""
        search.accept_search()
        event.app.current_buffer.validate_and_handle()

    return kb
