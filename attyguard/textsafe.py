"""Untrusted text made safe to show on a terminal: the one helper every display uses.

Command lines, rule reasons from a daemon, trust-store previews, warn events
and log lines can carry what the terminal-deception rules look for: C0/C1
controls (escape sequences), bidi overrides and isolates (U+202A-202E,
U+2066-2069) that reorder what is shown, zero-width characters (U+200B-200D,
U+2060, U+FEFF) that hide text, line and paragraph separators, and bytes
that were not UTF-8 (lone surrogates from surrogateescape). Every character
`str.isprintable` rejects (categories Cc, Cf, Cs, Co, Cn, Zl, Zp and spaces
other than U+0020) is written as an escape instead, so what the user reads
is what the bytes are. Pure and standard library only (cheap to import on
the `-c` path).
"""

from __future__ import annotations

__all__ = ["safe_text", "visible"]


def visible(ch: str) -> str:
    """One character as safe terminal text: controls, format characters and stray bytes escaped."""
    code = ord(ch)
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8 (surrogateescape)
        return f"\\x{code - 0xDC00:02x}"
    if ch == " " or ch.isprintable():
        return ch
    if ch == "\n":
        return "\\n"
    if ch == "\t":
        return "\\t"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def safe_text(text: str, limit: int | None = None, *, keep_lines: bool = False) -> str:
    """`text` on one line (`keep_lines`: newlines and tabs kept), cut to `limit` characters."""
    if text.isprintable() and (limit is None or len(text) <= limit):
        return text  # (the common case: nothing to escape, no copy)
    out: list[str] = []
    size = 0
    for ch in text:
        piece = ch if keep_lines and ch in "\n\t" else visible(ch)
        out.append(piece)
        size += len(piece)
        if limit is not None and size > limit:
            break
    shown = "".join(out)
    if limit is not None and len(shown) > limit:
        return shown[: limit - 1] + "…"
    return shown
