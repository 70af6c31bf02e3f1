from __future__ import annotations

import pytest

from attyguard.engine.verdict import (
    Action,
    RuleHit,
    Severity,
    Source,
    Verdict,
    combine_probabilities,
)
from attyguard.guard import Guard


def _hit(rule_id: str, action: Action, p: float = 0.5) -> RuleHit:
    return RuleHit(rule_id, f"title {rule_id}", Severity.HIGH, action, p, span=(0, 3))


@pytest.mark.parametrize(
    ("ps", "expected"),
    [((), 0.0), ((0.5,), 0.5), ((0.5, 0.5), 0.75), ((1.0, 0.1), 1.0), ((0.9, 0.9, 0.9), 0.999)],
)
def test_combine(ps: tuple[float, ...], expected: float) -> None:
    assert combine_probabilities(ps) == pytest.approx(expected)


def test_json_round_trip() -> None:
    verdict = Verdict(Action.BLOCK, (_hit("a", Action.BLOCK), _hit("b", Action.WARN)), 0.75, 12)
    assert Verdict.from_json(verdict.to_json()) == verdict
    assert verdict.reason == "title a (+1 more)"


class _Trust:
    def __init__(self) -> None:
        self.lines: dict[str, tuple[str, ...]] = {}

    def lookup(self, line: str) -> bool:
        return line in self.lines

    def add(self, line: str, rule_ids: tuple[str, ...]) -> None:
        self.lines[line] = rule_ids


class _Daemon:
    def __init__(self, verdict: Verdict | None) -> None:
        self.verdict = verdict
        self.blocks: list[Verdict] = []

    def classify(self, line: str) -> Verdict | None:
        return self.verdict

    def report_block(self, verdict: Verdict) -> None:
        self.blocks.append(verdict)


def _engine(line: str) -> Verdict:
    return Verdict(Action.WARN, (_hit("x", Action.WARN),))


def test_guard_order_trust_then_daemon_then_engine() -> None:
    trust = _Trust()
    daemon = _Daemon(Verdict(Action.BLOCK, (_hit("d", Action.BLOCK),)))
    guard = Guard(_engine, trust, daemon)
    verdict = guard.decide("ls")
    assert verdict.source is Source.DAEMON
    assert len(daemon.blocks) == 1
    guard.remember("ls", verdict)
    assert trust.lines == {"ls": ("d",)}
    trusted = guard.decide("ls")
    assert (trusted.action, trusted.source) == (Action.ALLOW, Source.TRUST)
    assert len(daemon.blocks) == 1  # a trusted line never reaches the daemon


def test_guard_falls_back_to_engine_when_daemon_absent() -> None:
    verdict = Guard(_engine, None, _Daemon(None)).decide("x")
    assert (verdict.action, verdict.source) == (Action.WARN, Source.LOCAL)
    assert verdict.notes == ("daemon unavailable; in-process verdict",)


def test_a_block_for_an_already_critical_pid_is_not_reported_again() -> None:
    critical = RuleHit("daemon.pid-critical", "Critical", Severity.CRITICAL, Action.BLOCK, 1.0)
    daemon = _Daemon(Verdict(Action.BLOCK, (critical,)))
    verdict = Guard(_engine, None, daemon).decide("ls")
    assert verdict.action is Action.BLOCK
    assert daemon.blocks == []
