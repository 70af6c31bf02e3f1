"""The sliding window (seed V2-H): sequences of commands that no single line shows.

Per guarded session the daemon keeps the last `commands` lines of the last
`minutes` minutes with the rule ids the engine found in each. A *sequence* is
data (`patterns/sequences/*.yaml`, each with its own example sequences): an
ordered list of steps; when the line being judged completes a sequence whose
earlier steps happened in order inside the window, the verdict gets a hit for
it (id `seq.<name>`) that the accumulator combines like any rule, raising the
session's threat level. Steps may capture a value (`(?P<file>…)`) that later
steps must repeat (`{{file}}`), so "download X, chmod X, run X" needs the same X.

Pure: no I/O, no clock (callers pass times); the loader alone reads files.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from functools import lru_cache
from pathlib import Path
from typing import Any

from attyguard.engine.verdict import Action, RuleHit, Severity

__all__ = [
    "SEQUENCE_PREFIX",
    "CommandSequence",
    "Entry",
    "SequenceError",
    "Step",
    "Window",
    "load_sequences",
    "run_sequence_examples",
]

SEQUENCE_PREFIX = "seq."
_PLACEHOLDER = re.compile(r"\{\{([A-Za-z_]\w*)\}\}")


class SequenceError(ValueError):
    """A sequence file problem, with `file:line`."""


@dataclass(frozen=True)
class Step:
    name: str
    lines: tuple[str, ...]  # regexes searched in the line (any may match); {{name}} placeholders
    rules: tuple[str, ...]  # globs over the rule ids the engine found in the line
    count: int = 1  # how many distinct lines must match before the next step

    def could_match(self, entry: Entry) -> bool:
        """Whether any partial match could take this entry (placeholders taken as any word).

        One search per line, so that a line no step can take costs nothing per
        partial match."""
        if self.rules and any(fnmatchcase(r, g) for r in entry.rules for g in self.rules):
            return True
        return any(_compiled(_PLACEHOLDER.sub(r"[^\\s;&|]+", src)).search(entry.line)
                   for src in self.lines)

    def matches(self, entry: Entry, captures: Mapping[str, str]) -> dict[str, str] | None:
        """The values this entry captures when it matches the step (one of its `line`
        regexes or one of its `rules`), else None."""
        for source in self.lines:
            if "{{" in source:
                names = _PLACEHOLDER.findall(source)
                if any(n not in captures for n in names):
                    continue
                source = _PLACEHOLDER.sub(lambda m: re.escape(captures[m.group(1)]), source)
            m = _compiled(source).search(entry.line)
            if m is not None:
                return {k: v for k, v in m.groupdict().items() if v is not None}
        if self.rules and any(fnmatchcase(r, g) for r in entry.rules for g in self.rules):
            return {}
        return None


@lru_cache(maxsize=1024)
def _compiled(source: str) -> re.Pattern[str]:
    # Placeholders make a step's regex depend on earlier lines; the cache keeps the
    # recompiling to once per distinct captured value.
    return re.compile(source)


@dataclass(frozen=True)
class CommandSequence:
    id: str
    title: str
    severity: Severity
    action: Action
    probability: float
    explanation: str
    steps: tuple[Step, ...]
    examples_match: tuple[tuple[str, ...], ...] = ()
    examples_nomatch: tuple[tuple[str, ...], ...] = ()
    source: str = ""

    def hit(self, matched: str) -> RuleHit:
        return RuleHit(rule_id=self.id, title=self.title, severity=self.severity,
                       action=self.action, probability=self.probability,
                       explanation=self.explanation,
                       remediation="Review the earlier commands of this session "
                       "(`history`); if they were yours and intended, carry on.",
                       matched=matched[:200])


@dataclass(frozen=True)
class Entry:
    time: float  # seconds (any monotonic clock the caller uses consistently)
    line: str
    rules: tuple[str, ...]


MAX_STATES = 64  # partial matches followed per sequence; beyond it the oldest are dropped

# A partial match: (step reached, lines counted for that step, captures so far).
_State = tuple[int, int, tuple[tuple[str, str], ...]]


@dataclass
class Window:
    """One session's recent commands and the partial matches they started.

    Partial matches are advanced once per remembered line (never recomputed over
    the whole window), so judging a line costs O(sequences × partial matches),
    whatever the window's length. Each partial match remembers the line it
    started at (`seq` number) and is dropped when that line leaves the window.
    """

    sequences: tuple[CommandSequence, ...]
    max_commands: int = 50
    max_seconds: float = 1800.0
    entries: deque[tuple[int, Entry]] = field(default_factory=deque)
    # per sequence: partial match -> seq number of the line it started at
    partial: dict[str, dict[_State, int]] = field(default_factory=dict)
    _next_seq: int = 0

    def _expire(self, now: float) -> None:
        while self.entries and (now - self.entries[0][1].time > self.max_seconds
                                or len(self.entries) > self.max_commands):
            self.entries.popleft()
        oldest = self.entries[0][0] if self.entries else self._next_seq
        for states in self.partial.values():
            for state in [st for st, start in states.items() if start < oldest]:
                del states[state]

    def judge(self, line: str, rules: Iterable[str], now: float) -> tuple[list[RuleHit], Entry]:
        """The sequences this line completes; `remember(entry)` once it is known to run."""
        current = Entry(now, line, tuple(rules))
        self._expire(now)
        hits = []
        for seq in self.sequences:
            done = len(seq.steps) - 1
            states = self.partial.get(seq.id, {})
            if any(index == done and seq.steps[-1].matches(current, dict(caps)) is not None
                   for index, _, caps in states):
                hits.append(seq.hit(line))
        return hits, current

    def remember(self, entry: Entry) -> None:
        seq_no = self._next_seq
        self._next_seq += 1
        self.entries.append((seq_no, entry))
        for seq in self.sequences:
            states = self.partial.setdefault(seq.id, {})
            steps = seq.steps[:-1]
            takes = [step.could_match(entry) for step in steps]
            if not any(takes):
                continue
            # Every line may also start a new partial match: the empty state, born now.
            for (index, counted, caps), start in [*states.items(), ((0, 0, ()), seq_no)]:
                if index == len(steps) or not takes[index]:
                    continue
                got = steps[index].matches(entry, dict(caps))
                if got is None:
                    continue
                merged = tuple(sorted({**dict(caps), **got}.items()))
                advanced = ((index + 1, 0, merged) if counted + 1 >= steps[index].count
                            else (index, counted + 1, merged))
                # The same partial match reached from a later start lives longer.
                states[advanced] = max(start, states.get(advanced, start))
            if len(states) > MAX_STATES:
                for state in sorted(states, key=states.__getitem__)[:len(states) - MAX_STATES]:
                    del states[state]
        self._expire(entry.time)

    def observe(self, line: str, rules: Iterable[str], now: float) -> list[RuleHit]:
        hits, entry = self.judge(line, rules, now)
        self.remember(entry)
        return hits


# -- loading -----------------------------------------------------------------------


def _located(path: str, node: Any) -> str:
    mark = getattr(node, "start_mark", None)
    return f"{path}:{mark.line + 1}" if mark is not None else path


def _scalar(node: Any) -> Any:
    import yaml

    if isinstance(node, yaml.ScalarNode):
        return node.value
    if isinstance(node, yaml.SequenceNode):
        return [_scalar(n) for n in node.value]
    if isinstance(node, yaml.MappingNode):
        return {k.value: _scalar(v) for k, v in node.value}
    return None


_SEQ_KEYS = {"id", "title", "severity", "action", "p", "explanation", "steps", "examples"}
_STEP_KEYS = {"name", "line", "rules", "count"}


def _build(path: str, node: Any) -> CommandSequence:
    import yaml

    where = _located(path, node)
    if not isinstance(node, yaml.MappingNode):
        raise SequenceError(f"{where}: a sequence is a mapping")
    raw = {k.value: v for k, v in node.value}
    unknown = set(raw) - _SEQ_KEYS
    if unknown:
        raise SequenceError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    for key in ("id", "title", "steps", "explanation"):
        if key not in raw:
            raise SequenceError(f"{where}: missing '{key}'")
    sid = str(_scalar(raw["id"]))
    if not sid.startswith(SEQUENCE_PREFIX):
        raise SequenceError(f"{_located(path, raw['id'])}: id must start with "
                            f"'{SEQUENCE_PREFIX}' ({sid!r})")
    try:
        severity = Severity.parse(str(_scalar(raw.get("severity")) or "MEDIUM"))
        action = Action(str(_scalar(raw.get("action")) or "warn"))
        probability = float(_scalar(raw.get("p")) or 0.5)
    except (KeyError, ValueError) as exc:
        raise SequenceError(f"{where}: {sid}: bad severity, action or p ({exc})") from None
    if not 0.0 <= probability <= 1.0:
        raise SequenceError(f"{where}: {sid}: p must be in [0, 1]")
    steps: list[Step] = []
    step_nodes = raw["steps"]
    if not isinstance(step_nodes, yaml.SequenceNode) or len(step_nodes.value) < 2:
        raise SequenceError(f"{_located(path, step_nodes)}: {sid}: at least two steps")
    for step_node in step_nodes.value:
        swhere = _located(path, step_node)
        data = _scalar(step_node)
        if not isinstance(data, dict):
            raise SequenceError(f"{swhere}: {sid}: a step is a mapping")
        bad = set(data) - _STEP_KEYS
        if bad:
            raise SequenceError(f"{swhere}: {sid}: unknown step key(s) {', '.join(sorted(bad))}")
        line_src = data.get("line") or []
        sources = [line_src] if isinstance(line_src, str) else line_src
        rules = data.get("rules") or []
        if not sources and not rules:
            raise SequenceError(f"{swhere}: {sid}: a step needs 'line' or 'rules'")
        for source in sources:
            try:
                # Placeholders stand for literal text: check the regex around them compiles.
                re.compile(_PLACEHOLDER.sub("x", str(source)))
            except re.error as exc:
                raise SequenceError(f"{swhere}: {sid}: bad regex {source!r}: {exc}") from None
        try:
            count = int(data.get("count", 1))
        except ValueError:
            raise SequenceError(f"{swhere}: {sid}: count must be a whole number") from None
        steps.append(Step(str(data.get("name", f"step{len(steps) + 1}")),
                          tuple(str(x) for x in sources), tuple(str(r) for r in rules),
                          max(1, count)))
    examples = _scalar(raw["examples"]) if "examples" in raw else {}
    if not isinstance(examples, dict) or not examples.get("match"):
        raise SequenceError(f"{where}: {sid}: needs examples: match: [[line, …], …]")
    return CommandSequence(sid, str(_scalar(raw["title"])), severity, action, probability,
                     " ".join(str(_scalar(raw["explanation"])).split()), tuple(steps),
                     tuple(tuple(e) for e in examples.get("match", [])),
                     tuple(tuple(e) for e in examples.get("nomatch", [])), where)


def load_sequences(path: Path | None = None) -> tuple[CommandSequence, ...]:
    """Every sequence under `path` (default: the shipped patterns/sequences/)."""
    import yaml

    if path is None:
        from attyguard.resources import data_path

        path = data_path("patterns") / "sequences"
    files = [path] if path.is_file() else sorted(path.glob("*.yaml"))
    out: list[CommandSequence] = []
    seen: dict[str, str] = {}
    for file in files:
        try:
            root = yaml.compose(file.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
        except (OSError, UnicodeDecodeError) as exc:
            raise SequenceError(f"{file}: cannot read: {exc}") from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = f":{mark.line + 1}" if mark is not None else ""
            raise SequenceError(f"{file}{line}: {getattr(exc, 'problem', exc)}") from None
        if root is None:
            continue
        body = {k.value: v for k, v in root.value} if isinstance(root, yaml.MappingNode) else {}
        node = body.get("sequences")
        if not isinstance(node, yaml.SequenceNode):
            raise SequenceError(f"{_located(str(file), root)}: expected 'sequences:' list")
        for item in node.value:
            seq = _build(str(file), item)
            if seq.id in seen:
                raise SequenceError(f"{seq.source}: duplicate id {seq.id} (first at "
                                    f"{seen[seq.id]})")
            seen[seq.id] = seq.source
            out.append(seq)
    return tuple(out)


def run_sequence_examples(sequences: Sequence[CommandSequence],
                          rules_of: Any) -> list[str]:
    """Every example through a fresh window; `rules_of(line)` gives the engine's rule ids.

    Returns one message per failing example (empty: all pass).
    """
    failures: list[str] = []
    for seq in sequences:
        for expect, examples in ((True, seq.examples_match), (False, seq.examples_nomatch)):
            for example in examples:
                window = Window((seq,))
                fired = False
                for n, line in enumerate(example):
                    hits = window.observe(line, rules_of(line), float(n))
                    fired = fired or any(h.rule_id == seq.id for h in hits)
                if fired != expect:
                    failures.append(f"{seq.source}: {seq.id}: "
                                    f"{'did not fire' if expect else 'fired'} on {list(example)}")
    return failures
