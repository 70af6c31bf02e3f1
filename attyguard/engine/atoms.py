"""The Aho-Corasick prefilter (AtomMatcher): which rules can possibly match this text.

This module owns one automaton over every rule's literal atoms, built once per
rule set. A scan of the normalised text returns the candidate rules; only
those (plus the few rules without atoms) run their structural matchers, so a
clean line costs one linear scan.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import ahocorasick

__all__ = ["AtomMatcher"]


class AtomMatcher:
    """Maps literal atoms (lower case) to the indices of the rules that declared them."""

    def __init__(self, atoms_per_rule: Sequence[Iterable[str]]) -> None:
        owners: dict[str, list[int]] = {}
        always: list[int] = []
        for index, atoms in enumerate(atoms_per_rule):
            listed = [a.lower() for a in atoms if a]
            if not listed:
                always.append(index)
            for atom in listed:
                owners.setdefault(atom, []).append(index)
        self.always: frozenset[int] = frozenset(always)
        self._automaton: ahocorasick.Automaton | None = None
        if owners:
            automaton = ahocorasick.Automaton()
            for atom, rules in owners.items():
                automaton.add_word(atom, tuple(rules))
            automaton.make_automaton()
            self._automaton = automaton

    def candidates(self, text: str) -> set[int]:
        """Indices of rules whose atoms occur in `text` (already lower-cased) plus atomless ones."""
        found: set[int] = set(self.always)
        if self._automaton is not None and text:
            for _end, rules in self._automaton.iter(text):
                found.update(rules)
        return found
