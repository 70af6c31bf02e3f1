"""Running every rule's own examples through the real engine (`attyguard rules --test`).

This module owns `run_examples` and `ExampleFailure`. It sits above both the
rule loader (rules.py) and the engine (classify.py), so neither imports the
other's module to run examples: the old `rules -> classify -> rules` cycle is gone.
"""

from __future__ import annotations

from dataclasses import dataclass

from attyguard.engine.classify import Engine
from attyguard.engine.rules import RuleSet

__all__ = ["ExampleFailure", "run_examples"]


@dataclass(frozen=True, slots=True)
class ExampleFailure:
    rule_id: str
    source: str
    example: str
    expected_match: bool
    message: str

    def __str__(self) -> str:
        want = "should match" if self.expected_match else "should not match"
        return f"{self.source}: rule {self.rule_id!r}: example {want}: {self.example!r}"


def run_examples(ruleset: RuleSet) -> list[ExampleFailure]:
    """Run every rule's own examples through the real engine (prefilter included)."""
    engine = Engine(ruleset)
    failures: list[ExampleFailure] = []
    for rule in ruleset.rules:
        for example in rule.examples_match:
            ids = {h.rule_id for h in engine.classify(example).rules}
            if rule.id not in ids:
                failures.append(ExampleFailure(rule.id, rule.source, example, True,
                                               f"matched {sorted(ids) or 'nothing'}"))
        for example in rule.examples_nomatch:
            ids = {h.rule_id for h in engine.classify(example).rules}
            if rule.id in ids:
                failures.append(ExampleFailure(rule.id, rule.source, example, False,
                                               "the rule matched"))
    return failures
