"""Every shipped rule's own must-match / must-not-match examples, through the real engine."""

from __future__ import annotations

import functools

import pytest

from attyguard.engine.examples import ExampleFailure, run_examples
from attyguard.engine.rules import Rule, load_rules
from attyguard.engine.verdict import Action

RULES = load_rules()


@functools.cache
def _failures() -> tuple[ExampleFailure, ...]:
    return tuple(run_examples(RULES))


def test_rules_load_and_ids_are_unique() -> None:
    ids = [r.id for r in RULES.rules]
    assert ids, "no rules shipped"
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("rule", RULES.rules, ids=lambda r: r.id)
def test_rule_examples(rule: Rule) -> None:
    failures = [f for f in _failures() if f.rule_id == rule.id]
    assert not failures, "\n".join(f"{f} ({f.message})" for f in failures)


def test_block_rules_have_high_severity() -> None:
    for rule in RULES.rules:
        if rule.action is Action.BLOCK:
            assert rule.severity.name in ("HIGH", "CRITICAL"), rule.id
