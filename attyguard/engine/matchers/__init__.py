"""Matchers: the structural predicates rules are written in (`match: {type: …}`).

A package: `base` (what every matcher is built from: Analysis, MatchResult,
LazyPattern, field readers, CommandSpec), one module per kind of matcher
(`structure`, `text`, `combine`, `writes`, `packages`), and `registry`, the
one table of all types. This module re-exports the public names.
"""

from __future__ import annotations

from attyguard.engine.matchers.base import (
    Analysis,
    Build,
    CommandSpec,
    LazyPattern,
    Matcher,
    MatcherError,
    MatchResult,
)
from attyguard.engine.matchers.registry import MATCHERS, build_matcher

__all__ = [
    "MATCHERS",
    "Analysis",
    "Build",
    "CommandSpec",
    "LazyPattern",
    "MatchResult",
    "Matcher",
    "MatcherError",
    "build_matcher",
]
