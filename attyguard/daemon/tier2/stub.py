"""The `stub` Tier-2 plugin: no signal at all (p = 0), for when Tier-1 suffices."""

from __future__ import annotations

from attyguard.daemon.tier2.base import DEFAULT_THRESHOLD, Tier2Score

__all__ = ["StubTier2"]

_NOTHING = Tier2Score(0.0, ())


class StubTier2:
    """Always answers p = 0: the accumulator then rests on Tier-1 alone."""

    name = "stub"
    threshold = DEFAULT_THRESHOLD

    def score(self, line: str) -> Tier2Score:
        return _NOTHING
