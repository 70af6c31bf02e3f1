"""Text matcher types: decoded payloads and the raw-text regex fallback.

This module owns the matchers that look at text rather than structure: what
was decoded and where it was fed (`decoded`), and rule-written regexes over
the raw line, the normalised commands, interpreter code or here-doc bodies
(`regex`, always searched with a time limit).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, ClassVar

from attyguard.engine.matchers.base import (
    REGEX_TIMEOUT_S,
    Analysis,
    Build,
    LazyPattern,
    MatcherError,
    MatchResult,
    NameSet,
    bool_field,
    check_keys,
    get_list,
    regex_field,
)

__all__ = ["DecodedMatcher", "RegexMatcher"]


@dataclass(frozen=True, slots=True)
class DecodedMatcher:
    """An encoded payload was decoded (base64, hex, printf escapes, rev…) and fed somewhere.

    The decoded text is classified again by the engine on its own; this matcher
    flags the act of decoding into an interpreter.
    """

    type_name: ClassVar[str] = "decoded"
    feeds: NameSet
    decoders: frozenset[str]
    payload_regex: LazyPattern | None
    min_length: int

    @classmethod
    def from_dict(cls, d: dict[str, Any], b: Build) -> DecodedMatcher:
        check_keys(d, ("feeds", "decoders", "payload_regex", "min_length"), "decoded matcher")
        min_length = d.get("min_length", 1)
        if not isinstance(min_length, int):
            raise MatcherError("'min_length' must be an integer")
        return cls(NameSet.build(get_list(d, "feeds"), b.sets),
                   frozenset(get_list(d, "decoders")),
                   regex_field(d, "payload_regex", b), min_length)

    def match(self, a: Analysis) -> MatchResult | None:
        for p in a.payloads:
            if self.feeds and p.fed_to not in self.feeds:
                continue
            if self.decoders and not self.decoders.intersection(p.decoders):
                continue
            if len(p.text) < self.min_length:
                continue
            if self.payload_regex is not None and not self.payload_regex.search(p.text):
                continue
            chain = "+".join(p.decoders) or "literal"
            return MatchResult(p.span, f"[{chain} → {p.fed_to or '?'}] {p.text[:120]}")
        return None

@dataclass(frozen=True, slots=True)
class RegexMatcher:
    """Raw-text fallback for what structure cannot express (use sparingly, with atoms)."""

    type_name: ClassVar[str] = "regex"
    pattern: LazyPattern  # searched with REGEX_TIMEOUT_S (LazyPattern's `regex` mode)
    on: str  # raw | typed (raw, layer 0 only) | normalized | scripts | heredocs

    @classmethod
    def from_dict(cls, d: dict[str, Any], b: Build) -> RegexMatcher:
        check_keys(d, ("pattern", "on", "ignore_case"), "regex matcher")
        on = d.get("on", "normalized")
        if on not in ("raw", "typed", "normalized", "scripts", "heredocs"):
            raise MatcherError("'on' must be raw, typed, normalized, scripts or heredocs")
        value = d.get("pattern")
        if not isinstance(value, str):
            raise MatcherError("regex matcher needs 'pattern' (a regex string)")
        flags = re.MULTILINE | (re.IGNORECASE if bool_field(d, "ignore_case", True) else 0)
        # `re` flag values equal `regex`'s for these two, so one int serves both modules.
        return cls(b.pattern(value, flags, timeout=REGEX_TIMEOUT_S), str(on))

    def match(self, a: Analysis) -> MatchResult | None:
        if self.on == "scripts":
            bodies = [(text, span) for _i, text, span in a.parsed.scripts]
            bodies += [(p.text, p.span) for p in a.payloads]
            for text, span in bodies:
                m = self.pattern.search(text)
                if m:
                    return MatchResult(span, m.group(0))
            return None
        if self.on == "heredocs":
            for red in a.parsed.redirects:
                if red.op in ("<<", "<<-", "<<<"):
                    m = self.pattern.search(red.target)
                    if m:
                        return MatchResult(red.span, m.group(0))
            return None
        if self.on == "typed" and a.layer != 0:
            # Decoded output (echo -e '\e[1m…') is not what the user typed or sees.
            return None
        if self.on in ("raw", "typed"):
            m = self.pattern.search(a.line)
            return MatchResult(m.span(), m.group(0)) if m else None
        m = self.pattern.search(a.normalized)
        return MatchResult(None, m.group(0)) if m else None
