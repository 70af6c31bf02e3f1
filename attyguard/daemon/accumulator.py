"""The threat-level accumulator (seed V2-J / V2-J-2): pure, no I/O.

Three independent signals about one command line are combined with
P = 1 - prod(1 - p_i) (`attyguard.engine.verdict.combine_probabilities`):
every Tier-1 rule that matched (its `probability`), the Tier-2 plugin's score,
and the prior of the asking process tree's ThreatLevel. Thresholds map P to a
ThreatLevel. The action is never weaker than Tier-1's own; P can raise allow
to warn (`warn_threshold`), and only when the operator opted in
(`auto_block = true`) can P alone raise it to block (`block_threshold`).
A process tree that is already Critical gets Block outright: the shell that
had a line refused does not get to try variations of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from attyguard.daemon.threats import ThreatLevel
from attyguard.engine.verdict import (
    Action,
    RuleHit,
    Severity,
    Source,
    Verdict,
    combine_probabilities,
)

__all__ = ["AccumulatorConfig", "Assessment", "Tier2Like", "accumulate", "level_for"]


class Tier2Like(Protocol):
    """What the accumulator needs of a Tier-2 score (tier2.Tier2Score fits)."""

    @property
    def p(self) -> float: ...

    @property
    def reasons(self) -> tuple[str, ...]: ...


@dataclass(frozen=True, slots=True)
class AccumulatorConfig:
    auto_block: bool = False  # opt-in: P >= block_threshold blocks without a Tier-1 block rule
    block_threshold: float = 0.95
    warn_threshold: float = 0.5  # P at which an allowed line is raised to warn
    # P -> ThreatLevel: the lowest P of each level.
    level_low: float = 0.2
    level_medium: float = 0.5
    level_high: float = 0.8
    level_critical: float = 0.95
    # The probability a process tree's existing level contributes to its next line.
    prior_low: float = 0.05
    prior_medium: float = 0.15
    prior_high: float = 0.35
    # Raise the asking process's own level to the level of P (capped at High:
    # Critical comes only from a Block, so warn-only set-ups never turn into block).
    raise_pid_level: bool = True

    def prior(self, level: ThreatLevel) -> float:
        return {
            ThreatLevel.NONE: 0.0,
            ThreatLevel.LOW: self.prior_low,
            ThreatLevel.MEDIUM: self.prior_medium,
            ThreatLevel.HIGH: self.prior_high,
            ThreatLevel.CRITICAL: 1.0,
        }[level]


@dataclass(frozen=True, slots=True)
class Assessment:
    verdict: Verdict
    level: ThreatLevel  # the level P maps to (what the asking PID may be raised to)


_SEVERITY = {
    ThreatLevel.NONE: Severity.LOW,
    ThreatLevel.LOW: Severity.LOW,
    ThreatLevel.MEDIUM: Severity.MEDIUM,
    ThreatLevel.HIGH: Severity.HIGH,
    ThreatLevel.CRITICAL: Severity.CRITICAL,
}


def level_for(p: float, config: AccumulatorConfig) -> ThreatLevel:
    if p >= config.level_critical:
        return ThreatLevel.CRITICAL
    if p >= config.level_high:
        return ThreatLevel.HIGH
    if p >= config.level_medium:
        return ThreatLevel.MEDIUM
    if p >= config.level_low:
        return ThreatLevel.LOW
    return ThreatLevel.NONE


def accumulate(
    tier1: Verdict,
    tier2: Tier2Like,
    prior: ThreatLevel,
    config: AccumulatorConfig,
    *,
    tier2_name: str = "tier2",
    prior_reason: str = "",
) -> Assessment:
    if prior is ThreatLevel.CRITICAL:
        hit = RuleHit(
            rule_id="daemon.pid-critical",
            title="this process tree is marked Critical"
            + (f" ({prior_reason})" if prior_reason else ""),
            severity=Severity.CRITICAL,
            action=Action.BLOCK,
            probability=1.0,
            explanation="A line from this process tree was blocked before; every further "
            "line is refused until the process exits.",
        )
        verdict = Verdict(Action.BLOCK, rules=(hit, *tier1.rules), probability=1.0,
                          source=Source.DAEMON)
        return Assessment(verdict, ThreatLevel.CRITICAL)

    rules = list(tier1.rules)
    tier2_p = min(1.0, max(0.0, float(tier2.p)))
    prior_p = config.prior(prior)
    p = combine_probabilities([r.probability for r in tier1.rules] + [tier2_p, prior_p])
    level = level_for(p, config)
    if tier2_p > 0.0:
        why = "; ".join(tier2.reasons) or f"score {tier2_p:.2f}"
        rules.append(RuleHit(f"tier2.{tier2_name}", f"Tier-2 {tier2_name}: {why}",
                             _SEVERITY[level_for(tier2_p, config)], Action.ALLOW, tier2_p))
    if prior_p > 0.0:
        rules.append(RuleHit("daemon.pid-prior",
                             f"process tree already at level {prior.label}"
                             + (f" ({prior_reason})" if prior_reason else ""),
                             _SEVERITY[prior], Action.ALLOW, prior_p))

    action = tier1.action
    notes = [f"combined P={p:.3f} (level {level.label})"]
    if config.auto_block and p >= config.block_threshold and action is not Action.BLOCK:
        action = Action.BLOCK
        rules.append(_escalation(p, level, Action.BLOCK,
                                 f"combined threat P={p:.2f} >= block threshold "
                                 f"{config.block_threshold:.2f} (auto-block)"))
    elif p >= config.warn_threshold and action is Action.ALLOW:
        action = Action.WARN
        rules.append(_escalation(p, level, Action.WARN,
                                 f"combined threat P={p:.2f} >= warn threshold "
                                 f"{config.warn_threshold:.2f}"))
    verdict = Verdict(action, rules=tuple(rules), probability=p, source=Source.DAEMON,
                      notes=tuple(notes))
    return Assessment(verdict, level)


def _escalation(p: float, level: ThreatLevel, action: Action, title: str) -> RuleHit:
    return RuleHit(
        rule_id="daemon.accumulated",
        title=title,
        severity=_SEVERITY[level],
        action=action,
        probability=p,
        explanation="Tier-1 rules, the Tier-2 score and this process tree's threat level "
        "combined as independent probabilities, 1 - prod(1 - p_i).",
    )
