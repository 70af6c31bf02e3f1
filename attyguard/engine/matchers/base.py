"""What every matcher type is built from: the analysed line, results, patterns, fields.

This module owns the pieces all matcher modules share and nothing that names
a matcher type: `Analysis` (what a matcher looks at), `MatchResult`, the
`Matcher` protocol, `MatcherError`, `Build` (the context a matcher is built
in: named command sets, whether regexes compile now, and the registry used
for sub-matchers), the one lazily compiled `LazyPattern`, the field readers
every `from_dict` uses, and the command predicate `CommandSpec`. The registry
(registry.py) imports the matcher modules; none of them imports it, so there
is no import cycle.
"""

from __future__ import annotations

import fnmatch
import functools
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from attyguard.engine.decode import Payload
from attyguard.engine.parse import Command, Parsed, Span

if TYPE_CHECKING:
    # imported on first use of a timed pattern: an import nobody needs at start-up
    # (bench/README.md, "Figures behind design choices")
    import regex

__all__ = [
    "REGEX_TIMEOUT_S",
    "Analysis",
    "Build",
    "CommandSpec",
    "LazyPattern",
    "MatchResult",
    "Matcher",
    "MatcherError",
    "MatcherType",
    "NameSet",
    "bool_field",
    "check_keys",
    "cmd_text",
    "get_list",
    "has_flag",
    "int_field",
    "join_spans",
    "regex_field",
    "regex_list",
]

REGEX_TIMEOUT_S = 0.05


class MatcherError(ValueError):
    """A matcher definition is invalid (rules.py locates it)."""


@dataclass(frozen=True, slots=True)
class Analysis:
    """Everything a matcher may look at for one line (or one decoded layer of it)."""

    line: str  # the text as typed (or as decoded, for a payload layer)
    parsed: Parsed
    normalized: str  # commands after normalisation, one per line: "path arg arg"
    payloads: tuple[Payload, ...] = ()
    layer: int = 0  # 0 = the line as typed; n = a payload decoded n layers deep


@dataclass(frozen=True, slots=True)
class MatchResult:
    span: Span | None  # byte offsets into the analysed text, when known
    text: str


class Matcher(Protocol):
    def match(self, a: Analysis) -> MatchResult | None: ...


class MatcherType(Protocol):
    """A registry entry: a class with a `type_name` and a validating `from_dict`."""

    type_name: str

    def from_dict(self, d: dict[str, Any], b: Build, /) -> Matcher: ...


@dataclass(frozen=True, slots=True)
class Build:
    """How matchers are built: sets for `@name`, eager/lazy regexes, the type table.

    `eager=True` compiles every regex now, so a bad one is a located RuleError;
    the shipped rules' default engine passes False (compiling ~230 regexes was
    most of the start-up every `ssh host CMD` pays; the test suite compiles them).
    """

    sets: Mapping[str, frozenset[str]]
    eager: bool = True
    table: Mapping[str, MatcherType] = field(default_factory=dict)

    def matcher(self, d: Any) -> Matcher:
        """Dispatch on `type`; every field error becomes a MatcherError."""
        if not isinstance(d, dict):
            raise MatcherError("a matcher is a mapping with a 'type'")
        kind = d.get("type")
        entry = self.table.get(kind) if isinstance(kind, str) else None
        if entry is None:
            raise MatcherError(
                f"unknown matcher type {kind!r} (known: {', '.join(sorted(self.table))})")
        try:
            return entry.from_dict(d, self)
        except MatcherError:
            raise
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            raise MatcherError(f"{kind} matcher: {exc}") from None

    def pattern(self, pattern: str, flags: int = 0, *, timeout: float | None = None,
                what: str = "pattern") -> LazyPattern:
        try:
            return LazyPattern(pattern, flags, eager=self.eager, timeout=timeout)
        except (re.error, MatcherError) as exc:
            raise MatcherError(f"{what!r}: bad regex {pattern!r}: {exc}") from None


class LazyPattern:
    """A regex compiled on first use (or at once when eager); only `search` is used.

    `search` is an attribute, not a method: once compiled it is the compiled
    pattern's own bound `search`, so matching costs no more than a plain
    pattern (matchers search on every candidate rule of every line).

    With a `timeout` the pattern runs on the `regex` module, which stops a
    search at the limit (TimeoutError): rule authors' raw-text regexes over a
    long hostile line could otherwise backtrack for minutes (seen: 60 KB of one
    letter); the engine reports the line as not fully analysed instead of
    hanging. `regex` is imported only then. A pattern that fails to compile
    lazily (shipped rules edited unchecked) raises MatcherError inside the
    matcher, and the engine answers warn for that line, never allow.
    """

    __slots__ = ("_compiled", "flags", "pattern", "search", "timeout")

    def __init__(self, pattern: str, flags: int = 0, *, eager: bool = True,
                 timeout: float | None = None) -> None:
        self.pattern = pattern
        self.flags = flags
        self.timeout = timeout
        self._compiled: re.Pattern[str] | regex.Pattern[str] | None = None
        self.search: Callable[[str], re.Match[str] | regex.Match[str] | None] = self._first
        if eager:
            self.compiled()

    def compiled(self) -> re.Pattern[str] | regex.Pattern[str]:
        compiled = self._compiled
        if compiled is not None:
            return compiled
        if self.timeout is None:
            plain = re.compile(self.pattern, self.flags)
            self._compiled, self.search = plain, plain.search
            return plain
        import regex

        try:
            timed = regex.compile(self.pattern, self.flags)
        except regex.error as exc:
            raise MatcherError(str(exc)) from None
        self._compiled = timed
        self.search = functools.partial(timed.search, timeout=self.timeout)
        return timed

    def _first(self, string: str) -> re.Match[str] | regex.Match[str] | None:
        self.compiled()
        return self.search(string)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LazyPattern):
            return NotImplemented
        return ((self.pattern, self.flags, self.timeout)
                == (other.pattern, other.flags, other.timeout))

    def __hash__(self) -> int:
        return hash((self.pattern, self.flags, self.timeout))

    def __repr__(self) -> str:
        return f"LazyPattern({self.pattern!r}, {self.flags}, timeout={self.timeout})"


# -- field readers --------------------------------------------------------------------------


def get_list(d: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = d.get(key)
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise MatcherError(f"{key!r} must be a string or a list of strings")
    return tuple(value)


def regex_list(d: Mapping[str, Any], key: str, b: Build) -> tuple[LazyPattern, ...]:
    return tuple(b.pattern(p, what=key) for p in get_list(d, key))


def regex_field(d: Mapping[str, Any], key: str, b: Build, flags: int = 0) -> LazyPattern | None:
    value = d.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise MatcherError(f"{key!r} must be a regex string")
    return b.pattern(value, flags, what=key)


def bool_field(d: Mapping[str, Any], key: str, default: bool | None = None) -> bool | None:
    value = d.get(key, default)
    if value is not None and not isinstance(value, bool):
        raise MatcherError(f"{key!r} must be true or false")
    return value


def int_field(d: Mapping[str, Any], key: str, default: int, minimum: int = 0) -> int:
    value = d.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise MatcherError(f"{key!r} must be an integer >= {minimum}")
    return value


def check_keys(d: Mapping[str, Any], allowed: Iterable[str], what: str) -> None:
    unknown = set(d) - set(allowed) - {"type"}
    if unknown:
        raise MatcherError(f"{what}: unknown field(s): {', '.join(sorted(unknown))}")


# -- the command predicate ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NameSet:
    """Command names: exact names, `@set` references (expanded at load) and globs."""

    exact: frozenset[str]
    globs: tuple[str, ...]

    @classmethod
    def build(cls, names: Iterable[str], sets: Mapping[str, frozenset[str]]) -> NameSet:
        exact: set[str] = set()
        globs: list[str] = []
        for n in names:
            if n.startswith("@"):
                if n[1:] not in sets:
                    raise MatcherError(f"unknown command set {n!r}")
                members = sets[n[1:]]
            else:
                members = frozenset({n})
            for m in members:
                (globs.append(m) if any(c in m for c in "*?[") else exact.add(m))
        return cls(frozenset(exact), tuple(globs))

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        return name in self.exact or any(fnmatch.fnmatchcase(name, g) for g in self.globs)

    def __bool__(self) -> bool:
        return bool(self.exact or self.globs)


def has_flag(argv: tuple[str, ...], flag: str) -> bool:
    """`-x` also matches inside combined short flags (`-rfx`); `--long` also as `--long=v`."""
    if flag.startswith("--"):
        return any(a == flag or a.startswith(flag + "=") for a in argv)
    if len(flag) == 2 and flag.startswith("-"):
        letter = flag[1]
        for a in argv:
            if a == "--":
                break
            if a.startswith("-") and not a.startswith("--") and letter in a[1:] and (
                a[1:].isalpha() or a == flag
            ):
                return True
        return False
    return flag in argv


_SPEC_KEYS = (
    "names", "not_names", "args_any", "args_all", "args_none", "flags_any", "flags_all",
    "flags_none", "argline", "not_argline", "via", "min_args", "assignments_any",
)


@dataclass(frozen=True, slots=True)
class CommandSpec:
    """Predicates on one simple command (its name after unwrapping, its arguments)."""

    names: NameSet
    not_names: NameSet
    args_any: tuple[LazyPattern, ...]
    args_all: tuple[LazyPattern, ...]
    args_none: tuple[LazyPattern, ...]
    flags_any: tuple[str, ...]
    flags_all: tuple[str, ...]
    flags_none: tuple[str, ...]
    argline: LazyPattern | None
    not_argline: LazyPattern | None
    via: frozenset[str]
    min_args: int
    assignments_any: tuple[LazyPattern, ...] = ()

    @classmethod
    def from_dict(cls, d: Any, b: Build, what: str) -> CommandSpec:
        if not isinstance(d, dict):
            raise MatcherError(f"{what} must be a mapping of command predicates")
        check_keys(d, _SPEC_KEYS, what)
        min_args = d.get("min_args", 0)
        if not isinstance(min_args, int):
            raise MatcherError(f"{what}: 'min_args' must be an integer")
        return cls(
            names=NameSet.build(get_list(d, "names"), b.sets),
            not_names=NameSet.build(get_list(d, "not_names"), b.sets),
            args_any=regex_list(d, "args_any", b),
            args_all=regex_list(d, "args_all", b),
            args_none=regex_list(d, "args_none", b),
            flags_any=get_list(d, "flags_any"),
            flags_all=get_list(d, "flags_all"),
            flags_none=get_list(d, "flags_none"),
            argline=regex_field(d, "argline", b),
            not_argline=regex_field(d, "not_argline", b),
            via=frozenset(get_list(d, "via")),
            min_args=min_args,
            assignments_any=regex_list(d, "assignments_any", b),
        )

    @classmethod
    def optional(cls, d: Mapping[str, Any], key: str, b: Build, what: str) -> CommandSpec | None:
        value = d.get(key)
        return cls.from_dict(value, b, what) if value else None

    def test(self, cmd: Command) -> bool:
        if self.names and cmd.name not in self.names:
            return False
        if self.not_names and cmd.name in self.not_names:
            return False
        if self.via and not (self.via.intersection(cmd.wrappers)
                             or self.via.intersection(cmd.inside)):
            return False
        if self.assignments_any and not any(
            r.search(a) for r in self.assignments_any for a in cmd.assignments
        ):
            return False
        argv = cmd.argv
        if len(argv) < self.min_args:
            return False
        if self.args_any and not any(r.search(a) for r in self.args_any for a in argv):
            return False
        if self.args_all and not all(any(r.search(a) for a in argv) for r in self.args_all):
            return False
        if self.args_none and any(r.search(a) for r in self.args_none for a in argv):
            return False
        if self.flags_any and not any(has_flag(argv, f) for f in self.flags_any):
            return False
        if self.flags_all and not all(has_flag(argv, f) for f in self.flags_all):
            return False
        if self.flags_none and any(has_flag(argv, f) for f in self.flags_none):
            return False
        if self.argline is not None or self.not_argline is not None:
            joined = " ".join(argv)
            if self.argline is not None and not self.argline.search(joined):
                return False
            if self.not_argline is not None and self.not_argline.search(joined):
                return False
        return True


def cmd_text(cmd: Command) -> str:
    return " ".join((cmd.path, *cmd.argv)).strip()


def join_spans(a: Span, b: Span) -> Span:
    return (min(a[0], b[0]), max(a[1], b[1]))
