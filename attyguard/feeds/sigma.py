"""SigmaHQ Linux rules -> the bundle's compiled form (parsed with pySigma, never by hand).

Kept: `logsource: product: linux, category: process_creation` rules whose fields
this product sees for an exec (a typed line's exec view, or a kernel exec event):
Image, CommandLine, ParentImage, ParentCommandLine, User, CurrentDirectory.
Everything else is counted by reason (`dropped`), never silently lost.

A compiled condition is plain JSON (so the bundle needs no pySigma at run time):
`["or", [...]]`, `["and", [...]]`, `["not", x]`, `["re", field, regex, cased]`
(field None: any field, Sigma's keyword search). Sigma strings are matched
whole, case-insensitively, `*`/`?` wildcards as in Sigma.

Levels -> actions (docs/feeds.md): critical block, high warn, medium warn,
low/informational allow (they only add their probability). A rule with known
false positives, or `status: experimental|test`, is lowered one step
(block -> warn -> allow).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["FIELDS", "LEVELS", "action_for", "compile_rules"]

FIELDS = frozenset({"Image", "CommandLine", "ParentImage", "ParentCommandLine", "User",
                    "CurrentDirectory"})
# level -> (action, probability) before lowering
LEVELS = {
    "critical": ("block", 0.9),
    "high": ("warn", 0.6),
    "medium": ("warn", 0.4),
    "low": ("allow", 0.15),
    "informational": ("allow", 0.05),
}
_LOWER = {"block": "warn", "warn": "allow", "allow": "allow"}
_ATOM_MIN = 4  # shorter literals are too generic to gate a rule on (`-d`, `sh`)
_GENERIC_ATOMS = frozenset({"/bin/", "/usr/bin/", "/tmp/", "/usr/", "/etc/", "bash", "/dev/",
                            "http", "-c ", " -c", "/sbin", "echo", "sudo", "system", "server",
                            "install", "-exec", "remove", "purge", "stop", "disable", "connect",
                            "spawn", "/proc/", "/update", "-init"})
# Everyday programs: a rule whose only gate is one of these names would send a large
# share of all typed lines to the parser and its regexes (seen: `find`, `ls`, `grep`
# in thousands of ordinary lines), so it is dropped as too generic, and counted.
_EVERYDAY = frozenset({
    "ls", "cd", "cat", "echo", "grep", "egrep", "find", "file", "sh", "bash", "rm", "cp", "mv",
    "sed", "awk", "head", "tail", "vi", "vim", "less", "more", "sudo", "at", "ss", "ps", "id",
    "ip", "git", "make", "python", "tar", "curl", "wget", "ssh", "chmod", "chown", "mkdir",
    "touch", "kill", "env", "nice", "tree", "cut", "sort", "uniq", "wc", "nohup", "systemctl",
    "service", "hostname", "ping", "dpkg", "rpm", "yum", "apt", "perl", "cron", "crontab",
})


class _Unsupported(Exception):
    """A rule part this product cannot evaluate; the message is the reason counted."""


def action_for(level: str, status: str, falsepositives: Iterable[str]) -> tuple[str, float]:
    action, p = LEVELS.get(level, ("allow", 0.05))
    known_fp = [f for f in falsepositives if f.strip().lower() not in ("", "unknown", "none")]
    if known_fp or status in ("experimental", "test"):
        action, p = _LOWER[action], round(p * 0.6, 3)
    return action, p


def _string_regex(value: Any) -> tuple[str, bool]:
    from sigma.types import SigmaCasedString, SigmaString, SpecialChars

    if not isinstance(value, SigmaString):
        raise _Unsupported(f"value type {type(value).__name__}")
    parts = []
    for part in value.s:
        if isinstance(part, str):
            parts.append(re.escape(part))
        elif part is SpecialChars.WILDCARD_MULTI:
            parts.append(".*")
        elif part is SpecialChars.WILDCARD_SINGLE:
            parts.append(".")
        else:
            raise _Unsupported("placeholder in a value")
    return "".join(parts), isinstance(value, SigmaCasedString)


def _compile(node: Any) -> list[Any]:
    import sigma.conditions as c
    from sigma.types import SigmaNull, SigmaNumber, SigmaRegularExpression

    if isinstance(node, c.ConditionAND | c.ConditionOR):
        op = "and" if isinstance(node, c.ConditionAND) else "or"
        return [op, [_compile(a) for a in node.args]]
    if isinstance(node, c.ConditionNOT):
        return ["not", _compile(node.args[0])]
    if isinstance(node, c.ConditionFieldEqualsValueExpression | c.ConditionValueExpression):
        field = getattr(node, "field", None)
        if field is not None and field not in FIELDS:
            raise _Unsupported(f"field {field}")
        value = node.value
        if isinstance(value, SigmaRegularExpression):
            regex = str(value.regexp.original)  # the rule's own text, not wildcard parts
            try:
                re.compile(regex)
            except re.error:
                raise _Unsupported("regex Python cannot compile") from None
            return ["re", field, f"(?s:.*(?:{regex}).*)", True]
        if isinstance(value, SigmaNull):
            return ["null", field]
        if isinstance(value, SigmaNumber):
            return ["re", field, re.escape(str(value.number)), True]
        regex, cased = _string_regex(value)
        return ["re", field, f"(?s:{regex})", cased]
    raise _Unsupported(f"condition {type(node).__name__}")


_IMAGE_TAIL = re.compile(r"\(\?s:\.\*/([\w.+-]+)\)")
_GATE_FIELDS = (None, "Image", "CommandLine")  # what a typed line's own text holds


def _atoms(node: list[Any]) -> set[str] | None:
    """Literal lower-case strings one of which every match contains; None: no such set.

    Only the program and its command line gate a rule: they are in a typed line's
    text, which the engine's prefilter scans (the parent and user are not). An
    Image that ends in `/name` gives the word-start atom `^name` (the line says
    `whoami`, not `/usr/bin/whoami`).
    """
    op = node[0]
    if op == "re" and not node[3] and node[1] in _GATE_FIELDS:
        tail = _IMAGE_TAIL.fullmatch(node[2]) if node[1] == "Image" else None
        if tail is not None and len(tail.group(1)) >= 2:
            name = re.sub(r"\\(.)", r"\1", tail.group(1)).lower()
            return None if name in _EVERYDAY else {"^" + name}
        literals = [lit.lower() for lit in re.split(r"\.\*|\.|\(\?s:|\)|\\(?=[^\w])", node[2])
                    if lit]
        best = max((re.sub(r"\\(.)", r"\1", lit) for lit in literals), key=len, default="")
        if len(best) >= _ATOM_MIN and best not in _GENERIC_ATOMS:
            return {best}
        return None
    if op == "or":
        out: set[str] = set()
        for child in node[1]:
            got = _atoms(child)
            if got is None:
                return None
            out |= got
        return out
    if op == "and":
        choices = [a for a in (_atoms(child) for child in node[1]) if a]
        # The most selective conjunct: literals from the command line before bare
        # program names (`^ls`, `^cat` are in every other everyday line), then the
        # fewest alternatives, then the longest.
        return min(choices, key=lambda a: (all(x.startswith("^") for x in a), len(a),
                                           -min(map(len, a))), default=None)
    return None


def compile_rules(paths: Iterable[Path]) -> tuple[list[dict[str, Any]], Counter[str]]:
    """The kept rules in bundle form, and how many were dropped for each reason."""
    from sigma.collection import SigmaCollection

    dropped: Counter[str] = Counter()
    collection = SigmaCollection.load_ruleset(list(paths), collect_errors=True)
    for error in getattr(collection, "errors", ()):
        dropped[f"pySigma error: {type(error).__name__}"] += 1
    kept: list[dict[str, Any]] = []
    from sigma.rule import SigmaRule

    for rule in collection.rules:
        if not isinstance(rule, SigmaRule):
            dropped["correlation rule"] += 1
            continue
        if getattr(rule, "errors", None):
            dropped[f"pySigma error: {type(rule.errors[0]).__name__}"] += 1
            continue
        source = rule.logsource
        if source.product != "linux":
            dropped[f"logsource product {source.product}"] += 1
            continue
        if source.category != "process_creation":
            what = source.category or f"service {source.service}" if source.service else \
                source.category or "no category"
            dropped[f"logsource {what}"] += 1
            continue
        try:
            conditions = [_compile(cond.parse()) for cond in rule.detection.parsed_condition]
        except _Unsupported as exc:
            dropped[f"unsupported {exc}"] += 1
            continue
        except Exception as exc:  # a condition pySigma itself cannot resolve
            dropped[f"pySigma condition error: {type(exc).__name__}"] += 1
            continue
        tree = conditions[0] if len(conditions) == 1 else ["or", conditions]
        atoms = _atoms(tree)
        if not atoms:
            dropped["no specific literal to gate it on (would run on every line)"] += 1
            continue
        level = rule.level.name.lower() if rule.level else "informational"
        status = rule.status.name.lower() if rule.status else "stable"
        action, p = action_for(level, status, rule.falsepositives or ())
        kept.append({
            "id": f"sigma:{rule.id}",
            "title": rule.title,
            "level": level,
            "status": status,
            "falsepositives": list(rule.falsepositives or ()),
            "action": action,
            "p": p,
            "cond": tree,
            "atoms": sorted(atoms),
            "source": str(rule.source.path.name) if rule.source and rule.source.path else "",
        })
    return kept, dropped
