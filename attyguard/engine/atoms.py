"""The Aho-Corasick prefilter (AtomMatcher): which rules can possibly match this text.

This module owns one automaton over every rule's literal atoms, built once per
rule set. A scan of the normalised text returns the candidate rules; only
those (plus the few rules without atoms) run their structural matchers, so a
clean line costs one linear scan.

Atoms are substrings (`sh` finds `bash`). An atom written `^nc` must start a
word — it may not follow a letter or digit — so `^nc` finds `nc -e`, `/bin/nc`
and `ncat` but not `branch`; rules use it to keep short command names from
sending every line to the parser. Other atoms (`/dev/tcp/`,
`$'\\`) match anywhere.
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
                left = atom.startswith("^") and len(atom) > 1
                literal = atom[1:] if left else atom
                size, old_left, old_rules = automaton.get(literal, (len(literal), left, ()))
                # One literal may be declared both ways: the plain (substring) form wins.
                automaton.add_word(literal, (size, old_left and left, (*old_rules, *rules)))
            automaton.make_automaton()
            self._automaton = automaton

    def candidates(self, text: str) -> set[int]:
        """Indices of rules whose atoms occur in `text` (already lower-cased) plus atomless ones."""
        found: set[int] = set(self.always)
        if self._automaton is None or not text:
            return found
        for end, (size, left, rules) in self._automaton.iter(text):
            start = end - size + 1
            if left and start > 0 and text[start - 1].isalnum():
                continue
            found.update(rules)
        return found
