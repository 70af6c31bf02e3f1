"""Structural matcher types: command, pipeline, redirect, sequence, url.

This module owns the matchers that look at the parsed line (simple commands,
data flows, redirections, files written then run, URLs in arguments); each
type's fields are documented with an example in patterns/README.md.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import urlsplit

from attyguard.engine.matchers.base import (
    Analysis,
    Build,
    CommandSpec,
    LazyPattern,
    MatcherError,
    MatchResult,
    bool_field,
    check_keys,
    cmd_text,
    get_list,
    has_flag,
    join_spans,
    regex_field,
)
from attyguard.engine.parse import Command, Redirect

__all__ = ["CommandMatcher", "PipelineMatcher", "RedirectMatcher", "SequenceMatcher",
           "UrlMatcher"]

@dataclass(frozen=True, slots=True)
class CommandMatcher:
    """A simple command with a name in `names` whose arguments satisfy the predicates."""

    type_name: ClassVar[str] = "command"
    spec: CommandSpec

    @classmethod
    def from_dict(cls, d: dict[str, Any], b: Build) -> CommandMatcher:
        return cls(CommandSpec.from_dict(d, b, "command matcher"))

    def match(self, a: Analysis) -> MatchResult | None:
        for cmd in a.parsed.commands:
            if self.spec.test(cmd):
                return MatchResult(cmd.span, cmd_text(cmd))
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
    def from_dict(cls, d: dict[str, Any], b: Build) -> PipelineMatcher:
        check_keys(d, ("source", "sink", "through"), "pipeline matcher")
        if "source" not in d or "sink" not in d:
            raise MatcherError("pipeline matcher needs 'source' and 'sink'")
        through = d.get("through")
        return cls(
            CommandSpec.from_dict(d["source"], b, "pipeline source"),
            CommandSpec.from_dict(d["sink"], b, "pipeline sink"),
            CommandSpec.from_dict(through, b, "pipeline through") if through else None,
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
                        return MatchResult(join_spans(src.span, sink.span),
                                           f"{cmd_text(src)} | … {cmd_text(sink)}")
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
    def from_dict(cls, d: dict[str, Any], b: Build) -> RedirectMatcher:
        check_keys(d, ("ops", "target_glob", "target_regex", "not_target_glob", "command"),
                    "redirect matcher")
        ops = frozenset(get_list(d, "ops")) or frozenset({">", ">>", ">|", "&>", "&>>"})
        globs = get_list(d, "target_glob")
        regex = regex_field(d, "target_regex", b)
        if not globs and regex is None:
            raise MatcherError("redirect matcher needs 'target_glob' or 'target_regex'")
        cmd = d.get("command")
        return cls(ops, globs, regex, get_list(d, "not_target_glob"),
                   CommandSpec.from_dict(cmd, b, "redirect command") if cmd else None)

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
                        return MatchResult(cmd.span, f"{cmd_text(cmd)} {red.op} {red.target}")
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
    # Asked once per command, not once per argument: a downloader given thousands of
    # URLs made this quadratic.
    url_basename = url_basename and _saves_under_url_name(cmd)
    for i, v in enumerate(argv):
        for flag in after_flags:
            if v == flag and i + 1 < len(argv):
                out.add(argv[i + 1])
            elif flag.startswith("--") and v.startswith(flag + "="):
                out.add(v[len(flag) + 1 :])
            elif len(flag) == 2 and v.startswith(flag) and len(v) > 2 and not v.startswith("--"):
                out.add(v[2:])
        if url_basename:
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
        return any(has_flag(argv, f) for f in _REMOTE_NAME_FLAGS)
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
    def from_dict(cls, d: dict[str, Any], b: Build) -> SequenceMatcher:
        check_keys(d, ("first", "then", "capture", "use"), "sequence matcher")
        if "first" not in d:
            raise MatcherError("sequence matcher needs 'first'")
        cap = d.get("capture") or {}
        if not isinstance(cap, dict):
            raise MatcherError("'capture' must be a mapping")
        check_keys(cap, ("after_flags", "url_basename", "redirect"), "capture")
        use = d.get("use", "any")
        if use not in ("name", "arg", "any"):
            raise MatcherError("'use' must be name, arg or any")
        then = d.get("then")
        if use == "arg" and not then:
            raise MatcherError("use: arg needs 'then' (the command that runs the file)")
        return cls(
            CommandSpec.from_dict(d["first"], b, "sequence first"),
            CommandSpec.from_dict(then, b, "sequence then") if then else None,
            get_list(cap, "after_flags"),
            bool(bool_field(cap, "url_basename", False)),
            bool(bool_field(cap, "redirect", True)),
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
                    return MatchResult(join_spans(first.span, later.span),
                                       f"{cmd_text(first)} … {cmd_text(later)}")
        return None


# A bare host (`example.org/x`) or a bare IPv4 address (`curl 192.0.2.4/a`) as an argument.
_SCHEMELESS_RE = re.compile(
    r"^(?:(?:[\w-]+\.)+[a-z][\w-]{1,}|\d{1,3}(?:\.\d{1,3}){3})(?::\d+)?(?:/\S*)?$",
    re.IGNORECASE)


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
    def from_dict(cls, d: dict[str, Any], b: Build) -> UrlMatcher:
        keys = ("command", "schemes", "host_regex", "host_is_ip", "punycode", "non_ascii",
                "tlds", "path_regex", "ports")
        check_keys(d, keys, "url matcher")
        ports = d.get("ports", [])
        if not isinstance(ports, list) or not all(isinstance(p, int) for p in ports):
            raise MatcherError("'ports' must be a list of integers")
        cmd = d.get("command")
        return cls(
            CommandSpec.from_dict(cmd, b, "url command") if cmd else None,
            frozenset(s.lower() for s in get_list(d, "schemes")),
            regex_field(d, "host_regex", b, re.IGNORECASE),
            bool_field(d, "host_is_ip"),
            bool_field(d, "punycode"),
            bool_field(d, "non_ascii"),
            frozenset(t.lower().lstrip(".") for t in get_list(d, "tlds")),
            regex_field(d, "path_regex", b),
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
