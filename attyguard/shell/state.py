"""Which of the live shell's names a line uses, and their values as a ShellState (pure).

bash keeps state between lines: `v='…'` then `eval "$v"`, an alias, a
function, a command re-pointed with `hash -p`. The engine judges a line as
bash will expand it when it is given those values (`attyguard.engine.state`).
This module decides what to ask the bash child for and decodes the answers;
the asking itself (a `bind -x` handler answering on the side channel) is
`BashChild.fetch_state` and `__ag_state` in shellrc/hooks.bash.

Two sources, so that a line made of literal words costs no round trip:
- the names record (N), sent by the hooks at every prompt: every alias with
  its value, every function's name, every hash-table entry whose program is
  not named like the command (`hash -p FILE ls`), and the traps. Aliases,
  hashed names and traps are therefore known without asking (a DEBUG or ERR
  trap goes with every line; all traps with kill/exit/trap…);
- the round trip, only for what the line uses and the file cannot tell:
  variables (`$v`, `${v…}`, `${!v}`, names in `$((…))`) and function
  bodies. Values travel as raw NUL-separated fields (exact: nothing to
  unquote, whatever quotes, newlines or `$'…'` they hold); only `trap -p`'s
  output is shell-quoted and parsed here.

A function body may use further names (`f() { eval "$d"; }`): those are
asked for in one more round trip, at most `MAX_ROUNDS` in all (one in the
common case).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from attyguard.engine.state import EMPTY_STATE, ShellState

__all__ = [
    "MAX_ROUNDS",
    "Names",
    "Needs",
    "build_state",
    "decode_answer",
    "encode_request",
    "needs_of",
    "parse_names",
    "parse_traps",
]

MAX_ROUNDS = 3

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_VALID_NAME = re.compile(_NAME)
# $v, ${v, ${#v, ${!v (indirect: the value names another variable).
_VAR_USE = re.compile(r"\$(?:\{([#!]?))?(" + _NAME + ")")
# Arithmetic uses bare names: $((a + b)), ((i++)).
_ARITH = re.compile(r"\(\((.*?)\)\)", re.S)
_IDENT = re.compile(_NAME)
# Words that can name a command, an alias or a function (split on shell syntax).
_WORD_SPLIT = re.compile(r"[\s;&|()<>'\"`$={}\\]+")
# Command words whose effect depends on the traps (signals, EXIT, RETURN, DEBUG).
_TRAP_WORDS = frozenset({"trap", "kill", "exit", "logout", "return", "suspend", "exec"})
# Our own names never leave the shell (the nonce is a secret).
_OURS = "__ag_"


@dataclass(frozen=True)
class Names:
    """What the hooks wrote at the last prompt (see `parse_names`)."""

    aliases: Mapping[str, str] = field(default_factory=dict)
    functions: frozenset[str] = frozenset()
    hashed: Mapping[str, str] = field(default_factory=dict)  # only re-pointed entries
    traps: Mapping[str, str] = field(default_factory=dict)  # signal -> command


@dataclass(frozen=True)
class Needs:
    """What one round trip asks the bash child for."""

    variables: frozenset[str] = frozenset()
    functions: frozenset[str] = frozenset()
    traps: bool = False

    def __bool__(self) -> bool:
        return bool(self.variables or self.functions or self.traps)


def parse_names(fields: Sequence[str]) -> Names:
    """The hooks' N record: groups `a NAME VALUE`, `h NAME PATH`, `f NAME`, and
    `F NAMES` (newline-separated, as `compgen -A function` prints them).

    Malformed input yields what could be read, never an error.
    """
    aliases: dict[str, str] = {}
    functions: set[str] = set()
    hashed: dict[str, str] = {}
    traps: dict[str, str] = {}
    i = 0
    while i < len(fields):
        kind = fields[i]
        if kind == "a" and i + 2 < len(fields):
            aliases[fields[i + 1]] = fields[i + 2]
            i += 3
        elif kind == "f" and i + 1 < len(fields):
            functions.add(fields[i + 1])
            i += 2
        elif kind == "F" and i + 1 < len(fields):
            # `compgen -A function`: one name per line, in one field.
            functions.update(n for n in fields[i + 1].split("\n") if n)
            i += 2
        elif kind == "h" and i + 2 < len(fields):
            hashed[fields[i + 1]] = fields[i + 2]
            i += 3
        elif kind == "T" and i + 1 < len(fields):
            traps.update(parse_traps(fields[i + 1]))
            i += 2
        else:
            i += 1
    return Names(
        {k: v for k, v in aliases.items() if not k.startswith(_OURS)},
        frozenset(n for n in functions if not n.startswith(_OURS)),
        {k: v for k, v in hashed.items() if not k.startswith(_OURS)},
        traps,
    )


def _variables_in(text: str) -> tuple[set[str], set[str]]:
    """(variables used, variables used indirectly as `${!v}`) — an over-approximation:
    a `$v` inside single quotes is counted too (asking for one name too many is cheap)."""
    used: set[str] = set()
    indirect: set[str] = set()
    if "$" in text:
        for m in _VAR_USE.finditer(text):
            used.add(m.group(2))
            if m.group(1) == "!":
                indirect.add(m.group(2))
    if "((" in text:
        for m in _ARITH.finditer(text):
            used.update(_IDENT.findall(m.group(1)))
    return used, indirect


def _words(text: str) -> set[str]:
    return {w for w in _WORD_SPLIT.split(text) if w}


def needs_of(line: str, names: Names) -> Needs:
    """What `line` uses that only the live shell knows; empty for literal lines."""
    variables, _ = _variables_in(line)
    words = _words(line)
    functions = {w for w in words if w in names.functions}
    # An alias's value is known already, but it may call a function or use a variable.
    for alias in words & names.aliases.keys():
        value = names.aliases[alias]
        variables |= _variables_in(value)[0]
        functions |= {w for w in _words(value) if w in names.functions}
    return Needs(
        variables=frozenset(v for v in variables if not v.startswith(_OURS)),
        functions=frozenset(functions),
        # (traps come with the names record; a request may still ask for them)
    )


def encode_request(needs: Needs) -> bytes:
    """The request file `__ag_state` reads: NUL-terminated `v:NAME`, `f:NAME`, `t:`."""
    items = [f"v:{n}" for n in sorted(needs.variables) if _VALID_NAME.fullmatch(n)]
    items += [f"f:{n}" for n in sorted(needs.functions)]
    if needs.traps:
        items.append("t:")
    return b"".join(i.encode("utf-8", "surrogateescape") + b"\0" for i in items)


@dataclass
class Answer:
    """One decoded `S` record."""

    variables: dict[str, str] = field(default_factory=dict)
    arrays: dict[str, dict[str, str]] = field(default_factory=dict)
    functions: dict[str, str] = field(default_factory=dict)
    traps: dict[str, str] = field(default_factory=dict)


def decode_answer(fields: Iterable[str]) -> Answer:
    """The `S` record: groups `V NAME VALUE`, `A|M NAME COUNT (KEY VALUE)*`,
    `F NAME DEFINITION`, `T TRAP_P_OUTPUT`. An unknown or truncated group ends decoding."""
    items = list(fields)
    out = Answer()
    i = 0
    while i < len(items):
        kind = items[i]
        if kind == "V" and i + 2 < len(items):
            out.variables[items[i + 1]] = items[i + 2]
            i += 3
        elif kind in ("A", "M") and i + 2 < len(items):
            try:
                count = int(items[i + 2])
            except ValueError:
                break
            pairs = items[i + 3 : i + 3 + 2 * count]
            if count < 0 or len(pairs) < 2 * count:
                break
            out.arrays[items[i + 1]] = dict(zip(pairs[::2], pairs[1::2], strict=True))
            i += 3 + 2 * count
        elif kind == "F" and i + 2 < len(items):
            out.functions[items[i + 1]] = items[i + 2]
            i += 3
        elif kind == "T" and i + 1 < len(items):
            out.traps.update(parse_traps(items[i + 1]))
            i += 2
        else:
            break
    return out


def parse_traps(text: str) -> dict[str, str]:
    """`trap -p` output (`trap -- 'CMD' SIGINT` per trap) as {signal: command}.

    Signal names lose bash's `SIG` prefix (`INT`, like `EXIT`/`DEBUG`).
    Text that does not split as shell words gives nothing.
    """
    traps: dict[str, str] = {}
    try:
        words = shlex.split(text, posix=True)
    except ValueError:
        return traps
    i = 0
    while i + 3 < len(words):
        if words[i] == "trap" and words[i + 1] == "--":
            traps[words[i + 3].removeprefix("SIG")] = words[i + 2]
            i += 4
        else:
            i += 1
    return traps


def build_state(line: str, names: Names,
                fetch: Callable[[Needs], tuple[str, ...] | None]) -> ShellState:
    """The ShellState for `line`: names-file knowledge plus at most `MAX_ROUNDS` fetches.

    `fetch(needs)` is one round trip to the bash child (the `S` record's
    fields, or None if bash did not answer: the state then holds what is
    known). Only names bash has set are included (absent means unknown).
    """
    words = _words(line)
    aliases = {a: names.aliases[a] for a in words & names.aliases.keys()}
    hashed = {h: names.hashed[h] for h in words & names.hashed.keys()}
    traps = _traps_for(words, names)
    _, indirect = _variables_in(line)
    needs = needs_of(line, names)
    got = Answer()
    asked_vars: set[str] = set()
    asked_funcs: set[str] = set()
    asked_traps = False
    for _ in range(MAX_ROUNDS):
        needs = Needs(needs.variables - asked_vars, needs.functions - asked_funcs,
                      needs.traps and not asked_traps)
        if not needs:
            break
        asked_vars |= needs.variables
        asked_funcs |= needs.functions
        asked_traps = asked_traps or needs.traps
        fields = fetch(needs)
        if fields is None:
            break
        answer = decode_answer(fields)
        got.variables.update(answer.variables)
        got.arrays.update(answer.arrays)
        got.functions.update(answer.functions)
        got.traps.update(answer.traps)
        # What the new values use in turn: function bodies, indirect references.
        more_vars: set[str] = set()
        more_funcs: set[str] = set()
        for body in answer.functions.values():
            body_words = _words(body)
            more_vars |= _variables_in(body)[0]
            more_funcs |= {w for w in body_words if w in names.functions}
            hashed.update({h: names.hashed[h] for h in body_words & names.hashed.keys()})
        for name in indirect:
            target = answer.variables.get(name, "")
            if _VALID_NAME.fullmatch(target):
                more_vars.add(target)
        needs = Needs(frozenset(v for v in more_vars if not v.startswith(_OURS)),
                      frozenset(more_funcs), False)
    traps.update(got.traps)
    if not (aliases or hashed or got.variables or got.arrays or got.functions or traps):
        return EMPTY_STATE
    return ShellState(variables=got.variables, arrays=got.arrays, aliases=aliases,
                      functions=got.functions, hashed=hashed, traps=traps)


# Traps that run whatever the line is: before every command, on any failure.
_ALWAYS = ("DEBUG", "ERR")


def _traps_for(words: set[str], names: Names) -> dict[str, str]:
    """The traps that can run because of this line (all of them for kill/exit/trap…,
    RETURN for a function call or `source`)."""
    if words & _TRAP_WORDS:
        return dict(names.traps)
    wanted = set(_ALWAYS)
    if words & (names.functions | {"source", "."}):
        wanted.add("RETURN")
    return {sig: cmd for sig, cmd in names.traps.items() if sig in wanted}
