"""classify(line) -> Verdict: the only entry point of the pure engine.

PLACEHOLDER until the Tier-1 engine lands (issue 3): everything is allowed.
"""

from __future__ import annotations

import time

from attyguard.engine.verdict import Action, Verdict

__all__ = ["classify"]


def classify(line: str) -> Verdict:
    start = time.perf_counter_ns()
    return Verdict(Action.ALLOW, elapsed_us=(time.perf_counter_ns() - start) // 1000)
