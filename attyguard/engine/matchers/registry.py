"""The one table of matcher types: a rule's `match: {type: …}` -> its class.

As pySigma's modifier table: every type a rule file may name is listed here
once, each class validating its own fields in `from_dict(d, build)`. Adding a
type means writing its class in a matcher module, adding it to `MATCHERS`,
and documenting it in patterns/README.md (a test checks the README names it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from attyguard.engine.matchers.base import Build, Matcher, MatcherType
from attyguard.engine.matchers.combine import AllMatcher, AnyMatcher, NoneMatcher
from attyguard.engine.matchers.packages import PackageMatcher
from attyguard.engine.matchers.structure import (
    CommandMatcher,
    PipelineMatcher,
    RedirectMatcher,
    SequenceMatcher,
    UrlMatcher,
)
from attyguard.engine.matchers.text import DecodedMatcher, RegexMatcher
from attyguard.engine.matchers.writes import WritesMatcher

__all__ = ["MATCHERS", "build_matcher"]

MATCHERS: Mapping[str, MatcherType] = {
    cls.type_name: cls
    for cls in (CommandMatcher, PipelineMatcher, RedirectMatcher, SequenceMatcher, UrlMatcher,
                DecodedMatcher, RegexMatcher, WritesMatcher, PackageMatcher, AllMatcher,
                AnyMatcher, NoneMatcher)
}


def build_matcher(d: Any, sets: Mapping[str, frozenset[str]], *, eager: bool = True) -> Matcher:
    """Build one matcher from its mapping; every field error is a MatcherError.

    `eager=False` leaves regexes to compile on first use, unchecked (see Build).
    """
    return Build(sets, eager, MATCHERS).matcher(d)
