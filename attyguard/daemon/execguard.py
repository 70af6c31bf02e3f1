"""The exec judge: what the daemon decides about one exec in a guarded process tree.

This module owns the judgement of kernel exec events (issue 10, parts 3-4):
the *facts* of one exec (`ExecFacts`: program, argv, fds 0/1/2, the text of
the script a shell will read, who writes the pipe on its stdin, how fresh the
executable is), the *exec view* (the lines the Tier-1 engine judges for it),
the *context rules* (`patterns/exec/*.yaml`: what the line never shows — a
shell on a network socket, a shell fed by a download tool, a fresh dropped
binary, AF_ALG), and `judge()`, which combines them with the tree's threat
level. Those parts are pure (no I/O) and tested with tables and the rules'
own examples.

The impure rest lives below the line marked "impure": `gather()` reads
/proc and the filesystem to build the facts (racy: a process can change
between the event and the read, said again where it matters), `GuardedTrees`
knows which processes are in scope, and `TrustWindows` lets a line the user
trusted run its execs.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import shlex
import stat
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from attyguard.engine.verdict import Action, RuleHit, Severity, Verdict
from attyguard.kernel.events import ExecEvent, FdInfo, FdKind

__all__ = [
    "NO_RECORD_RULE",
    "SCOPES",
    "SCRIPT_MAX_BYTES",
    "TREE_CRITICAL_RULE",
    "ExecFacts",
    "ExecJudgement",
    "ExecRule",
    "ExecRuleError",
    "GuardedTrees",
    "TrustWindows",
    "exec_view",
    "facts_from_example",
    "gather",
    "judge",
    "load_exec_rules",
    "rule_matches",
    "run_exec_examples",
]

SCOPES = ("sessions", "group", "all")
# A shell script is judged from at most this much of its text: enough for any
# real script, bounded so a multi-GiB "script" costs one read, not the deadline.
SCRIPT_MAX_BYTES = 1 << 20
TREE_CRITICAL_RULE = "exec.tree-critical"
# A guarded exec refused in enforce because its execve record (argv) never came.
NO_RECORD_RULE = "exec.no-record"

_AF_INET, _AF_INET6, _AF_UNIX = 2, 10, 1

# Shells whose argv names the program they run (`-c CMD`, `FILE`, or stdin).
_SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "rbash", "yash",
                     "posh", "busybox"})
# Shell options that take an argument (so that argument is not the script).
_SHELL_OPTS_WITH_ARG = frozenset({"-o", "+o", "-O", "+O", "--rcfile", "--init-file"})
# Interpreters' inline-code flags: with one, the program does not come from stdin.
_INLINE_FLAGS = frozenset({"-c", "-e", "-E", "-r", "--eval", "-p", "--print"})


# --------------------------------------------------------------------------- facts


@dataclass(frozen=True, slots=True)
class ExecFacts:
    """Everything the judge looks at for one exec (or one AF_ALG socket)."""

    program: str  # the executable's path as resolved (or as given when unknown)
    argv: tuple[str, ...]
    fds: tuple[FdInfo, FdInfo, FdInfo] | None = None
    event: str = "exec"  # "exec" | "alg_socket"
    script_text: str | None = None  # a shell's script file (bounded), when it reads one
    stdin_writers: tuple[str, ...] = ()  # program names writing the pipe on fd 0
    exe_age_s: float | None = None  # seconds since the executable last changed
    exe_same_tree: bool = False  # changed since the tree was guarded, by its user
    exe_elf: bool = False
    argv_truncated: bool = False  # the sensor cut argv at its bound: a payload may be hidden
    exe_unnamed: bool = False  # the program is a memfd or a deleted file: no name to judge

    @property
    def name(self) -> str:
        """The program's name as the rules see it: argv[0]'s base name, else the path's."""
        first = self.argv[0] if self.argv else ""
        return os.path.basename(first or self.program)

    @property
    def names(self) -> tuple[str, ...]:
        """argv[0]'s and the executable's base names (argv[0] is the caller's to choose)."""
        real = os.path.basename(self.program)
        return (self.name,) if real in ("", self.name) else (self.name, real)


def _shell_target(argv: tuple[str, ...]) -> tuple[str, str | None]:
    """Where a shell's program comes from: ("c", cmd), ("file", path) or ("stdin", None)."""
    i = 1
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            i += 1
            break
        if arg in _SHELL_OPTS_WITH_ARG:
            i += 2
            continue
        if arg.startswith("-") and len(arg) > 1 and not arg.startswith("--"):
            if "c" in arg[1:]:
                return ("c", argv[i + 1] if i + 1 < len(argv) else "")
            if "s" in arg[1:]:
                return ("stdin", None)
            i += 1
            continue
        if arg.startswith("--") or (arg.startswith("+") and len(arg) > 1):
            i += 1
            continue
        break
    if i < len(argv):
        return ("file", argv[i])
    return ("stdin", None)


def is_shell(name: str) -> bool:
    return name in _SHELLS


def program_from_stdin(facts: ExecFacts) -> bool:
    """A shell or interpreter that will read its program from fd 0 (nothing inline, no file)."""
    if any(is_shell(n) for n in facts.names):
        return _shell_target(facts.argv)[0] == "stdin"
    rest = facts.argv[1:]
    if any(a in _INLINE_FLAGS for a in rest):
        return False
    return not any(not a.startswith("-") for a in rest)


def exec_view(facts: ExecFacts) -> tuple[str, ...]:
    """The lines the Tier-1 engine judges for this exec, as if they had been typed.

    argv as one line (and again with the real executable's path when argv[0]
    names something else: argv[0] is chosen by the caller), a shell's `-c`
    payload, and the text of the script file a shell runs.
    """
    if facts.event != "exec":
        return ()
    lines: list[str] = []
    argv = facts.argv or ((facts.program,) if facts.program else ())
    if argv:
        lines.append(shlex.join(argv))
        real = os.path.basename(facts.program)
        if facts.program and real and real != os.path.basename(argv[0]):
            lines.append(shlex.join((facts.program, *argv[1:])))
    if any(is_shell(n) for n in facts.names):
        how, what = _shell_target(facts.argv)
        if how == "c" and what:
            lines.append(what)
    if facts.script_text:
        lines.append(facts.script_text)
    return tuple(dict.fromkeys(lines))


# --------------------------------------------------------------------------- context rules


class ExecRuleError(Exception):
    """A context rule file is wrong; the message starts with `file:line`."""

    def __init__(self, source: str, message: str, rule_id: str | None = None) -> None:
        self.source = source
        where = f"{source}: rule {rule_id!r}: " if rule_id else f"{source}: "
        super().__init__(where + message)


_FD_SPECS = ("none", "tty", "pipe", "file", "socket", "socket:inet", "socket:unix", "other")


def _fd_is(fd: FdInfo | None, spec: str) -> bool:
    if fd is None:
        return False
    if spec == "socket:inet":
        return fd.kind is FdKind.SOCKET and fd.family in (_AF_INET, _AF_INET6)
    if spec == "socket:unix":
        return fd.kind is FdKind.SOCKET and fd.family == _AF_UNIX
    return fd.kind.value == spec


@dataclass(frozen=True, slots=True)
class Conditions:
    """All given conditions must hold (an empty tuple / None means: not asked)."""

    event: str = "exec"
    program: tuple[str, ...] = ()  # names or globs; any of ExecFacts.names
    stdin: tuple[str, ...] = ()  # fd specs (_FD_SPECS), any
    stdout: tuple[str, ...] = ()
    stdin_or_stdout: tuple[str, ...] = ()
    program_from_stdin: bool | None = None
    stdin_pipe_from: tuple[str, ...] = ()  # names or globs of a writer of fd 0's pipe
    exe_age_max_s: float | None = None
    exe_same_tree: bool | None = None
    exe_elf: bool | None = None
    exe_in: tuple[str, ...] = ()  # globs on the executable's path
    argv_truncated: bool | None = None
    exe_unnamed: bool | None = None


@dataclass(frozen=True, slots=True)
class ExecRule:
    id: str
    title: str
    severity: Severity
    action: Action
    explanation: str
    when: Conditions
    examples_match: tuple[Mapping[str, Any], ...]
    examples_nomatch: tuple[Mapping[str, Any], ...]
    source: str  # file:line


def _names_match(patterns: tuple[str, ...], names: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(n, p) for n in names for p in patterns)


def rule_matches(rule: ExecRule, facts: ExecFacts) -> bool:
    c = rule.when
    if c.event != facts.event:
        return False
    if c.program and not _names_match(c.program, facts.names):
        return False
    fds = facts.fds or (None, None, None)
    if c.stdin and not any(_fd_is(fds[0], s) for s in c.stdin):
        return False
    if c.stdout and not any(_fd_is(fds[1], s) for s in c.stdout):
        return False
    if c.stdin_or_stdout and not any(_fd_is(fd, s) for fd in fds[:2]
                                     for s in c.stdin_or_stdout):
        return False
    if c.program_from_stdin is not None and program_from_stdin(facts) != c.program_from_stdin:
        return False
    if c.stdin_pipe_from and not (_fd_is(fds[0], "pipe")
                                  and _names_match(c.stdin_pipe_from, facts.stdin_writers)):
        return False
    if c.exe_age_max_s is not None and (facts.exe_age_s is None
                                        or facts.exe_age_s > c.exe_age_max_s):
        return False
    if c.exe_same_tree is not None and facts.exe_same_tree != c.exe_same_tree:
        return False
    if c.exe_elf is not None and facts.exe_elf != c.exe_elf:
        return False
    if c.argv_truncated is not None and facts.argv_truncated != c.argv_truncated:
        return False
    if c.exe_unnamed is not None and facts.exe_unnamed != c.exe_unnamed:
        return False
    return not (c.exe_in and not any(fnmatch.fnmatchcase(facts.program, p) for p in c.exe_in))


_RULE_KEYS = {"id", "title", "severity", "action", "explanation", "when", "examples"}
_LIST_CONDITIONS = {"program", "stdin", "stdout", "stdin_or_stdout", "stdin_pipe_from",
                    "exe_in"}
_BOOL_CONDITIONS = {"program_from_stdin", "exe_same_tree", "exe_elf", "argv_truncated",
                    "exe_unnamed"}
_EXAMPLE_KEYS = {"event", "argv", "program", "stdin", "stdout", "stderr", "stdin_pipe_from",
                 "exe_age_s", "exe_same_tree", "exe_elf", "script", "argv_truncated",
                 "exe_unnamed"}


def _conditions(raw: Any, where: str, rid: str, sets: Mapping[str, frozenset[str]]
                ) -> Conditions:
    if not isinstance(raw, dict) or not raw:
        raise ExecRuleError(where, "'when' must be a non-empty mapping of conditions", rid)
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key == "event":
            if value not in ("exec", "alg_socket"):
                raise ExecRuleError(where, "when.event must be exec or alg_socket", rid)
            values[key] = value
        elif key in _LIST_CONDITIONS:
            items = [value] if isinstance(value, str) else value
            if not isinstance(items, list) or not all(isinstance(v, str) for v in items):
                raise ExecRuleError(where, f"when.{key} must be a string or a list of them", rid)
            expanded: list[str] = []
            for item in items:
                if item.startswith("@"):
                    if item[1:] not in sets:
                        raise ExecRuleError(where, f"when.{key}: unknown set {item}", rid)
                    expanded += sorted(sets[item[1:]])
                elif key in ("stdin", "stdout", "stdin_or_stdout") and item not in _FD_SPECS:
                    raise ExecRuleError(where, f"when.{key}: {item!r} is not one of "
                                        f"{', '.join(_FD_SPECS)}", rid)
                else:
                    expanded.append(item)
            values[key] = tuple(expanded)
        elif key in _BOOL_CONDITIONS:
            if not isinstance(value, bool):
                raise ExecRuleError(where, f"when.{key} must be true or false", rid)
            values[key] = value
        elif key == "exe_age_max_s":
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ExecRuleError(where, "when.exe_age_max_s must be a positive number", rid)
            values[key] = float(value)
        else:
            raise ExecRuleError(where, f"unknown condition when.{key}", rid)
    return Conditions(**values)


def _examples(raw: Any, where: str, rid: str) -> tuple[tuple[Mapping[str, Any], ...],
                                                      tuple[Mapping[str, Any], ...]]:
    if not isinstance(raw, dict) or not raw.get("match") or not raw.get("nomatch"):
        raise ExecRuleError(where, "'examples' needs non-empty 'match' and 'nomatch' lists", rid)
    out = []
    for kind in ("match", "nomatch"):
        items = raw[kind]
        if not isinstance(items, list):
            raise ExecRuleError(where, f"examples.{kind} must be a list", rid)
        for item in items:
            if not isinstance(item, dict) or set(item) - _EXAMPLE_KEYS:
                raise ExecRuleError(where, f"examples.{kind}: each example is a mapping of "
                                    f"{', '.join(sorted(_EXAMPLE_KEYS))}", rid)
        out.append(tuple(items))
    return out[0], out[1]


def load_exec_rules(path: Path | str | None = None) -> tuple[ExecRule, ...]:
    """Every rule in `path` (default: the shipped patterns/exec/); ExecRuleError on a mistake.

    Named sets (`@shells`, `@downloaders`…) come from patterns/_sets.yaml, so
    the exec rules and the Tier-1 rules mean the same programs.
    """
    from attyguard.engine import rules as tier1

    if path is None:
        from attyguard.resources import data_path

        path = data_path("patterns") / "exec"
    root = Path(path)
    files = [root] if root.is_file() else sorted(p for p in root.iterdir()
                                                 if p.suffix in (".yaml", ".yml"))
    sets: dict[str, frozenset[str]] = {}
    sets_file = (root.parent if root.is_file() else root).parent / tier1.SETS_FILE
    if not sets_file.is_file():
        sets_file = (root.parent if root.is_file() else root) / tier1.SETS_FILE
    if sets_file.is_file():
        try:
            doc = tier1._parse_yaml(sets_file.read_text(encoding="utf-8"), str(sets_file))
            sets = tier1._parse_sets(doc.get("sets") if isinstance(doc, dict) else None,
                                     str(sets_file), {})
        except tier1.RuleError as exc:
            raise ExecRuleError(exc.source, exc.detail) from None
    rules: list[ExecRule] = []
    seen: dict[str, str] = {}
    for file in files:
        if file.name == tier1.SETS_FILE:
            continue
        name = str(file)
        try:
            doc = tier1._parse_yaml(file.read_text(encoding="utf-8"), name)
        except tier1.RuleError as exc:
            raise ExecRuleError(exc.source, exc.detail) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ExecRuleError(f"{name}:0", f"cannot read: {exc}") from None
        if doc is None:
            continue
        if not isinstance(doc, dict) or not isinstance(doc.get("rules"), list):
            raise ExecRuleError(f"{name}:1", "an exec rule file is a mapping with 'rules:'")
        lines = getattr(doc["rules"], "lines", [1] * len(doc["rules"]))
        for raw, line in zip(doc["rules"], lines, strict=True):
            rule = _build_exec_rule(raw, f"{name}:{getattr(raw, 'line', line) or line}", sets)
            if rule.id in seen:
                raise ExecRuleError(rule.source, f"duplicate id (first at {seen[rule.id]})",
                                    rule.id)
            seen[rule.id] = rule.source
            rules.append(rule)
    return tuple(rules)


def _build_exec_rule(raw: Any, where: str, sets: Mapping[str, frozenset[str]]) -> ExecRule:
    if not isinstance(raw, dict):
        raise ExecRuleError(where, "each rule must be a mapping")
    rid = raw.get("id")
    if not isinstance(rid, str) or not rid.startswith("exec."):
        raise ExecRuleError(where, "'id' must be a string starting with 'exec.'")
    unknown = set(raw) - _RULE_KEYS
    if unknown:
        raise ExecRuleError(where, f"unknown field(s): {', '.join(sorted(unknown))}", rid)
    for key in ("title", "explanation"):
        if not isinstance(raw.get(key), str) or not raw[key].strip():
            raise ExecRuleError(where, f"missing required text {key!r}", rid)
    try:
        severity = Severity.parse(str(raw.get("severity", "")))
    except (KeyError, ValueError):
        raise ExecRuleError(where, "'severity' must be LOW, MEDIUM, HIGH or CRITICAL",
                            rid) from None
    if raw.get("action") not in ("warn", "block"):
        raise ExecRuleError(where, "'action' must be warn or block", rid)
    match, nomatch = _examples(raw.get("examples"), where, rid)
    return ExecRule(id=rid, title=" ".join(raw["title"].split()), severity=severity,
                    action=Action(raw["action"]), explanation=" ".join(raw["explanation"].split()),
                    when=_conditions(raw.get("when"), where, rid, sets),
                    examples_match=match, examples_nomatch=nomatch, source=where)


def _fd_from_spec(spec: str) -> FdInfo:
    if spec == "socket:inet":
        return FdInfo(FdKind.SOCKET, 1, _AF_INET)
    if spec == "socket:unix":
        return FdInfo(FdKind.SOCKET, 1, _AF_UNIX)
    return FdInfo(FdKind(spec), 1 if spec in ("pipe", "socket", "file") else 0)


def facts_from_example(example: Mapping[str, Any]) -> ExecFacts:
    """A rule example (a small mapping, see patterns/exec/README.md) as ExecFacts."""
    argv = tuple(str(a) for a in example.get("argv", ()))
    fds = tuple(_fd_from_spec(str(example.get(k, "tty"))) for k in ("stdin", "stdout", "stderr"))
    age = example.get("exe_age_s")
    return ExecFacts(
        program=str(example.get("program", argv[0] if argv else "")),
        argv=argv, fds=(fds[0], fds[1], fds[2]), event=str(example.get("event", "exec")),
        script_text=example.get("script"),
        stdin_writers=tuple(str(w) for w in example.get("stdin_pipe_from", ())),
        exe_age_s=float(age) if age is not None else None,
        exe_same_tree=bool(example.get("exe_same_tree", False)),
        exe_elf=bool(example.get("exe_elf", False)),
        argv_truncated=bool(example.get("argv_truncated", False)),
        exe_unnamed=bool(example.get("exe_unnamed", False)))


def run_exec_examples(rules: Iterable[ExecRule]) -> list[str]:
    """Every rule against its own examples; one located message per failure."""
    failures = []
    for rule in rules:
        for example in rule.examples_match:
            if not rule_matches(rule, facts_from_example(example)):
                failures.append(f"{rule.source}: rule {rule.id!r}: should match {example}")
        for example in rule.examples_nomatch:
            if rule_matches(rule, facts_from_example(example)):
                failures.append(f"{rule.source}: rule {rule.id!r}: should not match {example}")
    return failures


# --------------------------------------------------------------------------- judgement


@dataclass(frozen=True, slots=True)
class ExecJudgement:
    """block: deny (enforce) / would deny (warn, audit); warn: an event only; allow."""

    action: Action
    reason: str = ""
    rules: tuple[str, ...] = ()


BOUNDED_RULE = "engine.analysis-bounded"  # the engine's "could not finish" hit
_FEED_PREFIXES = ("sigma:", "gtfobins:")
SCRIPT_UNJUDGED_RULE = "exec.script-unjudged"


def script_lines(text: str) -> Iterator[str]:
    """A script as the lines bash reads (backslash-continued lines joined), blank ones skipped."""
    pending = ""
    for raw in text.split("\n"):
        if raw.endswith("\\") and not raw.endswith("\\\\"):
            pending += raw[:-1]
            continue
        line, pending = pending + raw, ""
        if line.strip() and not line.lstrip().startswith("#"):
            yield line
    if pending.strip():
        yield pending


def judge(facts: ExecFacts, *, critical: str | None, engine: Callable[[str], Verdict],
          rules: Iterable[ExecRule], budget_s: float = 0.1,
          clock: Callable[[], float] = time.monotonic) -> ExecJudgement:
    """The judgement of one exec. `critical`: the reason its tree is Critical, else None.

    Tier-1 hits that only warn do not make an exec event: the user has seen
    (and answered) such lines at the prompt; only a Tier-1 block is carried
    over, so the exec is refused exactly when the same words typed as one
    line would have been.

    A script too large or too complex for the engine as a whole (its verdict
    is "analysis bounded": padding a script must not hide its payload) is
    judged again line by line within `budget_s`; what cannot be judged in
    time is a warn (`exec.script-unjudged`), never silently allowed.
    """
    if critical is not None:
        return ExecJudgement(Action.BLOCK, f"process tree is Critical ({critical})",
                             (TREE_CRITICAL_RULE,))
    found: list[tuple[Action, str, tuple[str, ...]]] = []
    feeds: list[RuleHit] = []
    for line in exec_view(facts):
        verdict = engine(line)
        # Outside feeds (Sigma, GTFOBins: attyguard feeds) judge execs by design:
        # their hits go with the exec's record at their own action (a Sigma rule
        # lowered to allow only names itself there).
        feeds += [h for h in verdict.rules if h.rule_id.startswith(_FEED_PREFIXES)]
        if verdict.action is not Action.BLOCK \
                and any(h.rule_id == BOUNDED_RULE for h in verdict.rules):
            verdict = _judge_lines(line, engine, clock() + budget_s, clock)
            if verdict.action is Action.WARN:
                found.append((Action.WARN, "code too large to judge in time",
                              (SCRIPT_UNJUDGED_RULE,)))
        if verdict.action is Action.BLOCK:
            found.append((Action.BLOCK, verdict.reason,
                          tuple(h.rule_id for h in verdict.rules if h.action is Action.BLOCK)))
            break
    for rule in rules:
        if rule_matches(rule, facts):
            found.append((rule.action, rule.title, (rule.id,)))
    found += [(h.action, h.title, (h.rule_id,)) for h in feeds if h.action is not Action.ALLOW]
    if not found:
        noted = tuple(dict.fromkeys(h.rule_id for h in feeds))
        return ExecJudgement(Action.ALLOW, feeds[0].title if feeds else "", noted)
    action = Action.strongest(tuple(a for a, _, _ in found))
    strongest = [f for f in found if f[0] is action]
    ids = tuple(dict.fromkeys(i for f in strongest for i in f[2]))
    return ExecJudgement(action, strongest[0][1], ids)


def _judge_lines(text: str, engine: Callable[[str], Verdict], deadline: float,
                 clock: Callable[[], float]) -> Verdict:
    """The first block among the script's lines; WARN when time ran out first, else ALLOW."""
    for line in script_lines(text):
        if clock() > deadline:
            return Verdict(Action.WARN)
        verdict = engine(line)
        if verdict.action is Action.BLOCK:
            return verdict
    return Verdict(Action.ALLOW)


# --------------------------------------------------------------------------- impure


def _read_head(path: str, size: int) -> bytes:
    """The first `size` bytes of a regular file; b"" for anything else. A FIFO or a
    pipe (`bash /dev/fd/63` from `bash <(…)`) is never read: opening a FIFO would
    wait for a writer, and reading a task's pipe would steal its script."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError:
        return b""
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return b""
        os.set_blocking(fd, True)
        with open(fd, "rb", closefd=False) as f:
            return f.read(size)
    except OSError:
        return b""
    finally:
        os.close(fd)


# Names of the exec'ing task's own fds: read through its /proc entry, not ours
# (`bash /proc/self/fd/3` with fd 3 a memfd holding the script).
_OWN_FD_PREFIXES = (("/proc/self/", "/proc/{pid}/"), ("/proc/thread-self/", "/proc/{pid}/"),
                    ("/dev/fd/", "/proc/{pid}/fd/"))
_OWN_FD_NAMES = {"/dev/stdin": "/proc/{pid}/fd/0"}


def _resolve(pid: int, path: str) -> str:
    """`path` as the process sees it (relative to its cwd, /proc/self its own)."""
    for prefix, theirs in _OWN_FD_PREFIXES:
        if path.startswith(prefix):
            return theirs.format(pid=pid) + path[len(prefix):]
    if path in _OWN_FD_NAMES:
        return _OWN_FD_NAMES[path].format(pid=pid)
    if not path or path.startswith("/"):
        return path
    return f"/proc/{pid}/cwd/{path}"


def _proc_names(pid: int) -> tuple[str, ...]:
    names = []
    with contextlib.suppress(OSError):
        names.append(os.path.basename(os.readlink(f"/proc/{pid}/exe")))
    raw = _read_head(f"/proc/{pid}/cmdline", 4096)
    if raw:
        names.append(os.path.basename(raw.split(b"\0", 1)[0].decode("utf-8", "replace")))
    return tuple(dict.fromkeys(n for n in names if n))


def _children(pid: int) -> list[int]:
    raw = _read_head(f"/proc/{pid}/task/{pid}/children", 65536)
    return [int(x) for x in raw.split() if x.isdigit()]


def pipe_writers(pid: int, ppid: int, inode: int) -> tuple[str, ...]:
    """Names of the processes near `pid` that hold pipe `inode` as their fd 1.

    The other end of `a | b` is a sibling (or, when `a` is a function or a
    subshell, a sibling's child). Racy: at the moment `b` execs, `a` may not
    have exec'd its program yet (it is still a bash), so this can miss it.
    """
    target = f"pipe:[{inode}]"
    found: list[str] = []
    frontier = [c for c in _children(ppid) if c != pid]
    for depth in range(2):
        nxt: list[int] = []
        for other in frontier[:64]:
            try:
                if os.readlink(f"/proc/{other}/fd/1") == target:
                    found += _proc_names(other)
            except OSError:
                continue
            if depth == 0:
                nxt += _children(other)
        frontier = nxt
    return tuple(dict.fromkeys(found))


def gather(event: ExecEvent, *, tree_since: float | None, tree_uid: int | None,
           known_writers: Mapping[int, tuple[str, ...]] | None = None,
           now: float | None = None) -> ExecFacts:
    """The facts of `event`, read from /proc and the filesystem (racy, bounded)."""
    now = time.time() if now is None else now
    program = event.filename
    argv = event.argv
    path = _resolve(event.tgid, program)
    head = _read_head(path, 4096)
    script_text: str | None = None
    names = {os.path.basename(argv[0]) if argv else "", os.path.basename(program)}
    if head.startswith(b"#!"):
        # A script exec'd directly: the kernel runs its interpreter on it.
        interpreter = head[2:].split(b"\n", 1)[0].split()
        words = [os.path.basename(w.decode("utf-8", "replace")) for w in interpreter[:2]]
        if words and (is_shell(words[0]) or (words[0] == "env" and len(words) > 1
                                             and is_shell(words[1]))):
            script_text = _read_head(path, SCRIPT_MAX_BYTES).decode("utf-8", "replace")
    elif any(is_shell(n) for n in names):
        how, what = _shell_target(argv)
        if how == "file" and what:
            script_text = _read_head(_resolve(event.tgid, what), SCRIPT_MAX_BYTES) \
                .decode("utf-8", "replace") or None
    writers: tuple[str, ...] = ()
    fds = event.fds
    if fds is not None and fds[0].kind is FdKind.PIPE and fds[0].inode:
        writers = tuple(known_writers.get(fds[0].inode, ())) if known_writers else ()
        writers += pipe_writers(event.tgid, event.ppid, fds[0].inode)
    age: float | None = None
    same_tree = False
    try:
        st = os.stat(path)
        changed = max(st.st_mtime, st.st_ctime)
        age = max(0.0, now - changed)
        same_tree = (tree_since is not None and changed >= tree_since
                     and tree_uid is not None and st.st_uid == tree_uid)
    except OSError:
        pass
    return ExecFacts(program=program, argv=argv, fds=fds, script_text=script_text,
                     stdin_writers=tuple(dict.fromkeys(writers)), exe_age_s=age,
                     exe_same_tree=same_tree, exe_elf=head.startswith(b"\x7fELF"),
                     argv_truncated=event.argv_truncated,
                     exe_unnamed=event.exe_unnamed or _unnamed_path(program))


def _unnamed_path(path: str) -> bool:
    """A path as /proc shows a memfd or a deleted file (fanotify's view of one)."""
    return path.startswith("/memfd:") or path.endswith(" (deleted)")


@dataclass(slots=True)
class _Tree:
    pid: int
    start_time: float
    uid: int
    since: float  # wall clock of the registration
    alive: bool = True  # the shell itself; its tree lives on while members do
    members: int = 0  # processes mapped to it in the fork cache


# How long, and how many, exited members stay known to `GuardedTrees.owner`: longer
# than a warn judgement queued behind a burst of execs takes.
_GONE_S = 30.0
_GONE_KEPT = 4096


class GuardedTrees:
    """Which processes are in scope, and the guarded shell each belongs to.

    `sessions`: a process is guarded when a registered shell is itself or an
    ancestor (walked through the live /proc parent chain, so processes that
    existed before the registration count too). Fork events, when a sensor
    gives them, fill a small cache so most lookups read nothing, and keep
    orphans in their tree: `nohup x & exit` does not leave the scope when the
    shell exits (the tree is forgotten once its last known member exits).
    """

    def __init__(self, table: Any, *, scope: str = "sessions", group: str = "",
                 max_depth: int = 128) -> None:
        self.table = table  # threats.ProcessTable
        self.scope = scope
        self.group = group
        self.max_depth = max_depth
        self._trees: dict[int, _Tree] = {}
        self._owner: OrderedDict[int, int] = OrderedDict()  # pid -> registered root pid
        # Exited members (pid -> (root, monotonic time)), kept briefly: an exec
        # judged after the fact (warn: the task went on) may be asked about once
        # its process is gone from /proc and its exit has unmapped it.
        self._gone: OrderedDict[int, tuple[int, float]] = OrderedDict()
        self._lock = threading.Lock()
        self._group_uids: tuple[float, frozenset[int]] = (0.0, frozenset())

    def __len__(self) -> int:
        return len(self._trees)

    def register(self, pid: int) -> bool:
        info = self.table.info(pid)
        if info is None:
            return False
        with self._lock:
            old = self._trees.get(pid)
            tree = _Tree(pid, info.start_time, info.uid, time.time())
            if old is not None and old.start_time == info.start_time:
                tree.since, tree.members = old.since, old.members  # (registered again)
            self._trees[pid] = tree
            self._map(pid, pid)
        return True

    def _map(self, pid: int, root: int) -> None:
        """Put `pid` in `root`'s tree in the cache (lock held)."""
        previous = self._owner.get(pid)
        if previous == root:
            return
        if previous is not None:
            self._unmap(pid)
        self._owner[pid] = root
        tree = self._trees.get(root)
        if tree is not None:
            tree.members += 1
        while len(self._owner) > 65536:
            self._unmap(next(iter(self._owner)))

    def _unmap(self, pid: int) -> None:
        root = self._owner.pop(pid, None)
        tree = self._trees.get(root) if root is not None else None
        if tree is not None:
            tree.members -= 1
            if not tree.alive and tree.members <= 0:
                del self._trees[tree.pid]

    def unregister(self, pid: int) -> bool:
        with self._lock:
            gone = self._trees.pop(pid, None) is not None
            for child in [c for c, root in self._owner.items() if root == pid]:
                del self._owner[child]
        return gone

    def roots(self) -> list[dict[str, Any]]:
        with self._lock:
            return [{"pid": t.pid, "uid": t.uid, "since": round(t.since, 3), "alive": t.alive,
                     "members": t.members} for t in self._trees.values()]

    def tree(self, root: int) -> _Tree | None:
        return self._trees.get(root)

    def forked(self, parent: int, child: int) -> None:
        with self._lock:
            root = self._owner.get(parent)
            if root is not None and root in self._trees:
                self._map(child, root)

    def exited(self, pid: int) -> int | None:
        """Forget `pid`; its root's pid when `pid` was a registered shell."""
        with self._lock:
            tree = self._trees.get(pid)
            if tree is not None:
                tree.alive = False
            root = self._owner.get(pid)
            if root is not None:
                self._gone[pid] = (root, time.monotonic())
                self._gone.move_to_end(pid)
                while len(self._gone) > _GONE_KEPT:
                    self._gone.popitem(last=False)
            self._unmap(pid)
            return pid if tree is not None else None

    def owner(self, pid: int, ppid: int = 0) -> int | None:
        """The registered shell whose tree holds `pid` (None if none)."""
        with self._lock:
            for candidate in (pid, ppid):
                root = self._owner.get(candidate)
                if root is not None and root in self._trees:
                    return root
            if not self._trees:
                return None
        current = pid
        seen = 0
        while current > 1 and seen < self.max_depth:
            seen += 1
            tree = self._trees.get(current)
            info = self.table.info(current)
            if info is None:
                if current == pid:
                    gone = self._recently_exited(pid)
                    if gone is not None:
                        return gone
                if current == pid and ppid:
                    current = ppid  # the process is gone already: try its parent
                    continue
                return None
            if tree is not None and tree.start_time == info.start_time:
                with self._lock:
                    self._map(pid, current)
                return current
            current = info.ppid
        return None

    def _recently_exited(self, pid: int) -> int | None:
        """The root of a member that exited within `_GONE_S` (its pid not reused since:
        the caller found no process under it), while that tree is still known."""
        with self._lock:
            entry = self._gone.get(pid)
            if entry is None or time.monotonic() - entry[1] > _GONE_S:
                return None
            return entry[0] if entry[0] in self._trees else None

    def in_scope(self, pid: int, ppid: int, uid: int) -> tuple[bool, int | None]:
        """(judge it?, owning shell) for a process under the configured scope."""
        root = self.owner(pid, ppid)
        if self.scope == "all":
            return pid != os.getpid(), root
        if self.scope == "group":
            return uid in self._members(), root
        return root is not None, root

    def _members(self) -> frozenset[int]:
        import grp
        import pwd

        stamp, uids = self._group_uids
        if time.monotonic() - stamp < 30:
            return uids
        try:
            group = grp.getgrnam(self.group)
            names = set(group.gr_mem)
            found = {p.pw_uid for p in pwd.getpwall()
                     if p.pw_gid == group.gr_gid or p.pw_name in names}
        except KeyError:
            found = set()
        self._group_uids = (time.monotonic(), frozenset(found))
        return self._group_uids[1]


@dataclass(slots=True)
class _Window:
    line: str
    until: float


@dataclass
class TrustWindows:
    """Lines the user trusted, open per guarded shell until its next line.

    The shell says `trusted` (with the line) just before it forwards a line
    that its trust store allowed; until that shell asks about its next line
    (a `classify`, `trusted` or `register` request from the same process,
    which means the trusted command has finished: the shell only asks after
    bash's D mark) or `max_s` passes, execs in that shell's tree that would be
    blocked are allowed and recorded as `allow` with the note "trusted line".
    A Critical tree is never opened. Background jobs of the trusted line that
    outlive the window are judged again like any other exec.
    """

    max_s: float = 600.0
    _open: dict[int, _Window] = field(default_factory=dict)

    def open(self, root: int, line: str, now: float | None = None) -> None:
        self._open[root] = _Window(line, (time.monotonic() if now is None else now) + self.max_s)

    def close(self, root: int) -> None:
        self._open.pop(root, None)

    def active(self, root: int | None, now: float | None = None) -> str | None:
        if root is None:
            return None
        window = self._open.get(root)
        if window is None:
            return None
        if (time.monotonic() if now is None else now) > window.until:
            del self._open[root]
            return None
        return window.line
