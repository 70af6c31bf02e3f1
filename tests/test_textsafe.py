"""One helper makes untrusted text safe to show; every display path uses it (issue 12, 6)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from attyguard.daemon.server import _one_line as daemon_one_line
from attyguard.engine.verdict import Action, Verdict
from attyguard.shell.confirm import refused_text, warn_text
from attyguard.shell.keys import format_warnings
from attyguard.shell.text import escape_controls, one_line
from attyguard.shell.warnings import WarnBuffer
from attyguard.textsafe import safe_text, visible
from attyguard.trust import redact

# What the terminal-deception rules look for, and what a terminal acts on.
HOSTILE = {
    "right-to-left override": "\u202e",
    "left-to-right isolate": "\u2066",
    "pop directional isolate": "\u2069",
    "right-to-left mark": "\u200f",
    "arabic letter mark": "\u061c",
    "zero-width space": "\u200b",
    "zero-width joiner": "\u200d",
    "word joiner": "\u2060",
    "byte order mark": "\ufeff",
    "escape": "\x1b",
    "bell": "\x07",
    "C1 CSI": "\x9b",
    "C1 OSC": "\x9d",
    "line separator": "\u2028",
    "paragraph separator": "\u2029",
    "undecodable byte": "\udcff",
}


def _refused(text: str) -> str:
    return "".join(part[1] for part in refused_text(_with_reason(text), "bold red"))


def _with_reason(text: str) -> Verdict:
    from attyguard.engine.verdict import RuleHit, Severity

    hit = RuleHit(rule_id="t.x", title=text, severity=Severity.HIGH, action=Action.BLOCK,
                  probability=0.9, explanation=text)
    return Verdict(Action.BLOCK, rules=(hit,), probability=0.9)


def _warned(text: str) -> str:
    return "".join(part[1] for part in warn_text(_with_reason(text), "bold yellow"))


def _buffered(text: str) -> str:
    buffer = WarnBuffer()
    buffer.add(f"refused: {text}")
    return format_warnings(buffer.drain())


SHOWN_BY: dict[str, Callable[[str], str]] = {
    "safe_text": safe_text,
    "one_line": one_line,
    "escape_controls": escape_controls,
    "REFUSED line": _refused,
    "warn question": _warned,
    "warning buffer / Alt+Shift+W": _buffered,
    "daemon events and logs": lambda text: daemon_one_line(text, 400),
    "trust store preview": redact,
}


@pytest.mark.parametrize("where", sorted(SHOWN_BY))
@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_character_never_reaches_the_terminal(where: str, name: str) -> None:
    ch = HOSTILE[name]
    shown = SHOWN_BY[where](f"ls{ch}gnp.exe")
    assert ch not in shown, f"{where} let {name} through: {shown!r}"
    assert visible(ch) in shown


def test_plain_text_is_unchanged_and_cut_with_an_ellipsis() -> None:
    assert safe_text("echo 日本 — ok") == "echo 日本 — ok"
    assert safe_text("a" * 10, 5) == "aaaa…"
    assert safe_text("\u202e" * 10, 8) == "\\u202e\\…"
    assert safe_text("a\nb\tc", keep_lines=True) == "a\nb\tc"
    assert safe_text("a\nb\tc") == "a\\nb\\tc"
