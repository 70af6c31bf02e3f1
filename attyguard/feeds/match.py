"""Evaluating a feed bundle on one exec (pure: no I/O).

An *exec view* is what a process start looks like to Sigma: `Image` (the
program's path, or its name when the path is unknown), `CommandLine` (argv
joined), `ParentImage`, `ParentCommandLine`, `User`, `CurrentDirectory`, and
the privilege it runs with (`sudo` when a sudo/doas wrapper starts it, `suid`
when the program file is set-uid). The same view comes from a typed line's
parsed commands and from a kernel exec event, so one bundle judges both.

`FeedSet.atoms` are the bundle's sanitized atoms: a line holding none of them
cannot match any feed rule, so a clean line still stops at the engine's
prefilter.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from attyguard.engine.atoms import AtomMatcher
from attyguard.engine.verdict import Action, RuleHit, Severity

__all__ = ["ExecView", "FeedSet"]

_SEVERITY = {"critical": Severity.CRITICAL, "high": Severity.HIGH, "medium": Severity.MEDIUM,
             "low": Severity.LOW, "informational": Severity.LOW}


@dataclass(frozen=True)
class ExecView:
    image: str
    command_line: str
    parent_image: str = ""
    parent_command_line: str = ""
    user: str = ""
    current_directory: str = ""
    privilege: str | None = None  # "sudo" | "suid" | None

    def fields(self) -> dict[str, str]:
        return {"Image": self.image, "CommandLine": self.command_line,
                "ParentImage": self.parent_image, "ParentCommandLine": self.parent_command_line,
                "User": self.user, "CurrentDirectory": self.current_directory}


class _Compiled:
    """A bundle condition with its regexes compiled once."""

    def __init__(self, tree: list[Any]) -> None:
        self.tree = self._build(tree)

    def _build(self, node: list[Any]) -> Any:
        op = node[0]
        if op in ("and", "or"):
            return (op, tuple(self._build(c) for c in node[1]))
        if op == "not":
            return (op, self._build(node[1]))
        if op == "re":
            flags = 0 if node[3] else re.IGNORECASE
            return (op, node[1], re.compile(node[2], flags))
        return (op, node[1])

    def test(self, fields: Mapping[str, str]) -> bool:
        return self._eval(self.tree, fields)

    def _eval(self, node: Any, fields: Mapping[str, str]) -> bool:
        op = node[0]
        if op == "and":
            return all(self._eval(c, fields) for c in node[1])
        if op == "or":
            return any(self._eval(c, fields) for c in node[1])
        if op == "not":
            return not self._eval(node[1], fields)
        if op == "re":
            values = fields.values() if node[1] is None else (fields.get(node[1], ""),)
            return any(node[2].fullmatch(v) for v in values if v)
        return not fields.get(node[1])  # "null": the field is empty


@dataclass
class FeedSet:
    """A loaded bundle: Sigma rules and GTFOBins shapes, ready to evaluate."""

    sigma: list[dict[str, Any]] = field(default_factory=list)
    gtfobins: list[dict[str, Any]] = field(default_factory=list)
    version: str = ""

    @classmethod
    def from_bundle(cls, bundle: Mapping[str, Any]) -> FeedSet:
        return cls(list(bundle.get("sigma", ())), list(bundle.get("gtfobins", ())),
                   str(bundle.get("version", "")))

    @cached_property
    def _sigma(self) -> list[tuple[dict[str, Any], _Compiled]]:
        return [(r, _Compiled(r["cond"])) for r in self.sigma]

    @cached_property
    def _gate(self) -> AtomMatcher:
        # One Aho-Corasick pass finds the rules whose atoms a view holds.
        return AtomMatcher([r["atoms"] for r in self.sigma])

    @cached_property
    def _gtfo_by_name(self) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {}
        # The gravest function first: a line that is a shell escape is reported as one.
        for shape in sorted(self.gtfobins, key=lambda sh: -float(sh["p"])):
            out.setdefault(shape["binary"], []).append(shape)
        return out

    @cached_property
    def atoms(self) -> tuple[str, ...]:
        atoms = {a for r in self.sigma for a in r["atoms"]}
        if self.gtfobins:
            # Shapes only count under privilege: on a typed line that is a sudo/doas
            # wrapper (set-uid programs are judged at exec, by the daemon).
            atoms |= {"^sudo", "^doas"}
        return tuple(sorted(atoms))

    def __len__(self) -> int:
        return len(self.sigma) + len(self.gtfobins)

    def evaluate(self, view: ExecView) -> list[RuleHit]:
        hits: list[RuleHit] = []
        fields = view.fields()
        text = " ".join(fields.values()).lower()
        for index in sorted(self._gate.candidates(text)):
            rule, compiled = self._sigma[index]
            if compiled.test(fields):
                hits.append(RuleHit(
                    rule_id=rule["id"], title=f"Sigma: {rule['title']}",
                    severity=_SEVERITY.get(rule["level"], Severity.LOW),
                    action=Action(rule["action"]), probability=float(rule["p"]),
                    explanation=f"Sigma rule {rule['id'][6:]} ({rule['level']}, "
                    f"{rule['status']}) from the SigmaHQ Linux rules matched this program "
                    "start.",
                    remediation="Check what started this program and why; `attyguard feeds "
                    "status` names the bundle.",
                    matched=view.command_line[:200]))
        if view.privilege:
            name = view.image.rsplit("/", 1)[-1]
            args = view.command_line.lower()
            for shape in self._gtfo_by_name.get(name, ()):
                if view.privilege not in shape["contexts"]:
                    continue
                if all(token in args for token in shape["tokens"]):
                    hits.append(RuleHit(
                        rule_id=shape["id"],
                        title=f"GTFOBins: {name} {shape['function']} ({view.privilege})",
                        severity=Severity.HIGH if shape["action"] == "warn" else Severity.MEDIUM,
                        action=Action(shape["action"]), probability=float(shape["p"]),
                        explanation=f"GTFOBins lists this use of {name} as a way to "
                        f"{shape['function'].replace('-', ' ')} when it runs with "
                        f"{view.privilege} privileges, which this one does.",
                        remediation="Run it without elevated privileges, or review exactly "
                        "what it will do first.",
                        matched=view.command_line[:200]))
                    break
        return hits
