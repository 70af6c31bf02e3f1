"""Verdicts: what the classifier (local engine, trust store or daemon) answers.

These types are the contract between the engine, the trust store, the daemon
protocol and the shell's enforcement point, so they are plain frozen data with
a JSON form (`to_json`/`from_json`) that the daemon protocol and
`attyguard check --json` share.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import IntEnum, StrEnum
from typing import Any

__all__ = ["Action", "RuleHit", "Severity", "Source", "Verdict", "combine_probabilities"]


class Action(StrEnum):
    ALLOW = "allow"
    WARN = "warn"
    BLOCK = "block"

    @property
    def rank(self) -> int:
        return _ACTION_RANK[self]

    @classmethod
    def strongest(cls, actions: list[Action] | tuple[Action, ...]) -> Action:
        return max(actions, key=lambda a: a.rank, default=cls.ALLOW)


_ACTION_RANK = {Action.ALLOW: 0, Action.WARN: 1, Action.BLOCK: 2}


class Severity(IntEnum):
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @classmethod
    def parse(cls, text: str) -> Severity:
        return cls[text.strip().upper()]


class Source(StrEnum):
    LOCAL = "local"
    TRUST = "trust"
    DAEMON = "daemon"


@dataclass(frozen=True, slots=True)
class RuleHit:
    """One rule that matched, with the part of the line it matched."""

    rule_id: str
    title: str
    severity: Severity
    action: Action
    probability: float
    explanation: str = ""
    remediation: str = ""
    span: tuple[int, int] | None = None  # offsets into the original line, if known
    matched: str = ""  # the matched text (normalised or decoded), for display

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.rule_id,
            "title": self.title,
            "severity": self.severity.name,
            "action": self.action.value,
            "p": self.probability,
            "explanation": self.explanation,
            "remediation": self.remediation,
            "span": list(self.span) if self.span is not None else None,
            "matched": self.matched,
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> RuleHit:
        span = obj.get("span")
        return cls(
            rule_id=str(obj["id"]),
            title=str(obj.get("title", "")),
            severity=Severity.parse(str(obj.get("severity", "LOW"))),
            action=Action(str(obj.get("action", "warn"))),
            probability=float(obj.get("p", 0.0)),
            explanation=str(obj.get("explanation", "")),
            remediation=str(obj.get("remediation", "")),
            span=(int(span[0]), int(span[1]))
            if isinstance(span, list) and len(span) == 2
            else None,
            matched=str(obj.get("matched", "")),
        )


def combine_probabilities(ps: list[float] | tuple[float, ...]) -> float:
    """Independent-probability combination P = 1 - prod(1 - p_i) (seed V2-J)."""
    remaining = 1.0
    for p in ps:
        remaining *= 1.0 - min(1.0, max(0.0, p))
    return 1.0 - remaining


@dataclass(frozen=True, slots=True)
class Verdict:
    """The answer for one command line: what to do, the rules behind it, from where."""

    action: Action
    rules: tuple[RuleHit, ...] = ()
    probability: float = 0.0
    elapsed_us: int = 0
    source: Source = Source.LOCAL
    notes: tuple[str, ...] = field(default=())  # e.g. "daemon unreachable; local verdict"

    @property
    def reason(self) -> str:
        """One short human line: why this verdict (used in REFUSED — <reason>)."""
        if not self.rules:
            return "no rule matched" if self.action is Action.ALLOW else self.action.value
        top = max(self.rules, key=lambda r: (r.action.rank, r.severity, r.probability))
        more = len(self.rules) - 1
        return top.title + (f" (+{more} more)" if more > 0 else "")

    def with_source(self, source: Source) -> Verdict:
        return replace(self, source=source)

    def to_json(self) -> dict[str, Any]:
        return {
            "action": self.action.value,
            "rules": [r.to_json() for r in self.rules],
            "probability": self.probability,
            "elapsed_us": self.elapsed_us,
            "source": self.source.value,
            "reason": self.reason,
            "notes": list(self.notes),
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Verdict:
        return cls(
            action=Action(str(obj["action"])),
            rules=tuple(RuleHit.from_json(r) for r in obj.get("rules", [])),
            probability=float(obj.get("probability", 0.0)),
            elapsed_us=int(obj.get("elapsed_us", 0)),
            source=Source(str(obj.get("source", "local"))),
            notes=tuple(str(n) for n in obj.get("notes", [])),
        )


ALLOW = Verdict(Action.ALLOW)
