"""Text helpers (pure): untrusted text made safe to show, and typed-ahead keys split per prompt."""

from __future__ import annotations

import re

__all__ = ["escape_controls", "one_line", "split_typeahead"]

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def escape_controls(text: str) -> str:
    """`text` with C0/C1 controls (except tab and newline) shown as \\xNN."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def one_line(text: str, limit: int = 200) -> str:
    """`text` escaped, newlines and tabs shown as \\n and \\t, cut to `limit` characters."""
    flat = escape_controls(text).replace("\n", "\\n").replace("\t", "\\t")
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def split_typeahead(data: str) -> tuple[str, str]:
    """Typed-ahead keys -> (keys for the next prompt, keys for the ones after).

    The next prompt gets everything up to and including the first Enter
    (as CR, the Enter key); the rest waits, so no keystroke is lost when that
    line is accepted.
    """
    for i, ch in enumerate(data):
        if ch in "\r\n":
            return data[:i] + "\r", data[i + 1 :]
    return data, ""
