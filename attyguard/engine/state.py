"""The live shell's state that a line can use: the contract between the shell and the engine.

A typed line may use names that are not literal in it: a variable set on an
earlier line (`eval "$v"`), an alias or function defined before, a command
name re-pointed with `hash -p`, a trap. The shell fetches what the line uses
from its bash child (one round trip, only when the line uses such a name) and
hands it to the engine as a `ShellState`, so the engine judges the line as bash
will expand it. The engine stays pure: the state is plain frozen data.

Values are the text bash holds (`declare -p`/`declare -f`/`alias -p` decoded),
never executed. A name absent from a mapping is unknown to the engine (not
"empty"): the shell includes every name the line uses that bash has set.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

__all__ = ["EMPTY_STATE", "ShellState"]


def _frozen(d: Mapping[str, object] | None) -> Mapping[str, object]:
    return MappingProxyType(dict(d or {}))


@dataclass(frozen=True)
class ShellState:
    # Scalar shell variables (exported or not): name -> value.
    variables: Mapping[str, str] = field(default_factory=dict)
    # Indexed and associative arrays: name -> {key: value} (indexed keys are decimal strings).
    arrays: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    # Aliases: name -> replacement text.
    aliases: Mapping[str, str] = field(default_factory=dict)
    # Functions: name -> body as `declare -f NAME` prints it (the whole definition).
    functions: Mapping[str, str] = field(default_factory=dict)
    # bash's hash table entries set with `hash -p`: name -> program path.
    hashed: Mapping[str, str] = field(default_factory=dict)
    # Traps: signal name (EXIT, DEBUG, RETURN, ERR, INT…) -> the command text.
    traps: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Frozen all the way down: a state can be cached and shared across threads.
        for name in ("variables", "aliases", "functions", "hashed", "traps"):
            object.__setattr__(self, name, _frozen(getattr(self, name)))
        object.__setattr__(
            self, "arrays",
            MappingProxyType({k: MappingProxyType(dict(v)) for k, v in self.arrays.items()}),
        )

    def __bool__(self) -> bool:
        return any((self.variables, self.arrays, self.aliases, self.functions,
                    self.hashed, self.traps))

    def key(self) -> tuple[object, ...]:
        """A hashable digest, so a verdict cache can key on (line, state)."""
        return (
            tuple(sorted(self.variables.items())),
            tuple(sorted((k, tuple(sorted(v.items()))) for k, v in self.arrays.items())),
            tuple(sorted(self.aliases.items())),
            tuple(sorted(self.functions.items())),
            tuple(sorted(self.hashed.items())),
            tuple(sorted(self.traps.items())),
        )


EMPTY_STATE = ShellState()
