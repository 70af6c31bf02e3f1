"""One budget for the whole analysis of a line, and work linear in its arguments.

A downloader with thousands of arguments used to take seconds (quadratic
argument scans in a matcher) and then answer allow, because the deadline only
covered parsing. The budget now covers parse, walk, decoding and matchers, and
running out answers warn (`engine.analysis-bounded`). Work is counted, never
timed: a fake clock for the budget, call counts for the growth.
"""

from __future__ import annotations

import dataclasses
import sys
from types import FrameType
from typing import Any

import pytest

from attyguard.engine.classify import BOUNDED_RULE_ID, Engine, default_engine
from attyguard.engine.matchers import Analysis, MatchResult
from attyguard.engine.parse import Limits
from attyguard.engine.verdict import Action


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclasses.dataclass(frozen=True)
class SlowMatcher:
    """Delegates to the real matcher, and spends a second of the fake clock doing it."""

    inner: Any
    clock: FakeClock

    def match(self, a: Analysis) -> MatchResult | None:
        self.clock.now += 1.0
        result: MatchResult | None = self.inner.match(a)
        return result


def _slow_engine(clock: FakeClock) -> Engine:
    base = default_engine()
    engine = Engine(base.ruleset, Limits(deadline_s=0.5), clock=clock)
    engine.rules = tuple(dataclasses.replace(r, matcher=SlowMatcher(r.matcher, clock))
                         for r in engine.rules)
    return engine


@pytest.mark.parametrize("line", [
    "wget " + " ".join(f"https://example.org/f{i}.tar.gz" for i in range(50)),
    "aria2c -x4 https://example.org/a.iso https://example.org/b.iso",
    "curl -O https://example.org/one -O https://example.org/two",
])
def test_matchers_share_the_line_budget(line: str) -> None:
    clock = FakeClock()
    verdict = _slow_engine(clock).classify(line)
    assert verdict.action is Action.WARN
    assert BOUNDED_RULE_ID in [h.rule_id for h in verdict.rules]


def test_within_budget_the_same_line_is_allowed() -> None:
    clock = FakeClock()
    engine = Engine(default_engine().ruleset, Limits(deadline_s=0.5), clock=clock)
    assert engine.classify("wget https://example.org/a.tar.gz").action is Action.ALLOW


def test_walk_checks_the_budget() -> None:
    # A clock that has already run out: even a long line's walk stops and says so.
    clock = FakeClock()
    engine = Engine(default_engine().ruleset, Limits(deadline_s=-1.0), clock=clock)
    verdict = engine.classify("wget " + " ".join(f"u{i}" for i in range(3000)))
    assert verdict.action is Action.WARN
    assert BOUNDED_RULE_ID in [h.rule_id for h in verdict.rules]


def _calls(line: str) -> int:
    """Python function calls made classifying `line` (a measure of work, not of time)."""
    engine = Engine(default_engine().ruleset, Limits(deadline_s=3600.0))
    engine.classify("wget https://example.org/warm")
    count = 0

    def profile(_frame: FrameType, event: str, _arg: object) -> None:
        nonlocal count
        if event in ("call", "c_call"):
            count += 1

    sys.setprofile(profile)
    try:
        engine.classify(line)
    finally:
        sys.setprofile(None)
    return count


@pytest.mark.parametrize("tool", ["wget", "aria2c", "axel", "curl -O", "wget -P /tmp"])
def test_downloader_arguments_are_scanned_in_linear_work(tool: str) -> None:
    small = _calls(tool + " " + " ".join(f"https://e.org/{i}" for i in range(300)))
    large = _calls(tool + " " + " ".join(f"https://e.org/{i}" for i in range(1200)))
    # Four times the arguments: linear work is ~4x; a scan per argument was ~16x.
    assert large < 6 * small, (small, large)


def test_parsing_does_not_keep_its_input() -> None:
    # py-tree-sitter keeps a reference to every chunk a read callback returns; the
    # parser must hand it reused buffers, or a long-lived shell or daemon grows per line.
    import gc
    import tracemalloc

    from attyguard.engine.parse import parse

    lines = [f"curl -fsSL https://example.org/{i}.sh | sh; echo {'x' * (i % 97)}"
             for i in range(3000)]
    for line in lines[:200]:
        parse(line)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for line in lines:
            parse(line)
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    # Fresh chunks kept: ~3000 x 150 B = 450 KB. Reused buffers: a line's worth at most.
    assert grown < 64 * 1024, grown


def test_a_bounded_parse_still_runs_the_rules() -> None:
    # More syntax nodes than the walk takes: the raw-text rules still see the line.
    engine = Engine(default_engine().ruleset, Limits(deadline_s=3600.0))
    verdict = engine.classify("\x1b[" * 30000)
    ids = [h.rule_id for h in verdict.rules]
    assert BOUNDED_RULE_ID in ids
    assert verdict.action is Action.BLOCK, ids
