"""Which files a parsed line hands to a shell as code (pure).

A line can run code that is not in its text: `source FILE`, `. FILE`,
`bash FILE`, `bash < FILE`, `cat FILE | sh`, `bash -c "$(cat FILE)"`,
`eval "$(< FILE)"`, `BASH_ENV=FILE bash -c …`, `ENV=FILE sh -i`,
`bash --rcfile FILE -i`. This module names those files (as written: `~` and
relative paths are the caller's to resolve) and where the line names them,
so the caller (attyguard.filejudge) can read each once, judge its text with
the line, and point bash at the bytes it judged.

It asks nothing of the parser beyond its public `Parsed`/`Command`/`Word`
types. A file named by an expansion (`source "$f"`) is not listed: its name
is not in the line (the shell's state lookup resolves such names).
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

from attyguard.engine.parse import SHELLS, Command, Parsed, Word

__all__ = ["FileRead", "files_read", "shell_startup_reads"]

Span = tuple[int, int]

# How a file reaches a shell; the caller words its messages from these.
SOURCE = "source"  # `source F`, `. F`: run in the current shell
SCRIPT = "script"  # `bash F`: a new shell runs it as its script
STDIN = "stdin"  # `bash < F`, `cat F | bash`: a shell reads it as its commands
SUBSTITUTION = "substitution"  # `bash -c "$(cat F)"`, `eval "$(< F)"`
BASH_ENV = "BASH_ENV"  # read by a non-interactive bash before its command
ENV = "ENV"  # read by an interactive POSIX-mode shell / sh
RCFILE = "rcfile"  # `--rcfile F` / `--init-file F`


@dataclass(frozen=True, slots=True)
class FileRead:
    path: str  # as the line writes it, after quote removal
    how: str  # one of the constants above
    # The span of the word naming the file (in the line's characters); for a
    # command nested in a `-c`/eval string, the span of that whole string.
    span: Span
    # True when `span` is exactly the file's word, so it can be replaced by
    # another path; False when the name is somewhere inside `span`.
    exact: bool


# Shell options that take the next word as their value.
_SHELL_VALUE_OPTS = frozenset({"-o", "+o", "-O", "+O", "--rcfile", "--init-file"})
_CODE_TAKERS = frozenset({"eval", "source", "."})
# `$(< F)` and `$(cat F)` / `` `cat F` `` inside a word that is run as code.
_SUBST = re.compile(r"""\$\(\s*(?:<|cat\s+(?:--\s+)?)\s*([^\s)"'`;|&<>]+)\s*\)"""
                    r"""|`\s*(?:<|cat\s+)\s*([^\s`"';|&<>]+)\s*`""")


def _literal(word: Word) -> bool:
    return not word.dynamic and word.value != ""


def _assignment_value(assignments: tuple[str, ...], name: str) -> str | None:
    for item in assignments:
        key, sep, value = item.partition("=")
        if sep and key == name:
            return value
    return None


@dataclass(frozen=True, slots=True)
class _ShellArgs:
    dash_c: bool
    dash_s: bool
    interactive: bool
    posix: bool
    rcfile: Word | None
    script: Word | None


def _shell_args(args: tuple[Word, ...]) -> _ShellArgs:
    dash_c = dash_s = interactive = posix = False
    rcfile: Word | None = None
    i = 0
    while i < len(args):
        value = args[i].value
        if value == "--":
            i += 1
            break
        if value in _SHELL_VALUE_OPTS:
            if value in ("--rcfile", "--init-file") and i + 1 < len(args):
                rcfile = args[i + 1]
            if value == "-o" and i + 1 < len(args) and args[i + 1].value == "posix":
                posix = True
            i += 2
            continue
        if value.startswith("--"):
            posix = posix or value == "--posix"
            i += 1
            continue
        if len(value) > 1 and value[0] in "-+":
            if value[0] == "-":
                dash_c = dash_c or "c" in value[1:]
                dash_s = dash_s or "s" in value[1:]
                interactive = interactive or "i" in value[1:]
            i += 1
            continue
        break
    script = args[i] if i < len(args) and not dash_c and not dash_s else None
    return _ShellArgs(dash_c, dash_s, interactive, posix, rcfile, script)


def shell_startup_reads(name: str, args: tuple[Word, ...],
                        assignments: tuple[str, ...], span: Span) -> list[FileRead]:
    """Files a shell started as `NAME ARGS` (with these assignments) reads before its commands."""
    sh = _shell_args(args)
    reads: list[FileRead] = []
    if sh.rcfile is not None and sh.interactive and _literal(sh.rcfile):
        reads.append(FileRead(sh.rcfile.value, RCFILE, sh.rcfile.span, True))
    # bash reads BASH_ENV when not interactive; an interactive POSIX-mode bash
    # (or sh) reads ENV. Listing one a shell skips only costs a look at it.
    bash_env = _assignment_value(assignments, "BASH_ENV")
    if bash_env and not sh.interactive:
        reads.append(FileRead(bash_env, BASH_ENV, span, False))
    env = _assignment_value(assignments, "ENV")
    if env and sh.interactive and (sh.posix or name != "bash"):
        reads.append(FileRead(env, ENV, span, False))
    return reads


def _within(inner: Span, outer: Span) -> bool:
    return outer[0] <= inner[0] and inner[1] <= outer[1]


def _code_words(command: Command) -> list[Word]:
    """The words of `command` that are run as shell code (eval's, `sh -c`'s string)."""
    if command.name == "eval":
        return list(command.args)
    if command.name in SHELLS:
        values = [w.value for w in command.args]
        for i, value in enumerate(values):
            if value.startswith("-") and not value.startswith("--") and "c" in value[1:]:
                return list(command.args[i + 1:i + 2])
    return []


def files_read(parsed: Parsed) -> tuple[FileRead, ...]:
    """Every file the line hands to a shell as code, in the order the line names them."""
    reads: list[FileRead] = []
    commands = parsed.commands
    for command in commands:
        exact = command.depth == 0
        if command.name in ("source", ".") and command.args:
            first = command.args[0]
            if first.value == "--" and len(command.args) > 1:
                first = command.args[1]
            if _literal(first):
                reads.append(FileRead(first.value, SOURCE, first.span, exact))
        elif command.name in SHELLS:
            sh = _shell_args(command.args)
            if sh.script is not None and _literal(sh.script):
                reads.append(FileRead(sh.script.value, SCRIPT, sh.script.span, exact))
            if sh.script is None and not sh.dash_c:
                for redirect in command.redirects:
                    if redirect.op == "<" and redirect.fd in ("", "0") and redirect.target:
                        reads.append(FileRead(redirect.target, STDIN, redirect.span, False))
            reads.extend(r if exact else FileRead(r.path, r.how, r.span, False)
                         for r in shell_startup_reads(command.name, command.args,
                                                      command.assignments, command.span))
        for word in _code_words(command):
            for m in _SUBST.finditer(word.value):
                path = m.group(1) or m.group(2)
                reads.append(FileRead(path, SUBSTITUTION, word.span, False))
            if not word.dynamic:
                continue
            # `bash -c "$(cat F)"`: the `cat` inside the word (parsed at depth 0)
            # names F exactly.
            for inner in commands:
                if (inner.name == "cat" and inner is not command and inner.depth == command.depth
                        and _within(inner.span, word.span)):
                    reads.extend(FileRead(w.value, SUBSTITUTION, w.span, inner.depth == 0)
                                 for w in inner.args if _literal(w) and not
                                 w.value.startswith("-"))
    for pipeline in parsed.pipelines:
        # `cat F | bash`: the shell at the end of the pipe runs F.
        for feeder, consumer in itertools.pairwise(pipeline):
            if feeder.name != "cat" or consumer.name not in SHELLS:
                continue
            sh = _shell_args(consumer.args)
            if sh.dash_c or sh.script is not None:
                continue
            reads.extend(FileRead(w.value, STDIN, w.span, feeder.depth == 0)
                         for w in feeder.args if _literal(w) and not w.value.startswith("-"))
    # One entry per (file, way): the exact mention wins, as it can be re-pointed.
    unique: dict[tuple[str, str], FileRead] = {}
    for read in reads:
        known = unique.get((read.path, read.how))
        if known is None or (read.exact and not known.exact):
            unique[(read.path, read.how)] = read
    return tuple(unique.values())
