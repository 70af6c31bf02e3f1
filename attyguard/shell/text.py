"""Text helpers (pure): untrusted text made safe to show, and typed-ahead keys split per prompt."""

from __future__ import annotations

from attyguard.textsafe import safe_text

__all__ = ["escape_controls", "one_line", "split_typeahead"]

def escape_controls(text: str) -> str:
    """`text` made safe to show (`textsafe.visible`), tabs and newlines kept."""
    return safe_text(text, keep_lines=True)


def one_line(text: str, limit: int = 200) -> str:
    """`text` made safe to show on one line (`textsafe.safe_text`), cut to `limit` characters."""
    return safe_text(text, limit)


def split_typeahead(data: str) -> tuple[str, str]:
    """Typed-ahead keys -> (keys for the next prompt, keys for the ones after).

    The next prompt gets everything up to and including the first Enter
    (as CR, the Enter key); the rest waits, so no keystroke is lost when that
    line is accepted. A newline inside a bracketed paste (ESC[200~ … ESC[201~) is part of the
    paste, not an Enter: the paste goes whole to the next prompt.
    """
    i = 0
    while i < len(data):
        ch = data[i]
        if ch == "\x1b" and data.startswith("\x1b[200~", i):
            end = data.find("\x1b[201~", i)
            if end < 0:
                return data, ""
            i = end + 6
            continue
        if ch in "\r\n":
            return data[:i] + "\r", data[i + 1 :]
        i += 1
    return data, ""
