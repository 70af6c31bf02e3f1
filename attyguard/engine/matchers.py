"""The matcher registry: a rule's `match: {type: …}` -> a frozen matcher object.

This module owns the structural predicates rules are written in and the
`Analysis` they look at (the parsed line, its normalised text, decoded
payloads). `MATCHERS` maps a `type` to a class whose `from_dict` validates its
fields and raises `MatcherError` (rules.py adds `file:line` and the rule id).
Every type is documented with an example in patterns/README.md.

Types: command, pipeline, redirect, sequence, url, decoded, regex, all, any; writes
(engine/writes.py) and package (engine/packages.py).
"""

from __future__ import annotations

import fnmatch
import functools
import ipaddress
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol
from urllib.parse import urlsplit

from attyguard.engine.decode import Payload
from attyguard.engine.parse import Command, Parsed, Redirect, Span

if TYPE_CHECKING:
    import regex  # imported on first use (_TimedPattern): ~20 ms nobody needs at start-up

__all__ = [
    "MATCHERS",
    "Analysis",
    "CommandSpec",
    "LazyPattern",
    "MatchResult",
    "Matcher",
    "MatcherError",
    "build_matcher",
    "lazy_regexes",
]


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


# -- regexes compiled on first use ----------------------------------------------------------

# Compiling the ~230 regexes of the shipped rules was most of the engine's start-up
# (which every `ssh host CMD` pays), yet the atom prefilter means most rules never run
# on a given line. Under `lazy_regexes()` (the shipped rules' default engine, whose
# every pattern the test suite compiles) a pattern compiles on first use; otherwise
# (the default: `attyguard rules`, tests, inline rules) at load, so a bad regex is a
# RuleError with file:line. A ContextVar, not a parameter, so that every matcher's
# `from_dict` (here, writes.py, packages.py) keeps its signature.
_EAGER: ContextVar[bool] = ContextVar("attyguard_eager_regexes", default=True)


@contextmanager
def lazy_regexes() -> Iterator[None]:
    """Matchers built inside this block compile their regexes on first use, unchecked."""
    token = _EAGER.set(False)
    try:
        yield
    finally:
        _EAGER.reset(token)


class LazyPattern:
    """A `re` pattern compiled on first use (see lazy_regexes); only the search API used.

    `search` is an attribute, not a method: once compiled it is the compiled
    pattern's own bound `search`, so matching costs no more than before (the
    matchers search on every candidate rule of every line). Compiled at most a
    few times under a race (harmless: same result). A pattern that fails to
    compile here (only if the shipped rules were edited unchecked) raises
    re.error inside the matcher; the engine answers warn for that line.
    """

    __slots__ = ("_compiled", "flags", "pattern", "search")

    def __init__(self, pattern: str, flags: int = 0) -> None:
        self.pattern = pattern
        self.flags = flags
        self._compiled: re.Pattern[str] | None = None
        self.search: Callable[[str], re.Match[str] | None] = self._search_first
        if _EAGER.get():
            self.compiled()

    def compiled(self) -> re.Pattern[str]:
        compiled = self._compiled
        if compiled is None:
            compiled = self._compiled = re.compile(self.pattern, self.flags)
            self.search = compiled.search
        return compiled

    def _search_first(self, string: str) -> re.Match[str] | None:
        return self.compiled().search(string)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LazyPattern):
            return NotImplemented
        return (self.pattern, self.flags) == (other.pattern, other.flags)

    def __hash__(self) -> int:
        return hash((self.pattern, self.flags))

    def __repr__(self) -> str:
        return f"LazyPattern({self.pattern!r}, {self.flags})"


# -- field helpers --------------------------------------------------------------------------


def _get_list(d: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = d.get(key)
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise MatcherError(f"{key!r} must be a string or a list of strings")
    return tuple(value)


def _regexes(d: Mapping[str, Any], key: str) -> tuple[LazyPattern, ...]:
    out = []
    for pattern in _get_list(d, key):
        try:
            out.append(LazyPattern(pattern))
        except re.error as exc:
            raise MatcherError(f"{key!r}: bad regex {pattern!r}: {exc}") from None
    return tuple(out)


def _regex(d: Mapping[str, Any], key: str, flags: int = 0) -> LazyPattern | None:
    value = d.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise MatcherError(f"{key!r} must be a regex string")
    try:
        return LazyPattern(value, flags)
    except re.error as exc:
        raise MatcherError(f"{key!r}: bad regex {value!r}: {exc}") from None


def _bool(d: Mapping[str, Any], key: str, default: bool | None = None) -> bool | None:
    value = d.get(key, default)
    if value is not None and not isinstance(value, bool):
        raise MatcherError(f"{key!r} must be true or false")
    return value


def _check_keys(d: Mapping[str, Any], allowed: Iterable[str], what: str) -> None:
    unknown = set(d) - set(allowed) - {"type"}
    if unknown:
        raise MatcherError(f"{what}: unknown field(s): {', '.join(sorted(unknown))}")


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


def _has_flag(argv: tuple[str, ...], flag: str) -> bool:
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
    def from_dict(cls, d: Any, sets: Mapping[str, frozenset[str]], what: str) -> CommandSpec:
        if not isinstance(d, dict):
            raise MatcherError(f"{what} must be a mapping of command predicates")
        _check_keys(d, _SPEC_KEYS, what)
        min_args = d.get("min_args", 0)
        if not isinstance(min_args, int):
            raise MatcherError(f"{what}: 'min_args' must be an integer")
        return cls(
            names=NameSet.build(_get_list(d, "names"), sets),
            not_names=NameSet.build(_get_list(d, "not_names"), sets),
            args_any=_regexes(d, "args_any"),
            args_all=_regexes(d, "args_all"),
            args_none=_regexes(d, "args_none"),
            flags_any=_get_list(d, "flags_any"),
            flags_all=_get_list(d, "flags_all"),
            flags_none=_get_list(d, "flags_none"),
            argline=_regex(d, "argline"),
            not_argline=_regex(d, "not_argline"),
            via=frozenset(_get_list(d, "via")),
            min_args=min_args,
            assignments_any=_regexes(d, "assignments_any"),
        )

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
        if self.flags_any and not any(_has_flag(argv, f) for f in self.flags_any):
            return False
        if self.flags_all and not all(_has_flag(argv, f) for f in self.flags_all):
            return False
        if self.flags_none and any(_has_flag(argv, f) for f in self.flags_none):
            return False
        if self.argline is not None or self.not_argline is not None:
            joined = " ".join(argv)
            if self.argline is not None and not self.argline.search(joined):
                return False
            if self.not_argline is not None and self.not_argline.search(joined):
                return False
        return True


def _cmd_text(cmd: Command) -> str:
    return " ".join((cmd.path, *cmd.argv)).strip()


def _join(a: Span, b: Span) -> Span:
    return (min(a[0], b[0]), max(a[1], b[1]))


# -- matcher types -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CommandMatcher:
    """A simple command with a name in `names` whose arguments satisfy the predicates."""

    type_name: ClassVar[str] = "command"
    spec: CommandSpec

    @classmethod
    def from_dict(cls, d: dict[str, Any], sets: Mapping[str, frozenset[str]]) -> CommandMatcher:
        return cls(CommandSpec.from_dict(d, sets, "command matcher"))

    def match(self, a: Analysis) -> MatchResult | None:
        for cmd in a.parsed.commands:
            if self.spec.test(cmd):
                return MatchResult(cmd.span, _cmd_text(cmd))
        return None


@dataclass(frozen=True, slots=True)
class PipelineMatcher:
    """Data flows from a `source` command into a later `sink` (optionally `through` one).

    Pipelines include `|`, `<(…)`/`$(…)` feeding a command and here-docs.
    """

    type_name: ClassVar[str] = "pipeline"
    source: CommandSpec
    sink: CommandSpec
    through: CommandSpec | None

    @classmethod
    def from_dict(cls, d: dict[str, Any], sets: Mapping[str, frozenset[str]]) -> PipelineMatcher:
        _check_keys(d, ("source", "sink", "through"), "pipeline matcher")
        if "source" not in d or "sink" not in d:
            raise MatcherError("pipeline matcher needs 'source' and 'sink'")
        through = d.get("through")
        return cls(
            CommandSpec.from_dict(d["source"], sets, "pipeline source"),
            CommandSpec.from_dict(d["sink"], sets, "pipeline sink"),
            CommandSpec.from_dict(through, sets, "pipeline through") if through else None,
        )

    def match(self, a: Analysis) -> MatchResult | None:
        for flow in a.parsed.pipelines:
            if len(flow) < 2:
                continue
            for i, src in enumerate(flow):
                if not self.source.test(src):
                    continue
                passed = self.through is None
                for sink in flow[i + 1 :]:
                    if sink is src:
                        continue
                    if not passed and self.through is not None and self.through.test(sink):
                        passed = True
                        continue
                    if passed and self.sink.test(sink):
                        return MatchResult(_join(src.span, sink.span),
                                           f"{_cmd_text(src)} | … {_cmd_text(sink)}")
        return None


@dataclass(frozen=True, slots=True)
class RedirectMatcher:
    """A redirection whose operator is in `ops` and whose target matches a glob/regex."""

    type_name: ClassVar[str] = "redirect"
    ops: frozenset[str]
    target_glob: tuple[str, ...]
    target_regex: LazyPattern | None
    not_target_glob: tuple[str, ...]
    command: CommandSpec | None

    @classmethod
    def from_dict(cls, d: dict[str, Any], sets: Mapping[str, frozenset[str]]) -> RedirectMatcher:
        _check_keys(d, ("ops", "target_glob", "target_regex", "not_target_glob", "command"),
                    "redirect matcher")
        ops = frozenset(_get_list(d, "ops")) or frozenset({">", ">>", ">|", "&>", "&>>"})
        globs = _get_list(d, "target_glob")
        regex = _regex(d, "target_regex")
        if not globs and regex is None:
            raise MatcherError("redirect matcher needs 'target_glob' or 'target_regex'")
        cmd = d.get("command")
        return cls(ops, globs, regex, _get_list(d, "not_target_glob"),
                   CommandSpec.from_dict(cmd, sets, "redirect command") if cmd else None)

    def _target_ok(self, red: Redirect) -> bool:
        t = red.target
        if any(fnmatch.fnmatchcase(t, g) for g in self.not_target_glob):
            return False
        if any(fnmatch.fnmatchcase(t, g) for g in self.target_glob):
            return True
        return self.target_regex is not None and self.target_regex.search(t) is not None

    def match(self, a: Analysis) -> MatchResult | None:
        if self.command is not None:
            for cmd in a.parsed.commands:
                if not self.command.test(cmd):
                    continue
                for red in cmd.redirects:
                    if red.op in self.ops and self._target_ok(red):
                        return MatchResult(cmd.span, f"{_cmd_text(cmd)} {red.op} {red.target}")
            return None
        for red in a.parsed.redirects:
            if red.op in self.ops and self._target_ok(red):
                return MatchResult(red.span, f"{red.op} {red.target}")
        return None


_URL_RE = re.compile(r"\b(?:https?|ftps?|tftp|sftp|scp|file|gopher|dict|ws|wss)://[^\s'\"<>|;]+",
                     re.IGNORECASE)


def _captured(cmd: Command, after_flags: tuple[str, ...], url_basename: bool,
              redirect: bool) -> set[str]:
    out: set[str] = set()
    argv = cmd.argv
    # Once per command, not per argument: it scans argv (was quadratic in the arguments).
    url_names = url_basename and _saves_under_url_name(cmd)
    for i, v in enumerate(argv):
        for flag in after_flags:
            if v == flag and i + 1 < len(argv):
                out.add(argv[i + 1])
            elif flag.startswith("--") and v.startswith(flag + "="):
                out.add(v[len(flag) + 1 :])
            elif len(flag) == 2 and v.startswith(flag) and len(v) > 2 and not v.startswith("--"):
                out.add(v[2:])
        if url_names:
            m = _URL_RE.search(v)
            if m:
                path = urlsplit(m.group(0)).path
                base = path.rstrip("/").rsplit("/", 1)[-1]
                if base:
                    out.add(base)
    if redirect:
        for red in cmd.redirects:
            if red.op in (">", ">>", ">|", "&>"):
                out.add(red.target)
    return {f for f in out if f and f not in ("-", "/dev/stdout", "/dev/null")}


# curl writes to stdout unless told to keep the remote name; wget keeps it unless -O.
_REMOTE_NAME_FLAGS = ("-O", "--remote-name", "--remote-name-all")


def _saves_under_url_name(cmd: Command) -> bool:
    argv = cmd.argv
    if cmd.name in ("curl", "curlie"):
        return any(_has_flag(argv, f) for f in _REMOTE_NAME_FLAGS)
    # wget and the rest keep the remote name unless given an output document
    # (-O FILE, -O-, -qO-, -qOfile, --output-document[=FILE]).
    for v in argv:
        if v == "--output-document" or v.startswith("--output-document="):
            return False
        if re.fullmatch(r"-[a-zA-Z]*O.*", v):
            return False
    return True


def _same_file(a: str, b: str) -> bool:
    """Same file as far as one line can tell: equal but for a leading ./, or a bare
    captured name (`wget -P /tmp URL/x.sh` saves x.sh somewhere) that `a` ends with."""
    a, b = a.removeprefix("./"), b.removeprefix("./")
    return a == b or ("/" not in b and a.endswith("/" + b))


@dataclass(frozen=True, slots=True)
class SequenceMatcher:
    """`first` writes a file (captured from its arguments), a later command runs that file.

    "Runs" means the later command *is* the file (`./x`, `/tmp/x`; use: name) or
    matches `then` with the file among its arguments (`sh x`; use: arg); "any" is both.
    """

    type_name: ClassVar[str] = "sequence"
    first: CommandSpec
    then: CommandSpec | None
    after_flags: tuple[str, ...]
    url_basename: bool
    redirect: bool
    use: str

    @classmethod
    def from_dict(cls, d: dict[str, Any], sets: Mapping[str, frozenset[str]]) -> SequenceMatcher:
        _check_keys(d, ("first", "then", "capture", "use"), "sequence matcher")
        if "first" not in d:
            raise MatcherError("sequence matcher needs 'first'")
        cap = d.get("capture") or {}
        if not isinstance(cap, dict):
            raise MatcherError("'capture' must be a mapping")
        _check_keys(cap, ("after_flags", "url_basename", "redirect"), "capture")
        use = d.get("use", "any")
        if use not in ("name", "arg", "any"):
            raise MatcherError("'use' must be name, arg or any")
        then = d.get("then")
        if use == "arg" and not then:
            raise MatcherError("use: arg needs 'then' (the command that runs the file)")
        return cls(
            CommandSpec.from_dict(d["first"], sets, "sequence first"),
            CommandSpec.from_dict(then, sets, "sequence then") if then else None,
            _get_list(cap, "after_flags"),
            bool(_bool(cap, "url_basename", False)),
            bool(_bool(cap, "redirect", True)),
            str(use),
        )

    def match(self, a: Analysis) -> MatchResult | None:
        cmds = a.parsed.commands
        for i, first in enumerate(cmds):
            if not self.first.test(first):
                continue
            files = _captured(first, self.after_flags, self.url_basename, self.redirect)
            if not files:
                continue
            for later in cmds[i + 1 :]:
                # Running a file by name needs a slash (`./x`, `/tmp/x`): a bare `x` is
                # looked up in PATH, not in the directory the download went to.
                by_name = self.use in ("name", "any") and "/" in later.path and any(
                    _same_file(later.path, f) for f in files
                )
                by_arg = (
                    self.use in ("arg", "any")
                    and self.then is not None
                    and self.then.test(later)
                    and any(_same_file(v, f) for v in later.argv for f in files)
                )
                if by_name or by_arg:
                    return MatchResult(_join(first.span, later.span),
                                       f"{_cmd_text(first)} … {_cmd_text(later)}")
        return None


_SCHEMELESS_RE = re.compile(r"^(?:[\w-]+\.)+[a-z][\w-]{1,}(?::\d+)?(?:/\S*)?$", re.IGNORECASE)


def _urls(cmd: Command) -> Iterable[str]:
    for v in cmd.argv:
        found = False
        for m in _URL_RE.finditer(v):
            found = True
            yield m.group(0)
        if not found and "." in v and not v.startswith("-") and _SCHEMELESS_RE.match(v):
            yield "//" + v
        elif not found and v.startswith(("-", "--")) and "=" in v:
            tail = v.split("=", 1)[1]
            for m in _URL_RE.finditer(tail):
                yield m.group(0)


@dataclass(frozen=True, slots=True)
class UrlMatcher:
    """A URL (or bare host/path) in the arguments of a command, with host predicates."""

    type_name: ClassVar[str] = "url"
    command: CommandSpec | None
    schemes: frozenset[str]
    host_regex: LazyPattern | None
    host_is_ip: bool | None
    punycode: bool | None
    non_ascii: bool | None
    tlds: frozenset[str]
    path_regex: LazyPattern | None
    ports: frozenset[int]

    @classmethod
    def from_dict(cls, d: dict[str, Any], sets: Mapping[str, frozenset[str]]) -> UrlMatcher:
        keys = ("command", "schemes", "host_regex", "host_is_ip", "punycode", "non_ascii",
                "tlds", "path_regex", "ports")
        _check_keys(d, keys, "url matcher")
        ports = d.get("ports", [])
        if not isinstance(ports, list) or not all(isinstance(p, int) for p in ports):
            raise MatcherError("'ports' must be a list of integers")
        cmd = d.get("command")
        return cls(
            CommandSpec.from_dict(cmd, sets, "url command") if cmd else None,
            frozenset(s.lower() for s in _get_list(d, "schemes")),
            _regex(d, "host_regex", re.IGNORECASE),
            _bool(d, "host_is_ip"),
            _bool(d, "punycode"),
            _bool(d, "non_ascii"),
            frozenset(t.lower().lstrip(".") for t in _get_list(d, "tlds")),
            _regex(d, "path_regex"),
            frozenset(ports),
        )

    def _url_ok(self, url: str) -> bool:
        try:
            parts = urlsplit(url)
            host = (parts.hostname or "").rstrip(".")
            port = parts.port
        except ValueError:
            return False
        if not host:
            return False
        if self.schemes and parts.scheme.lower() not in self.schemes:
            return False
        if self.host_regex is not None and not self.host_regex.search(host):
            return False
        if self.host_is_ip is not None:
            try:
                ipaddress.ip_address(host)
                is_ip = True
            except ValueError:
                is_ip = bool(re.fullmatch(r"\d+", host) or re.fullmatch(r"0x[0-9a-f]+", host))
            if is_ip != self.host_is_ip:
                return False
        if self.punycode is not None and any(
            label.startswith("xn--") for label in host.split(".")
        ) != self.punycode:
            return False
        if self.non_ascii is not None and (not host.isascii()) != self.non_ascii:
            return False
        if self.tlds and host.rsplit(".", 1)[-1] not in self.tlds:
            return False
        if self.path_regex is not None and not self.path_regex.search(parts.path or "/"):
            return False
        return not (self.ports and port not in self.ports)

    def match(self, a: Analysis) -> MatchResult | None:
        for cmd in a.parsed.commands:
            if self.command is not None and not self.command.test(cmd):
                continue
            for url in _urls(cmd):
                if self._url_ok(url):
                    return MatchResult(cmd.span, url.removeprefix("//"))
        return None


@dataclass(frozen=True, slots=True)
class DecodedMatcher:
    """An encoded payload was decoded (base64, hex, printf escapes, rev…) and fed somewhere.

    The decoded text is classified again by the engine on its own; this matcher
    flags the act of decoding into an interpreter.
    """

    type_name: ClassVar[str] = "decoded"
    feeds: NameSet
    decoders: frozenset[str]
    payload_regex: LazyPattern | None
    min_length: int

    @classmethod
    def from_dict(cls, d: dict[str, Any], sets: Mapping[str, frozenset[str]]) -> DecodedMatcher:
        _check_keys(d, ("feeds", "decoders", "payload_regex", "min_length"), "decoded matcher")
        min_length = d.get("min_length", 1)
        if not isinstance(min_length, int):
            raise MatcherError("'min_length' must be an integer")
        return cls(NameSet.build(_get_list(d, "feeds"), sets),
                   frozenset(_get_list(d, "decoders")),
                   _regex(d, "payload_regex"), min_length)

    def match(self, a: Analysis) -> MatchResult | None:
        for p in a.payloads:
            if self.feeds and p.fed_to not in self.feeds:
                continue
            if self.decoders and not self.decoders.intersection(p.decoders):
                continue
            if len(p.text) < self.min_length:
                continue
            if self.payload_regex is not None and not self.payload_regex.search(p.text):
                continue
            chain = "+".join(p.decoders) or "literal"
            return MatchResult(p.span, f"[{chain} → {p.fed_to or '?'}] {p.text[:120]}")
        return None


REGEX_TIMEOUT_S = 0.05


class _TimedPattern:
    """A rule's raw-text regex, searched with a time limit.

    Rule authors write backtracking regexes over whole lines; one of them over a
    long hostile line can take minutes (seen: 60 KB of one letter). The `regex`
    module stops a search at a timeout (TimeoutError); the engine reports the
    line as not fully analysed instead of hanging the shell. Compiled (and the
    `regex` module imported) on first use, as LazyPattern, unless built eagerly.
    """

    __slots__ = ("_compiled", "ignore_case", "pattern", "search")

    def __init__(self, pattern: str, ignore_case: bool) -> None:
        self.pattern = pattern
        self.ignore_case = ignore_case
        self._compiled: regex.Pattern[str] | None = None
        # As LazyPattern.search: the compiled search itself once compiled.
        self.search: Callable[[str], regex.Match[str] | None] = self._search_first
        if _EAGER.get():
            self.compiled()

    def compiled(self) -> regex.Pattern[str]:
        compiled = self._compiled
        if compiled is None:
            import regex

            flags = regex.MULTILINE | (regex.IGNORECASE if self.ignore_case else 0)
            try:
                compiled = self._compiled = regex.compile(self.pattern, flags)
            except regex.error as exc:
                raise MatcherError(f"'pattern': bad regex {self.pattern!r}: {exc}") from None
            self.search = functools.partial(compiled.search, timeout=REGEX_TIMEOUT_S)
        return compiled

    def _search_first(self, text: str) -> regex.Match[str] | None:
        return self.compiled().search(text, timeout=REGEX_TIMEOUT_S)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, _TimedPattern):
            return NotImplemented
        return (self.pattern, self.ignore_case) == (other.pattern, other.ignore_case)

    def __hash__(self) -> int:
        return hash((self.pattern, self.ignore_case))

    def __repr__(self) -> str:
        return f"_TimedPattern({self.pattern!r}, ignore_case={self.ignore_case})"


@dataclass(frozen=True, slots=True)
class RegexMatcher:
    """Raw-text fallback for what structure cannot express (use sparingly, with atoms)."""

    type_name: ClassVar[str] = "regex"
    pattern: _TimedPattern
    on: str  # raw | typed (raw, layer 0 only) | normalized | scripts | heredocs

    @classmethod
    def from_dict(cls, d: dict[str, Any], sets: Mapping[str, frozenset[str]]) -> RegexMatcher:
        _check_keys(d, ("pattern", "on", "ignore_case"), "regex matcher")
        on = d.get("on", "normalized")
        if on not in ("raw", "typed", "normalized", "scripts", "heredocs"):
            raise MatcherError("'on' must be raw, typed, normalized, scripts or heredocs")
        value = d.get("pattern")
        if not isinstance(value, str):
            raise MatcherError("regex matcher needs 'pattern' (a regex string)")
        # A bad pattern raises MatcherError when compiled (here, unless lazy_regexes).
        return cls(_TimedPattern(value, bool(_bool(d, "ignore_case", True))), str(on))

    def match(self, a: Analysis) -> MatchResult | None:
        if self.on == "scripts":
            bodies = [(text, span) for _i, text, span in a.parsed.scripts]
            bodies += [(p.text, p.span) for p in a.payloads]
            for text, span in bodies:
                m = self.pattern.search(text)
                if m:
                    return MatchResult(span, m.group(0))
            return None
        if self.on == "heredocs":
            for red in a.parsed.redirects:
                if red.op in ("<<", "<<-", "<<<"):
                    m = self.pattern.search(red.target)
                    if m:
                        return MatchResult(red.span, m.group(0))
            return None
        if self.on == "typed" and a.layer != 0:
            # Decoded output (echo -e '\e[1m…') is not what the user typed or sees.
            return None
        if self.on in ("raw", "typed"):
            m = self.pattern.search(a.line)
            return MatchResult(m.span(), m.group(0)) if m else None
        m = self.pattern.search(a.normalized)
        return MatchResult(None, m.group(0)) if m else None


@dataclass(frozen=True, slots=True)
class AllMatcher:
    """Every sub-matcher matches (anywhere in the line); the span is the first one's."""

    type_name: ClassVar[str] = "all"
    parts: tuple[Matcher, ...]

    @classmethod
    def from_dict(cls, d: dict[str, Any], sets: Mapping[str, frozenset[str]]) -> AllMatcher:
        return cls(_sub_matchers(d, sets, "all"))

    def match(self, a: Analysis) -> MatchResult | None:
        first: MatchResult | None = None
        for part in self.parts:
            got = part.match(a)
            if got is None:
                return None
            first = first or got
        return first


@dataclass(frozen=True, slots=True)
class AnyMatcher:
    """The first sub-matcher that matches."""

    type_name: ClassVar[str] = "any"
    parts: tuple[Matcher, ...]

    @classmethod
    def from_dict(cls, d: dict[str, Any], sets: Mapping[str, frozenset[str]]) -> AnyMatcher:
        return cls(_sub_matchers(d, sets, "any"))

    def match(self, a: Analysis) -> MatchResult | None:
        for part in self.parts:
            got = part.match(a)
            if got is not None:
                return got
        return None


def _sub_matchers(d: dict[str, Any], sets: Mapping[str, frozenset[str]],
                  kind: str) -> tuple[Matcher, ...]:
    _check_keys(d, ("of",), f"{kind} matcher")
    parts = d.get("of")
    if not isinstance(parts, list) or not parts:
        raise MatcherError(f"{kind} matcher needs 'of': a non-empty list of matchers")
    return tuple(build_matcher(p, sets) for p in parts)


MATCHERS: dict[str, Callable[[dict[str, Any], Mapping[str, frozenset[str]]], Matcher]] = {
    cls.type_name: cls.from_dict
    for cls in (CommandMatcher, PipelineMatcher, RedirectMatcher, SequenceMatcher, UrlMatcher,
                DecodedMatcher, RegexMatcher, AllMatcher, AnyMatcher)
}


def _extra_matchers() -> dict[str, Callable[[dict[str, Any], Mapping[str, frozenset[str]]],
                                            Matcher]]:
    # Matchers kept in their own modules (they import this one, hence the late import).
    from attyguard.engine.packages import PackageMatcher
    from attyguard.engine.writes import WritesMatcher

    return {cls.type_name: cls.from_dict for cls in (WritesMatcher, PackageMatcher)}


MATCHERS.update(_extra_matchers())


def build_matcher(d: Any, sets: Mapping[str, frozenset[str]]) -> Matcher:
    """Registry dispatch on `type`; every field error becomes a MatcherError."""
    if not isinstance(d, dict):
        raise MatcherError("a matcher is a mapping with a 'type'")
    kind = d.get("type")
    if kind not in MATCHERS:
        raise MatcherError(f"unknown matcher type {kind!r} (known: {', '.join(sorted(MATCHERS))})")
    try:
        return MATCHERS[kind](d, sets)
    except MatcherError:
        raise
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise MatcherError(f"{kind} matcher: {exc}") from None
