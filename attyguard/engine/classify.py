"""classify(line) -> Verdict: the only entry point of the pure engine.

This module owns the order of work for one line: size bound -> cheap
normalisation -> atom prefilter (a clean line stops here) -> bounded parse ->
decoded layers -> the candidate rules' matchers -> decoded layers classified
again -> one Verdict. It never raises and never runs unbounded: an analysis
that hits a bound answers warn with a rule that says so, never a silent allow.

The shipped rules are loaded once (module-level cache) from
attyguard.resources.data_path("patterns"); `Engine(ruleset)` serves tests and
`attyguard rules`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from attyguard.engine.atoms import AtomMatcher
from attyguard.engine.decode import Payload, find_payloads
from attyguard.engine.matchers import Analysis
from attyguard.engine.normalize import DEFAULT_PROGRAMS, ProgramIndex, prefilter_text
from attyguard.engine.parse import Command, Finding, Limits, Parsed, Span, parse
from attyguard.engine.quick import (  # (defined there: light to import)
    BOUNDED_RULE_ID,
    UNAVAILABLE_RULE_ID,
)
from attyguard.engine.rules import Rule, RuleError, RuleSet, load_rules
from attyguard.engine.state import ShellState
from attyguard.engine.verdict import Action, RuleHit, Severity, Verdict, combine_probabilities

if TYPE_CHECKING:
    from attyguard.feeds.match import FeedSet

__all__ = [
    "BOUNDED_RULE_ID",
    "ENGINE_RULES",
    "MAX_LINE",
    "UNAVAILABLE_RULE_ID",
    "Engine",
    "classify",
    "default_engine",
    "reset_default_engine",
    "set_default_programs",
]

MAX_LINE = 65_536  # characters; longer input is not parsed at all (warn, says why)
MAX_LAYERS = 3  # decoded payloads classified again, at most this deep
MAX_ANALYSES = 24  # decoded payloads classified again, at most this many per line


# Lines that can hide their words from the prefilter until parsed: substitutions,
# defaults (`${x:-curl}`), glob paths (`/???/b??h`), names split by expansions
# (`cu${u}rl`). Each pattern is linear: this runs on every line.
_FORCE_PARSE = re.compile(
    r"\$\(|`|\$\{[A-Za-z_]\w*:?-"
    r"|(?:^|[;|&(]|\b(?:then|do|else|sudo|exec|env|command)\s)\s*+\"?\$[{A-Za-z_!(]"
    r"|(?:^|[\s;|&(])/[^\s;|&?*\[]*+[?*\[]"
    r"|[A-Za-z]\$(?:\{[A-Za-z_@*]|[A-Za-z_@*])"
)
_ASSIGNMENT = re.compile(r"(?<!\w)[A-Za-z_]\w*+=")  # from word starts only: linear
_EXPANSION = re.compile(r"\$\{?[A-Za-z_]")


def _needs_parse(text: str) -> bool:
    """True when the line may hide command words from the atom scan."""
    if _FORCE_PARSE.search(text):
        return True
    # Variables assigned earlier in the line (`a=cu; b=rl; $a$b`): two linear scans.
    m = _ASSIGNMENT.search(text)
    return m is not None and _EXPANSION.search(text, m.end()) is not None


def _bounded_hit(reason: str, span: Span | None = None) -> RuleHit:
    return RuleHit(
        rule_id=BOUNDED_RULE_ID,
        title="Line too complex to analyse fully",
        severity=Severity.MEDIUM,
        action=Action.WARN,
        probability=0.3,
        explanation=f"attyguard stopped analysing this line early ({reason}); "
        "it cannot vouch for what the line does.",
        remediation="Split the line into smaller commands, or review it and confirm.",
        span=span,
        matched=reason,
    )


@dataclass(frozen=True, slots=True)
class EngineRule:
    """A rule the walk itself decides (parse.Finding kinds), not expressible as a pattern."""

    id: str
    title: str
    severity: Severity
    action: Action
    probability: float
    explanation: str
    remediation: str


# parse.Finding.kind -> the rule it raises. Every finding warns: each is a way to make
# bash run something the line does not show, and each has everyday look-alikes.
ENGINE_RULES: dict[str, EngineRule] = {
    "dynamic-command": EngineRule(
        "engine.dynamic-command", "Program name hidden behind an expansion",
        Severity.MEDIUM, Action.WARN, 0.35,
        "The program this line runs is only known when bash expands it (a variable, "
        "substitution or pattern that attyguard cannot resolve), so the program cannot be judged.",
        "Write the program's name literally, or check what the expansion holds before running."),
    "hash-path": EngineRule(
        "engine.hash-path", "Command name pointed at another program",
        Severity.HIGH, Action.WARN, 0.6,
        "`hash -p FILE NAME` makes every later `NAME` run FILE instead of the usual program: "
        "a way to hijack a command you type.",
        "Run the program by its path instead, or `hash -r` to forget the entry."),
    "env-file": EngineRule(
        "engine.env-file", "File run by every new shell",
        Severity.MEDIUM, Action.WARN, 0.45,
        "BASH_ENV (and ENV for sh) names a file that every non-interactive shell started "
        "from here runs first: code stored in it runs unseen with later commands.",
        "Unset it (`unset BASH_ENV ENV`) unless you know the file and need it."),
}


def _finding_hit(finding: Finding, outer_span: Span | None) -> RuleHit:
    rule = ENGINE_RULES[finding.kind]
    return RuleHit(
        rule_id=rule.id, title=rule.title, severity=rule.severity, action=rule.action,
        probability=rule.probability, explanation=rule.explanation,
        remediation=rule.remediation,
        span=outer_span if outer_span is not None else finding.span,
        matched=finding.detail[:300],
    )


@dataclass(slots=True)
class _Budget:
    """Work left for one line over all its decoded layers (mutable, per call)."""

    deadline: float
    analyses: int = 0
    state: ShellState | None = None  # the live shell's names: decoded layers run there too


@dataclass(frozen=True, slots=True)
class _Layer:
    hits: tuple[RuleHit, ...]
    notes: tuple[str, ...] = ()


class Engine:
    """A loaded rule set with its prefilter; `classify` is pure apart from the clock."""

    def __init__(self, ruleset: RuleSet, limits: Limits | None = None,
                 programs: ProgramIndex = DEFAULT_PROGRAMS,
                 clock: Callable[[], float] = time.monotonic,
                 feeds: FeedSet | None = None) -> None:
        self.ruleset = ruleset
        # One budget (limits.deadline_s) covers parse, decoding and matchers of a line.
        self.clock = clock
        # Where a glob in a command word may point (engine/programs.py snapshots PATH).
        self.programs = programs
        self.rules: tuple[Rule, ...] = ruleset.rules
        self.limits = limits or Limits()
        # Outside feeds (Sigma, GTFOBins: attyguard/feeds/) share the prefilter as one
        # more slot after the rules: a line with none of their atoms never sees them.
        self.feeds = feeds if feeds else None
        self._programs_by_name: tuple[ProgramIndex, dict[str, str]] | None = None
        self._feeds_slot = len(self.rules) if self.feeds is not None else -1
        self.atoms = AtomMatcher([*(r.atoms for r in self.rules),
                                  *((self.feeds.atoms,) if self.feeds is not None else ())])

    def classify(self, line: str, state: ShellState | None = None) -> Verdict:
        """Judge `line` as bash will run it; `state` is the live shell's names it uses."""
        start = time.perf_counter_ns()
        try:
            layer = self._classify(line, state or None)
        except Exception as exc:
            layer = _Layer((_bounded_hit(f"internal error: {type(exc).__name__}: {exc}"),))
        hits = layer.hits
        action = Action.strongest([h.action for h in hits])
        return Verdict(
            action=action,
            rules=hits,
            probability=combine_probabilities([h.probability for h in hits]),
            elapsed_us=(time.perf_counter_ns() - start) // 1000,
            notes=layer.notes,
        )

    def _classify(self, line: str, state: ShellState | None) -> _Layer:
        if len(line) > MAX_LINE:
            return _Layer((_bounded_hit(f"line longer than {MAX_LINE} characters"),))
        budget = _Budget(self.clock() + self.limits.deadline_s, state=state)
        hits = self._analyse(line, 0, budget, None)
        # One hit per rule: the first (outermost) one explains it best.
        seen: set[str] = set()
        unique: list[RuleHit] = []
        for hit in hits:
            if hit.rule_id not in seen:
                seen.add(hit.rule_id)
                unique.append(hit)
        return _Layer(tuple(unique))

    def _analyse(self, text: str, layer: int, budget: _Budget,
                 outer_span: Span | None) -> list[RuleHit]:
        candidates = self.atoms.candidates(prefilter_text(text))
        # With the shell's state, any word may be an alias, function or variable.
        if not candidates and budget.state is None and not _needs_parse(text):
            return []
        if layer > 0:
            # Decoded layers share one budget, so nested payloads cannot multiply the work.
            budget.analyses += 1
            if budget.analyses > MAX_ANALYSES or self.clock() > budget.deadline:
                return [_bounded_hit("too many decoded layers to analyse", outer_span)]
        parsed = parse(text, self.limits, budget.deadline, self.clock, state=budget.state,
                       programs=self.programs)
        payloads = find_payloads(parsed) if parsed.commands else ()
        normalized = _normalized(parsed)
        extra = normalized.lower()
        if parsed.redirects:  # targets resolved by the parse (`$a/tcp/…`) hold atoms too
            extra += "\n" + " ".join(f"{r.op} {r.target}" for r in parsed.redirects).lower()
        if payloads:
            extra += "\n" + "\n".join(p.text.lower() for p in payloads)
        candidates |= self.atoms.candidates(extra)
        analysis = Analysis(text, parsed, normalized, payloads, layer)
        hits: list[RuleHit] = []
        if parsed.bounded is not None:
            hits.append(_bounded_hit(parsed.bounded, outer_span))
        # A decoded text may be data for a program (`base64 -d <<< …`), not shell code:
        # only a typed line (or a shell's text within it) shows a hidden program.
        hits.extend(_finding_hit(f, outer_span) for f in parsed.findings
                    if layer == 0 or f.kind != "dynamic-command")
        for index in sorted(candidates):
            if self.clock() > budget.deadline:
                # Rules not tried cannot vouch for the line: warn, never a silent allow.
                hits.append(_bounded_hit("analysis deadline exceeded", outer_span))
                break
            if index == self._feeds_slot:
                hits.extend(self._feed_hits(parsed, outer_span))
                continue
            rule = self.rules[index]
            try:
                result = rule.matcher.match(analysis)
            except TimeoutError:  # a rule's regex hit its time limit (matchers.py)
                hits.append(_bounded_hit(f"rule {rule.id} took too long on this line",
                                         outer_span))
                continue
            if result is None:
                continue
            span = outer_span if outer_span is not None else result.span
            matched = result.text if layer == 0 else f"decoded: {result.text}"
            hits.append(RuleHit(
                rule_id=rule.id, title=rule.title, severity=rule.severity, action=rule.action,
                probability=rule.probability, explanation=rule.explanation,
                remediation=rule.remediation, span=span, matched=matched[:300],
            ))
        hits.extend(self._payload_hits(text, payloads, layer, budget, outer_span, parsed))
        return hits

    def _feed_hits(self, parsed: Parsed, outer_span: Span | None) -> list[RuleHit]:
        """Each command's exec view judged by the feed bundle (Sigma, GTFOBins)."""
        assert self.feeds is not None
        from attyguard.feeds.match import ExecView

        hits: list[RuleHit] = []
        for cmd in parsed.commands:
            if not cmd.name:
                continue
            view = ExecView(
                image=self._image(cmd), command_line=" ".join((cmd.path, *cmd.argv)),
                parent_image="/bin/bash",  # a typed line's parent is the guarded bash
                privilege="sudo" if {"sudo", "doas"} & set(cmd.wrappers) else None)
            for hit in self.feeds.evaluate(view):
                hits.append(hit if outer_span is None else replace(hit, span=outer_span))
        return hits

    def _image(self, cmd: Command) -> str:
        """The program's path as Sigma's Image: as typed when absolute, else found in
        the PATH snapshot, else `/name` (so a rule's `endswith: /name` still holds)."""
        if cmd.path.startswith("/"):
            return cmd.path
        if self._programs_by_name is None or self._programs_by_name[0] is not self.programs:
            by_name: dict[str, str] = {}
            for path in self.programs.paths:  # sorted: the first one is what bash would run
                by_name.setdefault(path.rsplit("/", 1)[-1], path)
            self._programs_by_name = (self.programs, by_name)
        return self._programs_by_name[1].get(cmd.name) or f"/{cmd.name}"

    def _payload_hits(self, text: str, payloads: tuple[Payload, ...], layer: int,
                      budget: _Budget, outer_span: Span | None,
                      parsed: Parsed) -> list[RuleHit]:
        hits: list[RuleHit] = []
        for payload in payloads:
            # Every decoded text is classified as shell text, whoever reads it: a python
            # `os.system(b64decode(…))` runs shell too, and a hidden `curl | sh` is worth
            # knowing about wherever it goes.
            if layer + 1 > MAX_LAYERS:
                hits.append(_bounded_hit(f"more than {MAX_LAYERS} encoded layers", outer_span))
                break
            span = outer_span if outer_span is not None else payload.span
            layer_text = payload.text
            if payload.replaces and payload.replaces in text:
                # `$(echo Y3VybA== | base64 -d) -s URL | sh`: put the decoded name back.
                layer_text = text.replace(payload.replaces, payload.text.strip(), 1)
            else:
                # `exec 5<>$(echo L2Rl… | base64 -d)`: a decoded redirect target goes back
                # into its redirection, so the line is judged with the file it opens.
                target = _decoded_target(parsed, payload)
                if target is not None and target in text:
                    layer_text = text.replace(target, payload.text.strip(), 1)
            hits.extend(self._analyse(layer_text, layer + 1, budget, span))
        return hits


def _decoded_target(parsed: Parsed, payload: Payload) -> str | None:
    """The `$(…)` redirect target (as typed) the payload was decoded from, if any."""
    start, end = payload.span
    for red in parsed.redirects:
        target = red.target
        if not (target.startswith("$(") or target.startswith("`")) or "\n" in target:
            continue
        if red.span[0] < end and start < red.span[1]:
            return target
    return None


def _normalized(parsed: Parsed) -> str:
    return "\n".join(" ".join((c.path, *c.argv)) for c in parsed.commands)


_DEFAULT: Engine | None = None
_DEFAULT_ERROR: str | None = None


def default_engine() -> Engine:
    """The engine over the shipped patterns/, loaded once per process."""
    global _DEFAULT, _DEFAULT_ERROR
    if _DEFAULT is None:
        try:
            # Regexes compile on first use: compiling all ~230 was most of the start-up
            # every `ssh host CMD` pays. The test suite compiles (checks) them all.
            _DEFAULT = Engine(load_rules(eager=False), feeds=_load_feeds())
            _DEFAULT_ERROR = None
            # For the next `attyguard -c`: clean lines without the engine (quick.py).
            from attyguard.engine.quick import save_atoms

            save_atoms([r.atoms for r in _DEFAULT.rules])
        except (RuleError, OSError) as exc:
            _DEFAULT = Engine(RuleSet(()))
            _DEFAULT_ERROR = str(exc)
    return _DEFAULT


def _load_feeds() -> FeedSet | None:
    """The user's feed bundle (`attyguard feeds update`), if any; a broken one is skipped
    (its warning is `feed_warning()`), never half-used."""
    global _FEED_WARNING
    try:
        from attyguard.feeds.bundle import load_current
        from attyguard.feeds.match import FeedSet

        bundle, _FEED_WARNING = load_current()
    except Exception as exc:  # an optional part must never take the rules down
        _FEED_WARNING = f"feeds: not loaded: {type(exc).__name__}: {exc}"
        return None
    return FeedSet.from_bundle(bundle) if bundle is not None else None


_FEED_WARNING: str | None = None


def feed_warning() -> str | None:
    return _FEED_WARNING


def set_default_programs(programs: ProgramIndex) -> None:
    """Resolve command-word globs against `programs` (a PATH snapshot made once by the caller)."""
    default_engine().programs = programs


def reset_default_engine() -> None:
    """Forget the cached engine (tests; `attyguard rules` after editing patterns/)."""
    global _DEFAULT, _DEFAULT_ERROR
    _DEFAULT = None
    _DEFAULT_ERROR = None


def classify(line: str, state: ShellState | None = None) -> Verdict:
    """Classify one command line with the shipped rules. Pure, bounded, never raises.

    `state` (the live shell's variables, aliases, functions…) makes the line
    judged as bash will expand it.
    """
    engine = default_engine()
    verdict = engine.classify(line, state)
    if _DEFAULT_ERROR is None:
        return verdict
    # Broken rule files must not turn into a silent allow-everything.
    hit = RuleHit(
        rule_id=UNAVAILABLE_RULE_ID, title="attyguard's rules failed to load",
        severity=Severity.HIGH, action=Action.WARN, probability=0.0,
        explanation=_DEFAULT_ERROR, remediation="Fix the rule file named in the explanation.",
    )
    return Verdict(
        action=Action.strongest([verdict.action, Action.WARN]),
        rules=(*verdict.rules, hit), probability=verdict.probability,
        elapsed_us=verdict.elapsed_us, notes=(*verdict.notes, _DEFAULT_ERROR),
    )
