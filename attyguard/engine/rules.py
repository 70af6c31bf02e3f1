"""The rule model and loading patterns/ with located errors.

This module owns what a rule *is* (`Rule`, `RuleSet`), reading the family files
in patterns/ (YAML; one file per family, schema in patterns/README.md), named
command sets (`@shells`, also usable as atoms). Running the rules' own
examples through the engine lives in examples.py (above both this module and
classify.py, so neither imports the other for it).

Every problem in a rule file raises `RuleError` carrying `file:line` and the
rule id, in the style of pySigma's located configuration errors.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from attyguard.engine.matchers import Matcher, MatcherError, build_matcher
from attyguard.engine.verdict import Action, Severity

__all__ = [
    "Rule",
    "RuleError",
    "RuleSet",
    "load_rules",
    "load_rules_text",
]


class RuleError(Exception):
    """A rule file is wrong; the message starts with `file:line` and names the rule."""

    def __init__(self, source: str, message: str, rule_id: str | None = None) -> None:
        self.source = source
        self.rule_id = rule_id
        self.detail = message
        where = f"{source}: rule {rule_id!r}: " if rule_id else f"{source}: "
        super().__init__(where + message)


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    title: str
    family: str
    severity: Severity
    action: Action
    probability: float
    explanation: str
    remediation: str
    atoms: tuple[str, ...]
    matcher: Matcher
    examples_match: tuple[str, ...]
    examples_nomatch: tuple[str, ...]
    source: str  # file:line of the rule

    def __hash__(self) -> int:
        return hash(self.id)


@dataclass(frozen=True, slots=True)
class RuleSet:
    rules: tuple[Rule, ...]
    files: tuple[str, ...] = ()

    def by_id(self, rule_id: str) -> Rule | None:
        for rule in self.rules:
            if rule.id == rule_id:
                return rule
        return None


# -- YAML with line numbers ------------------------------------------------------------


class _LineDict(dict[str, Any]):
    line: int = 0


class _LineList(list[Any]):
    lines: list[int]


# libyaml's parser when PyYAML has it: the pure-Python one takes ~0.5 s for the
# shipped rules, which every new shell would pay at its first command.
_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


_STR_TAG = "tag:yaml.org,2002:str"


class _Loader(_BaseLoader):  # type: ignore[valid-type,misc]
    """Safe loader that remembers the line of every mapping and list item.

    Only `true`/`false` are booleans: YAML 1.1 also reads on/off/yes/no as
    booleans, which would turn the `on:` key of a regex matcher into True.

    Even with libyaml, tagging and building the ~7,000 nodes of the shipped
    rules runs in Python and was most of their load time (every new shell pays
    it): the two overrides below are PyYAML's own logic minus what these files
    never use (path resolvers; identity bookkeeping for plain strings).
    """

    def resolve(self, kind: type[yaml.Node], value: Any, implicit: Any) -> str:
        # BaseResolver.resolve without path resolvers (none are registered).
        if kind is yaml.ScalarNode:
            if implicit[0]:
                for tag, regexp in self.yaml_implicit_resolvers.get(value[:1], ()):
                    if regexp.match(value):
                        return str(tag)
            return str(self.DEFAULT_SCALAR_TAG)
        if kind is yaml.SequenceNode:
            return str(self.DEFAULT_SEQUENCE_TAG)
        return str(self.DEFAULT_MAPPING_TAG)

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        # A string scalar is its value (what construct_yaml_str returns), without the
        # per-node cache and recursion bookkeeping only collections need.
        if node.tag == _STR_TAG and type(node) is yaml.ScalarNode:
            return node.value
        return super().construct_object(node, deep)


assert not _Loader.yaml_path_resolvers  # resolve() above relies on it


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in _BaseLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> _LineDict:
    loader.flatten_mapping(node)
    out = _LineDict()
    out.line = node.start_mark.line + 1
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str):
            raise yaml.MarkedYAMLError(
                None, None, f"keys must be strings, not {key!r}", key_node.start_mark
            )
        if key in out:
            raise yaml.MarkedYAMLError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        out[key] = loader.construct_object(value_node, deep=True)
    return out


def _construct_sequence(loader: _Loader, node: yaml.SequenceNode) -> _LineList:
    out = _LineList(loader.construct_object(child, deep=True) for child in node.value)
    out.lines = [child.start_mark.line + 1 for child in node.value]
    return out


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


def _line_of(obj: object, default: int) -> int:
    return getattr(obj, "line", default) or default


# -- loading ----------------------------------------------------------------------------

_RULE_KEYS = {
    "id", "title", "severity", "action", "p", "probability", "explanation",
    "remediation", "atoms", "match", "examples",
}
_FILE_KEYS = {"family", "description", "sets", "rules"}
SETS_FILE = "_sets.yaml"


def _parse_yaml(text: str, name: str) -> Any:
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 0
        raise RuleError(f"{name}:{line}", f"invalid YAML: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise RuleError(f"{name}:0", f"invalid YAML: {exc}") from None


def _parse_sets(
    raw: Any, name: str, base: Mapping[str, frozenset[str]]
) -> dict[str, frozenset[str]]:
    sets = dict(base)
    if raw is None:
        return sets
    if not isinstance(raw, dict):
        raise RuleError(f"{name}:{_line_of(raw, 1)}", "'sets' must be a mapping of name -> list")
    for key, value in raw.items():
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise RuleError(f"{name}:{_line_of(raw, 1)}", f"set {key!r} must be a list of strings")
        members: set[str] = set()
        for v in value:
            if v.startswith("@"):
                if v[1:] not in sets:
                    raise RuleError(f"{name}:{_line_of(raw, 1)}", f"set {key!r}: unknown set {v}")
                members |= sets[v[1:]]
            else:
                members.add(v)
        sets[key] = frozenset(members)
    return sets


def _str_field(d: Mapping[str, Any], key: str, where: str, rid: str | None,
               required: bool = True) -> str:
    value = d.get(key)
    if value is None:
        if required:
            raise RuleError(where, f"missing required field {key!r}", rid)
        return ""
    if not isinstance(value, str):
        raise RuleError(where, f"{key!r} must be a string", rid)
    return value.strip()


def _str_list(d: Mapping[str, Any], key: str, where: str, rid: str) -> tuple[str, ...]:
    value = d.get(key, [])
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RuleError(where, f"{key!r} must be a list of strings", rid)
    return tuple(value)


def _atoms(raw: tuple[str, ...], sets: Mapping[str, frozenset[str]], where: str,
           rid: str) -> tuple[str, ...]:
    """Atoms with `@set` (or `^@set`) expanded to the set's members, lower-cased.

    A member that is a glob (`python3.*`) contributes its literal prefix; one
    with no usable prefix is an error (it could never gate the rule).
    """
    out: list[str] = []
    for atom in raw:
        left = "^" if atom.startswith("^@") else ""
        ref = atom.removeprefix("^")
        if not ref.startswith("@"):
            out.append(atom.lower())
            continue
        if ref[1:] not in sets:
            raise RuleError(where, f"atoms: unknown set {ref!r}", rid)
        for member in sorted(sets[ref[1:]]):
            literal = re.split(r"[*?\[]", member, maxsplit=1)[0]
            if len(literal) < 2:
                raise RuleError(where, f"atoms: set {ref!r} member {member!r} has no literal "
                                "prefix to use as an atom", rid)
            if literal.startswith("^"):
                out.append(literal.lower())
            else:
                out.append(left + literal.lower())
    return tuple(dict.fromkeys(out))


def _build_rule(raw: Any, family: str, name: str, line: int,
                sets: Mapping[str, frozenset[str]], eager: bool) -> Rule:
    where = f"{name}:{_line_of(raw, line)}"
    if not isinstance(raw, dict):
        raise RuleError(where, "each rule must be a mapping")
    rid = raw.get("id")
    if not isinstance(rid, str) or not rid.strip():
        raise RuleError(where, "missing required field 'id' (a non-empty string)")
    rid = rid.strip()
    unknown = set(raw) - _RULE_KEYS
    if unknown:
        raise RuleError(where, f"unknown field(s): {', '.join(sorted(unknown))}", rid)
    title = _str_field(raw, "title", where, rid)
    try:
        severity = Severity.parse(_str_field(raw, "severity", where, rid))
    except KeyError:
        raise RuleError(where, "severity must be one of LOW, MEDIUM, HIGH, CRITICAL", rid) from None
    action_text = _str_field(raw, "action", where, rid).lower()
    if action_text not in ("warn", "block"):
        raise RuleError(where, "action must be 'warn' or 'block'", rid)
    action = Action(action_text)
    p_raw = raw.get("p", raw.get("probability"))
    if isinstance(p_raw, bool) or not isinstance(p_raw, int | float) or not 0.0 <= p_raw <= 1.0:
        raise RuleError(where, "p (probability) must be a number in [0, 1]", rid)
    explanation = _str_field(raw, "explanation", where, rid)
    remediation = _str_field(raw, "remediation", where, rid)
    atoms = _atoms(_str_list(raw, "atoms", where, rid), sets, where, rid)
    if any(not a.removeprefix("^") for a in atoms):
        raise RuleError(where, "atoms must be non-empty strings", rid)
    match = raw.get("match")
    if not isinstance(match, dict):
        raise RuleError(where, "missing 'match' (a mapping with a 'type')", rid)
    try:
        matcher = build_matcher(match, sets, eager=eager)
    except MatcherError as exc:
        raise RuleError(f"{name}:{_line_of(match, line)}", str(exc), rid) from None
    examples = raw.get("examples")
    if not isinstance(examples, dict):
        raise RuleError(where, "missing 'examples' with 'match' and 'nomatch' lists", rid)
    ex_match = _str_list(examples, "match", where, rid)
    ex_nomatch = _str_list(examples, "nomatch", where, rid)
    if not ex_match or not ex_nomatch:
        raise RuleError(where, "a rule needs at least one 'match' and one 'nomatch' example", rid)
    return Rule(
        id=rid, title=title, family=family, severity=severity, action=action,
        probability=float(p_raw), explanation=explanation, remediation=remediation,
        atoms=atoms, matcher=matcher, examples_match=ex_match, examples_nomatch=ex_nomatch,
        source=where,
    )


def load_rules_text(
    text: str, name: str = "<rules>", base_sets: Mapping[str, frozenset[str]] | None = None,
    *, eager: bool = True,
) -> RuleSet:
    """Load one family file's text (used by load_rules and by tests with inline YAML).

    `eager=False`: regexes compile on first use, unchecked (see matchers.Build).
    """
    doc = _parse_yaml(text, name)
    if doc is None:
        return RuleSet((), (name,))
    if not isinstance(doc, dict):
        raise RuleError(f"{name}:1", "a rule file is a mapping with 'family' and 'rules'")
    unknown = set(doc) - _FILE_KEYS
    if unknown:
        raise RuleError(f"{name}:{doc.line if isinstance(doc, _LineDict) else 1}",
                        f"unknown top-level field(s): {', '.join(sorted(unknown))}")
    family = doc.get("family") or Path(name).stem
    if not isinstance(family, str):
        raise RuleError(f"{name}:1", "'family' must be a string")
    sets = _parse_sets(doc.get("sets"), name, base_sets or {})
    raw_rules = doc.get("rules") or []
    if not isinstance(raw_rules, list):
        raise RuleError(f"{name}:1", "'rules' must be a list")
    lines = getattr(raw_rules, "lines", [1] * len(raw_rules))
    rules = tuple(
        _build_rule(raw, family, name, ln, sets, eager)
        for raw, ln in zip(raw_rules, lines, strict=True)
    )
    return RuleSet(rules, (name,))


def load_rules(path: Path | str | None = None, *, eager: bool = True) -> RuleSet:
    """Load every `*.yaml`/`*.yml` family file under `path` (default: the shipped patterns/).

    `_sets.yaml` (named command sets shared by all families) is read first.
    Raises RuleError (file:line, rule id) on the first problem, including duplicate ids.
    With `eager=False` the rules' regexes compile on first use, unchecked (the
    default engine's start-up; the test suite checks them all).
    """
    if path is None:
        from attyguard.resources import data_path

        path = data_path("patterns")
    root = Path(path)
    if root.is_file():
        files = [root]
        root = root.parent
    else:
        files = sorted(p for p in root.iterdir() if p.suffix in (".yaml", ".yml"))
    base_sets: dict[str, frozenset[str]] = {}
    sets_file = root / SETS_FILE
    if sets_file.is_file():
        doc = _parse_yaml(_read(sets_file), str(sets_file))
        if doc is not None:
            if not isinstance(doc, dict) or not isinstance(doc.get("sets"), dict):
                raise RuleError(f"{sets_file}:1", "_sets.yaml holds one mapping 'sets:'")
            base_sets = _parse_sets(doc["sets"], str(sets_file), {})
    rules: list[Rule] = []
    seen: dict[str, str] = {}
    names: list[str] = []
    for file in files:
        if file.name == SETS_FILE:
            continue
        loaded = load_rules_text(_read(file), str(file), base_sets, eager=eager)
        names.append(str(file))
        for rule in loaded.rules:
            if rule.id in seen:
                raise RuleError(rule.source, f"duplicate rule id (first at {seen[rule.id]})",
                                rule.id)
            seen[rule.id] = rule.source
            rules.append(rule)
    return RuleSet(tuple(rules), tuple(names))


def _read(file: Path) -> str:
    try:
        return file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RuleError(f"{file}:0", f"cannot read: {exc}") from None
