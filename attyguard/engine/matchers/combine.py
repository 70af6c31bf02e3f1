"""Combinator matcher types: `all`, `any` and `none` of sub-matchers.

Sub-matchers are built through the `Build` they were given (its registry
table), so this module needs no import of the registry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from attyguard.engine.matchers.base import (
    Analysis,
    Build,
    Matcher,
    MatcherError,
    MatchResult,
    check_keys,
)

__all__ = ["AllMatcher", "AnyMatcher", "NoneMatcher"]


def _sub_matchers(d: dict[str, Any], b: Build, kind: str) -> tuple[Matcher, ...]:
    check_keys(d, ("of",), f"{kind} matcher")
    parts = d.get("of")
    if not isinstance(parts, list) or not parts:
        raise MatcherError(f"{kind} matcher needs 'of': a non-empty list of matchers")
    return tuple(b.matcher(p) for p in parts)


@dataclass(frozen=True, slots=True)
class AllMatcher:
    """Every sub-matcher matches (anywhere in the line); the span is the first one's."""

    type_name: ClassVar[str] = "all"
    parts: tuple[Matcher, ...]

    @classmethod
    def from_dict(cls, d: dict[str, Any], b: Build) -> AllMatcher:
        return cls(_sub_matchers(d, b, "all"))

    def match(self, a: Analysis) -> MatchResult | None:
        first: MatchResult | None = None
        for part in self.parts:
            got = part.match(a)
            if got is None:
                return None
            first = first or got
        return first


@dataclass(frozen=True, slots=True)
class AnyMatcher:
    """The first sub-matcher that matches."""

    type_name: ClassVar[str] = "any"
    parts: tuple[Matcher, ...]

    @classmethod
    def from_dict(cls, d: dict[str, Any], b: Build) -> AnyMatcher:
        return cls(_sub_matchers(d, b, "any"))

    def match(self, a: Analysis) -> MatchResult | None:
        for part in self.parts:
            got = part.match(a)
            if got is not None:
                return got
        return None


@dataclass(frozen=True, slots=True)
class NoneMatcher:
    """No sub-matcher matches anywhere in the line (use inside `all`: "…but not …")."""

    type_name: ClassVar[str] = "none"
    parts: tuple[Matcher, ...]

    @classmethod
    def from_dict(cls, d: dict[str, Any], b: Build) -> NoneMatcher:
        return cls(_sub_matchers(d, b, "none"))

    def match(self, a: Analysis) -> MatchResult | None:
        for part in self.parts:
            if part.match(a) is not None:
                return None
        return MatchResult(None, "")
