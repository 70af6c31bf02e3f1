"""Erasing below the prompt without pushing the screen into tmux's scrollback.

prompt_toolkit erases from its first row down (ESC [ J) before every full
redraw and when a line is accepted. tmux (3.3+, `scroll-on-clear`, on by
default) takes an erase-below issued at the top-left cell for a clear of
the whole screen and first pushes everything on it into the scrollback.
With the prompt on the top row (a fresh terminal, after `clear`), each such
redraw left a copy of the frame, status bar and all, in the history:
accepting a line, or listing completions. Clearing the rest of the row
first and erasing from the row below does the same to the screen without
ever starting at the top-left cell. Nothing in prompt_toolkit or tmux
offers this, hence the override.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ERASE_BELOW", "erase_below_keeps_scrollback"]

# Erase to the end of the row; save the cursor; one row down (a no-op on the
# last row); erase from there down; back to the saved cursor.
ERASE_BELOW = "\x1b[K\x1b7\x1b[B\x1b[J\x1b8"


def erase_below_keeps_scrollback(output: Any) -> bool:
    """Make `output` (a prompt_toolkit Vt100_Output) erase below as above.

    False (left alone) for an output that does not write raw VT100.
    """
    if not callable(getattr(output, "erase_down", None)) or not callable(
            getattr(output, "write_raw", None)):
        return False
    write_raw = output.write_raw

    def erase_down() -> None:
        write_raw(ERASE_BELOW)

    output.erase_down = erase_down
    return True
