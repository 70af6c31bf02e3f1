"""The instant first prompt: the user's PS1 on screen before prompt_toolkit is imported.

Importing prompt_toolkit and building the PromptSession takes most of the
start-up (bench/shell_imports.py, bench/shell_bench.py), while bash
has already told us its expanded PS1 (the D record). So, like powerlevel10k's
instant prompt, the start-up draws that PS1 itself and keeps the terminal in
prompt_toolkit's own input mode (no echo, no line editing, switched with
TCSANOW so typeahead stays queued): keys typed meanwhile wait in the tty and
prompt_toolkit reads them as its first keys. Before its first render the
cursor goes back to where the PS1 starts, and prompt_toolkit draws the same
prompt over it (its first render erases from there down).

Drawn only when that is sure to look the same: plain text, SGR colours and
hidden (\\[ \\]) OSC sequences such as a window title, no line as wide as
the terminal, fewer lines than the screen, start-up output ending at the
start of a line. Anything else keeps the old behaviour
(nothing drawn until prompt_toolkit's first render).

Standard library only: this module runs before prompt_toolkit is imported.
"""

from __future__ import annotations

import os
import re
import termios
from dataclasses import dataclass
from typing import Any

__all__ = ["InstantPrompt", "draw_instant_prompt", "ends_at_line_start", "first_prompt_input",
           "partial_line_mark", "prompt_input_attrs", "prompt_rows"]

# Select Graphic Rendition (colours, bold…): the only escape prompt_toolkit's
# ANSI() and a terminal render alike. Cursor moves, OSC titles (prompt_toolkit
# shows their text once bash's \[ \] markers are gone) and the rest fall back.
_SGR = re.compile(r"\x1b\[[0-9;:]*m")
# An OSC (window title…) in readline's invisible-region markers: bash.py keeps
# those markers and prompt_toolkit writes the sequence out unseen, as we do.
_HIDDEN_OSC = re.compile("\x01\x1b\\][^\x01\x02\x07\x1b]*(?:\x07|\x1b\\\\)\x02")


def prompt_rows(ps1: str, columns: int, rows: int) -> int | None:
    """Screen rows `ps1` takes when drawn from column 0; None if unsafe to draw ourselves.

    Unsafe: empty, an escape other than SGR, any other control character
    (tab, CR, bell: their width is the terminal's business), a line that
    might reach the last column (its wrap would differ between terminals),
    or as many lines as the screen (the start would scroll off). Width is an
    upper bound (every non-ASCII character counted as two cells), so no line
    judged to fit can wrap.
    """
    if not ps1 or columns < 2 or rows < 2:
        return None
    lines = _SGR.sub("", _HIDDEN_OSC.sub("", ps1)).split("\n")
    if len(lines) >= rows:
        return None
    for line in lines:
        width = 0
        for c in line:
            if c < " " or "\x7f" <= c <= "\x9f" or "\ud800" <= c <= "\udfff":
                return None
            width += 1 if c < "\x7f" else 2
        if width >= columns:
            return None
    return len(lines)


_PASTE_ON = "\x1b[?2004h"
_TRAILING_SGR = re.compile(rb"(?:\x1b\[[0-9;:]*m)+$")


def ends_at_line_start(output_tail: bytes) -> bool:
    """Did start-up output leave the cursor at column 0 (nothing, or a final newline)?

    rc files that print without a final newline would put the PS1 mid-line,
    where prompt_toolkit (which assumes column 0) draws it differently.
    """
    tail = _TRAILING_SGR.sub(b"", output_tail)
    return not tail or tail.endswith(b"\n")


def partial_line_mark(columns: int) -> str:
    """What keeps output without a final newline on screen, wherever the cursor is.

    prompt_toolkit draws its prompt from column 0 of the cursor's line, so a
    partial last line (`cat` of a file without a final newline, `printf x`)
    would be drawn over. zsh's PROMPT_SP answer, which needs no cursor
    position report: a reverse-video `%`, then columns-1 spaces and CR. From
    column 0 the spaces stop at the margin (pending wrap) and CR goes back to
    the same line, where the prompt covers the `%`; from any other column
    (wide characters and colours included) they wrap, so the prompt starts
    on the next line and the partial line stays, marked. Needs the
    terminal's auto-margin, which every terminal attyguard runs in has on.
    """
    return "\x1b[7m%\x1b[27m" + " " * max(columns - 1, 0) + "\r"


def prompt_input_attrs(attrs: list[Any]) -> list[Any]:
    """The terminal mode prompt_toolkit's raw_mode sets, from the user's `attrs`.

    The same flags as prompt_toolkit 3 (echo, canonical input, signals and
    flow control off, CR kept as CR, one byte per read; output processing
    stays on), so its own switch at the first prompt changes nothing.
    """
    new = list(attrs)
    new[3] = attrs[3] & ~(termios.ECHO | termios.ICANON | termios.IEXTEN | termios.ISIG)
    new[0] = attrs[0] & ~(termios.IXON | termios.IXOFF | termios.ICRNL | termios.INLCR
                          | termios.IGNCR)
    cc = list(attrs[6])
    cc[termios.VMIN] = 1
    new[6] = cc
    return new


@dataclass
class InstantPrompt:
    """A PS1 we drew: `rows` screen rows from column 0, the cursor at its end."""

    out_fd: int
    rows: int
    size: tuple[int, int] | None = None  # (rows, columns) of the terminal when drawn

    def hand_over(self, size: tuple[int, int] | None = None) -> None:
        """Cursor back to the PS1's first column: prompt_toolkit's first render
        erases from its starting point down and draws the same prompt there.

        If the terminal was resized meanwhile (`size` differs), where the
        drawn lines ended up is unknown (wrapped, reflowed): the front end
        starts on a fresh line below instead, never over them.
        """
        if size is not None and self.size is not None and size != self.size:
            _write_all(self.out_fd, b"\r\n")
            return
        up = f"\x1b[{self.rows - 1}A" if self.rows > 1 else ""
        _write_all(self.out_fd, f"\r{up}".encode())


def draw_instant_prompt(out_fd: int, ps1: str, rows: int, *, reserve_below: int,
                        mark: str, size: tuple[int, int] | None = None) -> InstantPrompt:
    """Draw `ps1` (judged safe by `prompt_rows`) at the cursor, which is at column 0.

    `reserve_below` rows under the prompt are scrolled into view first (the
    status bar prompt_toolkit draws there), so that at the bottom of the
    screen its first render does not scroll the prompt up a line. `mark`
    (the OSC 133;A prompt-start mark, or "") goes right before the PS1.
    """
    extra = rows - 1 + reserve_below
    reserve = "\n" * extra + f"\x1b[{extra}A" if extra else ""
    # Bracketed paste on now, as prompt_toolkit will: a block pasted before it
    # is up must arrive as one paste, not as lines each ending in Enter.
    # Hidden regions' markers are readline's (and prompt_toolkit's): not for the terminal.
    text = ps1.replace("\x01", "").replace("\x02", "")
    _write_all(out_fd, f"{reserve}{mark}{text}\x1b[0m{_PASTE_ON}".encode("utf-8",
                                                                        "surrogateescape"))
    return InstantPrompt(out_fd, rows, size)


def first_prompt_input(fd: int, restore: list[Any] | None) -> Any:
    """A prompt_toolkit input on `fd` whose first raw mode restores `restore` when it ends.

    The terminal is already in prompt_toolkit's mode when the first prompt
    starts (see `prompt_input_attrs`); prompt_toolkit remembers the mode it
    finds and restores it after the line, so without this the terminal would
    stay without echo after the first prompt. Going back to the user's mode
    just before prompt_toolkit starts instead would echo any key typed in
    that instant. Later prompts behave as prompt_toolkit's own.
    """
    import sys

    from prompt_toolkit.input.vt100 import Vt100Input

    class _FirstPromptInput(Vt100Input):
        def raw_mode(self) -> Any:
            nonlocal restore
            mode = super().raw_mode()
            if restore is not None and getattr(mode, "attrs_before", None) is not None:
                mode.attrs_before = restore  # type: ignore[attr-defined]
            restore = None
            return mode

    stdin = sys.stdin if sys.stdin is not None and _fileno(sys.stdin) == fd else os.fdopen(
        fd, "r", closefd=False)
    return _FirstPromptInput(stdin)


def _fileno(stream: Any) -> int | None:
    try:
        return int(stream.fileno())
    except (OSError, ValueError, AttributeError):
        return None


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
