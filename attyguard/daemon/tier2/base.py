"""The Tier-2 plugin interface: what every plugin (stub, heuristic, onnx) is.

Tier-2 gives a second opinion on a command line as a probability that it is
malicious; the daemon's accumulator combines it with Tier-1 rule hits
(`1 - Π(1 - p_i)`). Plugins are plain objects behind one Protocol so that the
daemon never needs to know which one it holds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = ["DEFAULT_THRESHOLD", "Tier2", "Tier2Score"]

# The p at and above which a plugin's own opinion counts as "suspicious" when it
# is used alone (bench/tier2_report.py measures each plugin at its threshold).
DEFAULT_THRESHOLD = 0.5


@dataclass(frozen=True, slots=True)
class Tier2Score:
    """A plugin's answer: p in [0, 1] and short human reasons (strongest first)."""

    p: float
    reasons: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # NaN fails both comparisons, so it is refused too.
        if not (0.0 <= self.p <= 1.0) or math.isnan(self.p):
            raise ValueError(f"Tier2Score.p must be in [0, 1], got {self.p!r}")


@runtime_checkable
class Tier2(Protocol):
    """A Tier-2 plugin. `score` is fast (well under 1 ms a line) and never raises."""

    name: str
    # Additive to docs/internal-contracts.md: the plugin's own decision threshold.
    threshold: float

    def score(self, line: str) -> Tier2Score: ...
