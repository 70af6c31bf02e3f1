"""The accumulator: P = 1 - prod(1 - p_i) over Tier-1, Tier-2 and the tree's prior."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from attyguard.daemon.accumulator import AccumulatorConfig, accumulate, level_for
from attyguard.daemon.threats import ThreatLevel
from attyguard.engine.verdict import Action, RuleHit, Severity, Verdict


@dataclass(frozen=True)
class Score:
    p: float
    reasons: tuple[str, ...] = ()


def hit(p: float, action: Action = Action.WARN) -> RuleHit:
    return RuleHit(f"r{p}", f"rule {p}", Severity.MEDIUM, action, p)


def tier1(*hits: RuleHit) -> Verdict:
    return Verdict(Action.strongest([h.action for h in hits]), rules=hits)


DEFAULT = AccumulatorConfig()
AUTO = AccumulatorConfig(auto_block=True)


@pytest.mark.parametrize(
    ("rules", "t2", "prior", "expected"),
    [
        ((), 0.0, ThreatLevel.NONE, 0.0),
        ((0.5,), 0.0, ThreatLevel.NONE, 0.5),
        ((0.5, 0.5), 0.0, ThreatLevel.NONE, 0.75),
        ((0.5,), 0.5, ThreatLevel.NONE, 0.75),
        ((0.2,), 0.1, ThreatLevel.HIGH, 1 - 0.8 * 0.9 * 0.65),
        ((), 0.0, ThreatLevel.MEDIUM, 0.15),
        ((1.0,), 0.3, ThreatLevel.NONE, 1.0),
    ],
)
def test_combination(rules: tuple[float, ...], t2: float, prior: ThreatLevel,
                     expected: float) -> None:
    result = accumulate(tier1(*(hit(p) for p in rules)), Score(t2), prior, DEFAULT)
    assert result.verdict.probability == pytest.approx(expected)


@pytest.mark.parametrize(
    ("p", "level"),
    [(0.0, ThreatLevel.NONE), (0.19, ThreatLevel.NONE), (0.2, ThreatLevel.LOW),
     (0.5, ThreatLevel.MEDIUM), (0.79, ThreatLevel.MEDIUM), (0.8, ThreatLevel.HIGH),
     (0.95, ThreatLevel.CRITICAL), (1.0, ThreatLevel.CRITICAL)],
)
def test_thresholds_map_p_to_levels(p: float, level: ThreatLevel) -> None:
    assert level_for(p, DEFAULT) is level


def test_tier2_alone_raises_allow_to_warn_not_block_by_default() -> None:
    result = accumulate(Verdict(Action.ALLOW), Score(0.97, ("odd base64",)), ThreatLevel.NONE,
                        DEFAULT, tier2_name="heuristic")
    assert result.verdict.action is Action.WARN
    assert result.level is ThreatLevel.CRITICAL
    assert "warn threshold" in result.verdict.reason
    assert any(h.rule_id == "tier2.heuristic" and "odd base64" in h.title
               for h in result.verdict.rules)


def test_auto_block_is_opt_in_and_uses_the_threshold() -> None:
    line = tier1(hit(0.9), hit(0.6))  # P = 0.96
    assert accumulate(line, Score(0.0), ThreatLevel.NONE, DEFAULT).verdict.action is Action.WARN
    blocked = accumulate(line, Score(0.0), ThreatLevel.NONE, AUTO).verdict
    assert blocked.action is Action.BLOCK
    assert "auto-block" in blocked.reason
    below = accumulate(tier1(hit(0.9)), Score(0.0), ThreatLevel.NONE, AUTO).verdict
    assert below.action is Action.WARN  # 0.9 < 0.95


def test_never_weaker_than_tier1() -> None:
    result = accumulate(tier1(hit(0.1, Action.BLOCK)), Score(0.0), ThreatLevel.NONE, DEFAULT)
    assert result.verdict.action is Action.BLOCK
    assert result.verdict.reason == "rule 0.1"


def test_critical_tree_blocks_outright() -> None:
    result = accumulate(Verdict(Action.ALLOW), Score(0.0), ThreatLevel.CRITICAL, DEFAULT,
                        prior_reason="curl | sh refused")
    assert result.verdict.action is Action.BLOCK
    assert result.verdict.rules[0].rule_id == "daemon.pid-critical"
    assert "curl | sh refused" in result.verdict.reason


def test_prior_compounds_with_weak_evidence() -> None:
    weak = tier1(hit(0.3))
    assert accumulate(weak, Score(0.0), ThreatLevel.NONE, DEFAULT).verdict.action is Action.WARN
    none = accumulate(Verdict(Action.ALLOW, rules=(hit(0.3, Action.ALLOW),)), Score(0.0),
                      ThreatLevel.NONE, DEFAULT)
    assert none.verdict.action is Action.ALLOW  # P = 0.3 < 0.5
    high = accumulate(Verdict(Action.ALLOW, rules=(hit(0.3, Action.ALLOW),)), Score(0.0),
                      ThreatLevel.HIGH, DEFAULT)
    assert high.verdict.action is Action.WARN  # 1 - 0.7 * 0.65 = 0.545
