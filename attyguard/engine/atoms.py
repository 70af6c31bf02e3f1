"""The Aho-Corasick prefilter (AtomMatcher): which rules can possibly match this text.

This module owns one automaton over every rule's literal atoms, built once per
rule set. A scan of the normalised text returns the candidate rules; only
those (plus the few rules without atoms) run their structural matchers, so a
clean line costs one linear scan.

Word-like atoms (only letters, digits, `.`, `_`, `-`) match whole words: `nc`
is found in `nc -e` and `/bin/nc` but not in `branch`, which keeps short
command names from sending every line to the parser. A digit may follow
(`python` is found in `python3`). Other atoms (`/dev/tcp/`,
`$'\\`) match anywhere.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import ahocorasick

__all__ = ["AtomMatcher", "is_word_atom"]

_WORD_ATOM = re.compile(r"[a-z0-9._-]+")


def is_word_atom(atom: str) -> bool:
    return _WORD_ATOM.fullmatch(atom) is not None


def _is_word_char(c: str) -> bool:
    return c.isalnum() or c == "_"


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
                left = _is_word_char(atom[0]) and is_word_atom(atom)
                right = _is_word_char(atom[-1]) and is_word_atom(atom)
                automaton.add_word(atom, (len(atom), left, right, tuple(rules)))
            automaton.make_automaton()
            self._automaton = automaton

    def candidates(self, text: str) -> set[int]:
        """Indices of rules whose atoms occur in `text` (already lower-cased) plus atomless ones."""
        found: set[int] = set(self.always)
        if self._automaton is None or not text:
            return found
        last = len(text) - 1
        for end, (size, left, right, rules) in self._automaton.iter(text):
            start = end - size + 1
            if left and start > 0 and _is_word_char(text[start - 1]):
                continue
            # A digit may follow (`python` finds `python3`, `wget` finds `wget2`).
            if right and end < last and (text[end + 1].isalpha() or text[end + 1] == "_"):
                continue
            found.update(rules)
        return found
