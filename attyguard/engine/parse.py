"""Bash text -> simple commands, pipelines and redirections (tree-sitter-bash, bounded).

This module owns the structural view rules match against. It parses with
tree-sitter (error tolerant: a half-typed line still yields its commands),
walks the tree once and produces frozen `Command`s in execution order, the
pipelines they form, and every redirection. It looks inside `$(…)`, backticks,
`<(…)`/`>(…)`, here-documents and here-strings fed to shells, `bash -c`/`sh -c`/
`eval`/`su -c` strings, and strips wrappers (`sudo`, `env`, `nohup`, `timeout`,
`xargs`, `busybox`, `find -exec`, …) so that `sudo -u x env A=1 bash -c '…'`
is seen as the `bash` it runs.

Work is bounded three ways — a parse deadline through tree-sitter's progress
callback (the only form of `parse` that honours it), a nesting depth and a
total node budget — and hitting a bound is reported (`Parsed.bounded`), never
silently ignored.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import tree_sitter
import tree_sitter_bash

from attyguard.engine.normalize import (
    KNOWN_PROGRAMS,
    command_basename,
    decode_ansi_c,
    prepass,
    resolve_glob_path,
    unescape_double,
    unescape_unquoted,
)

__all__ = [
    "SHELLS",
    "Command",
    "Limits",
    "Parsed",
    "Redirect",
    "Word",
    "parse",
]

SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "fish", "csh", "tcsh",
                    "rbash", "yash", "posh", "busybox-sh"})

Span = tuple[int, int]


@dataclass(frozen=True, slots=True)
class Word:
    """One argument after quote removal; `dynamic` when an expansion makes it unknowable."""

    value: str
    span: Span
    dynamic: bool = False


@dataclass(frozen=True, slots=True)
class Redirect:
    op: str  # ">", ">>", "<", "&>", ">&", "<<", "<<<", ...
    target: str  # normalised target word, heredoc/herestring body for << and <<<
    span: Span
    fd: str = ""
    command: str = ""  # the command name the redirection belongs to ("" for compounds)


@dataclass(frozen=True, slots=True)
class Command:
    """A simple command with wrappers stripped: `sudo nice bash -c X` -> name "bash"."""

    name: str  # basename of the normalised command word ("" for bare assignments)
    path: str  # the normalised command word as typed ("/usr/bin/curl")
    args: tuple[Word, ...]
    span: Span
    redirects: tuple[Redirect, ...] = ()
    wrappers: tuple[str, ...] = ()
    assignments: tuple[str, ...] = ()
    depth: int = 0  # 0 = typed at top level; n = inside n layers of bash -c / eval / …
    inside: tuple[str, ...] = ()  # wrappers and names of the commands running this text

    @property
    def argv(self) -> tuple[str, ...]:
        return tuple(w.value for w in self.args)


@dataclass(frozen=True, slots=True)
class Parsed:
    commands: tuple[Command, ...]  # execution order, all nesting levels
    pipelines: tuple[tuple[Command, ...], ...]  # data-flow order; includes $(…)/<(…) feeds
    redirects: tuple[Redirect, ...]
    scripts: tuple[tuple[str, str, Span], ...] = ()  # (interpreter, text, span) non-shell bodies
    bounded: str | None = None  # why analysis stopped early, if it did
    has_error: bool = False


@dataclass(frozen=True, slots=True)
class Limits:
    """Work bounds for one line; hitting one is reported in `Parsed.bounded`."""

    max_depth: int = 6  # nested bash -c / eval / substitution layers
    max_nodes: int = 20_000  # tree nodes visited over all layers
    max_commands: int = 2_000
    deadline_s: float = 0.15  # wall-clock budget for all parses of one line (a normal line: <1 ms)


_LANGUAGE = tree_sitter.Language(tree_sitter_bash.language())
_PARSERS = threading.local()

# Wrapper -> options of it that take a separate argument. After the wrapper and its
# options comes the real command (env also skips NAME=VALUE, timeout its duration…).
_WRAPPERS: dict[str, frozenset[str]] = {
    "sudo": frozenset({"-u", "-g", "-h", "-p", "-C", "-D", "-r", "-t", "-U", "-T", "-R",
                       "--user", "--group", "--host", "--prompt", "--chdir"}),
    "doas": frozenset({"-u", "-C"}),
    "env": frozenset({"-u", "-C", "--unset", "--chdir"}),
    "nice": frozenset({"-n", "--adjustment"}),
    "ionice": frozenset({"-c", "-n", "-p", "--class", "--classdata"}),
    "timeout": frozenset({"-s", "-k", "--signal", "--kill-after"}),
    "nohup": frozenset(),
    "exec": frozenset({"-a"}),
    "command": frozenset(),
    "builtin": frozenset(),
    "time": frozenset({"-f", "-o", "--format", "--output"}),
    "stdbuf": frozenset({"-i", "-o", "-e"}),
    "setsid": frozenset(),
    "unbuffer": frozenset(),
    "xargs": frozenset({"-I", "-n", "-L", "-P", "-d", "-E", "-s", "-a", "--arg-file",
                        "--max-args", "--max-procs", "--delimiter", "--replace"}),
    "busybox": frozenset(),
    "chroot": frozenset({"--userspec", "--groups"}),
    "taskset": frozenset(),
    "runuser": frozenset({"-u", "-g", "-G", "--user", "--group"}),
    "flock": frozenset({"-w", "-E", "--timeout"}),
    "proxychains": frozenset({"-f"}),
    "proxychains4": frozenset({"-f"}),
    "torsocks": frozenset(),
    "watch": frozenset({"-n", "-d", "--interval"}),
    "strace": frozenset({"-o", "-e", "-p", "-s"}),
    "ltrace": frozenset({"-o", "-e", "-p", "-s"}),
    "catchsegv": frozenset(),
}
# Wrappers whose first operand is not the command (timeout DURATION, chroot DIR, …).
_WRAPPER_POSITIONALS = {"timeout": 1, "chroot": 1, "taskset": 1, "flock": 1}
_EVAL_LIKE = frozenset({"eval"})
_SU_LIKE = frozenset({"su", "runuser", "sudo", "script", "flock"})  # `su -c STRING`
_IFS_SENTINEL = "\ue000"
_MAX_LEVEL = 150


class _Bounded(Exception):
    """Raised inside the walk when a bound is hit; `parse` turns it into `bounded`."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class _State:
    """Mutable per-line work account shared by every nested parse of one line."""

    limits: Limits
    deadline: float
    nodes: int = 0
    level: int = 0  # current recursion depth of the walk (Python's stack is finite)
    commands: list[Command] = field(default_factory=list)
    pipelines: list[tuple[Command, ...]] = field(default_factory=list)
    redirects: list[Redirect] = field(default_factory=list)
    scripts: list[tuple[str, str, Span]] = field(default_factory=list)
    has_error: bool = False
    # Variables assigned earlier in the line with a constant value (`a=cu; b=rl; $a$b`).
    variables: dict[str, str] = field(default_factory=dict)

    def tick(self) -> None:
        self.nodes += 1
        if self.level > _MAX_LEVEL:
            raise _Bounded("syntax nested too deeply")
        if self.nodes > self.limits.max_nodes:
            raise _Bounded(f"more than {self.limits.max_nodes} syntax nodes")
        if len(self.commands) > self.limits.max_commands:
            raise _Bounded(f"more than {self.limits.max_commands} commands")


# tree-sitter-bash 0.25 crashes (SIGSEGV, not every time) on characters beyond
# U+1FFFF — seen with `{` followed by one, e.g. U+E0000 or U+100000. None of the
# astral planes (emoji included, to be safe) mean anything to bash's syntax, so
# the parser sees U+FFFD in their place (one character for one: spans in
# characters stay exact; raw-text rules still see the real line).
_UNSAFE_FOR_PARSER = re.compile("[\U00010000-\U0010FFFF]")


def _source(text: str) -> bytes:
    """The bytes tree-sitter parses for `text` (rewritten by prepass, made crash-safe)."""
    text = prepass(text)
    if not text.isascii():
        text = _UNSAFE_FOR_PARSER.sub("\ufffd", text)
    return text.encode("utf-8", "surrogatepass")


def _parse_bytes(src: bytes, deadline: float) -> tree_sitter.Tree:
    """Parse with a deadline: only the read-callback form honours progress_callback."""
    parser = getattr(_PARSERS, "parser", None)
    if parser is None:  # one parser per thread: creating one costs as much as a parse
        parser = _PARSERS.parser = tree_sitter.Parser(_LANGUAGE)
    size = len(src)

    def read(offset: int, _point: tuple[int, int]) -> bytes:
        return src[offset : offset + 65536] if offset < size else b""

    def progress(*_args: object) -> bool:
        return time.monotonic() > deadline

    try:
        tree = parser.parse(read, progress_callback=progress)
    except ValueError as exc:  # raised when the progress callback cancels
        # A cancelled parser resumes the old parse on its next call unless reset.
        parser.reset()
        raise _Bounded("parse deadline exceeded") from exc
    if tree is None:
        parser.reset()
        raise _Bounded("parse deadline exceeded")
    return tree


def _byte_to_char(src: bytes) -> list[int]:
    """Character offset of every byte offset of UTF-8 `src` (chars starting before it)."""
    out = [0] * (len(src) + 1)
    chars = 0
    for i, b in enumerate(src):
        out[i] = chars
        if b & 0xC0 != 0x80:
            chars += 1
    out[len(src)] = chars
    return out


class _Walker:
    """One walk over one parse tree; nested texts get their own walker (depth + 1)."""

    def __init__(self, src: bytes, state: _State, depth: int, outer: Span | None,
                 inside: tuple[str, ...] = ()) -> None:
        self.inside = inside
        self.src = src
        # Redirections tree-sitter put on an enclosing pipeline/list, by command node id.
        self.pending: dict[int, list[tree_sitter.Node]] = {}
        self.state = state
        self.depth = depth
        self.outer = outer  # spans of a nested text map onto its word in the real line
        # Spans are reported in characters of the line; tree-sitter counts bytes.
        self.b2c: list[int] | None = None
        if outer is None and not src.isascii():
            self.b2c = _byte_to_char(src)

    # -- helpers -------------------------------------------------------------
    def text(self, node: tree_sitter.Node) -> str:
        return self.src[node.start_byte : node.end_byte].decode("utf-8", "replace")

    def span(self, node: tree_sitter.Node) -> Span:
        if self.outer is not None:
            return self.outer
        if self.b2c is not None:
            return (self.b2c[node.start_byte], self.b2c[node.end_byte])
        return (node.start_byte, node.end_byte)

    # -- statements ----------------------------------------------------------
    def visit(self, node: tree_sitter.Node, in_pipeline: bool = False) -> list[Command]:
        """Commands produced by `node`, in data-flow order; registers pipelines."""
        self.state.level += 1
        try:
            return self._visit(node, in_pipeline)
        finally:
            self.state.level -= 1

    def _visit(self, node: tree_sitter.Node, in_pipeline: bool) -> list[Command]:
        self.state.tick()
        kind = node.type
        if kind == "pipeline":
            flow: list[Command] = []
            for child in node.named_children:
                flow.extend(self.visit(child, in_pipeline=True))
            self.state.pipelines.append(tuple(flow))
            return flow
        if kind == "command":
            return self.command(node, in_pipeline)
        if kind in ("declaration_command", "unset_command"):
            return self.declaration(node, in_pipeline)
        if kind == "redirected_statement":
            return self.redirected(node, in_pipeline)
        if kind in ("command_substitution", "process_substitution"):
            out: list[Command] = []
            for child in node.named_children:
                out.extend(self.visit(child))
            return out
        if kind in ("variable_assignment", "variable_assignments"):  # bare `a=cu` statement
            parts = [node] if kind == "variable_assignment" else [
                c for c in node.named_children if c.type == "variable_assignment"
            ]
            inner: list[Command] = []
            values: list[str] = []
            for part in parts:
                value, dynamic, feeding, _post = self.word_value(part)
                self.remember(value, dynamic)
                inner.extend(feeding)
                values.append(value)
            cmd = Command("", "", (), self.span(node), assignments=tuple(values),
                          depth=self.depth, inside=self.inside)
            self.state.commands.append(cmd)
            return [*inner, cmd]
        if kind == "ERROR":
            self.state.has_error = True
        out = []
        for child in node.named_children:
            out.extend(self.visit(child))
        return out

    def redirected(self, node: tree_sitter.Node, in_pipeline: bool) -> list[Command]:
        body = node.child_by_field_name("body")
        redirect_nodes = [c for c in node.named_children if c.type.endswith("redirect")]
        if body is not None and body.type == "command":
            return self.command(body, in_pipeline, redirect_nodes)
        if body is not None and body.type in ("pipeline", "list"):
            # `a | b > f`, `a && b >&3`: tree-sitter hangs the redirection on the whole
            # pipeline or list; bash applies it to the last command.
            last = body
            while last.type in ("pipeline", "list") and last.named_children:
                last = last.named_children[-1]
            if last.type == "command":
                self.pending[last.id] = redirect_nodes
                return self.visit(body, in_pipeline)
        before: list[Command] = []
        after: list[Command] = []
        reds: list[Redirect] = []
        for r in redirect_nodes:
            red, pre, post = self.redirect(r, "")
            reds.append(red)
            before.extend(pre)
            after.extend(post)
        self.state.redirects.extend(reds)
        inner = self.visit(body) if body is not None else []
        return before + inner + after

    def declaration(self, node: tree_sitter.Node, in_pipeline: bool) -> list[Command]:
        pre: list[Command] = []
        words: list[Word] = []
        name = ""
        for child in node.children:
            self.state.tick()
            if not child.is_named:
                if not name:
                    name = self.text(child)
                continue
            if child.type == "variable_assignment":
                value, _dyn, inner, _post = self.word_value(child)
                pre.extend(inner)
                words.append(Word(value, self.span(child)))
            else:
                value, dyn, inner, _post = self.word_value(child)
                pre.extend(inner)
                words.append(Word(value, self.span(child), dyn))
        cmd = Command(name, name, tuple(words), self.span(node), depth=self.depth,
                      inside=self.inside)
        self.state.commands.append(cmd)
        flow = [*pre, cmd]
        if not in_pipeline and pre:
            self.state.pipelines.append(tuple(flow))
        return flow

    def command(
        self,
        node: tree_sitter.Node,
        in_pipeline: bool,
        redirect_nodes: list[tree_sitter.Node] | None = None,
    ) -> list[Command]:
        pre: list[Command] = []  # commands whose output feeds this one ($(…), <(…))
        post: list[Command] = []  # commands this one feeds (>(…))
        assignments: list[str] = []
        words: list[Word] = []
        reds_nodes = [*(redirect_nodes or ()), *self.pending.pop(node.id, ())]
        for child in node.named_children:
            self.state.tick()
            kind = child.type
            if kind == "variable_assignment":
                value, _dyn, inner, after = self.word_value(child)
                assignments.append(value)
                pre.extend(inner)
                post.extend(after)
            elif kind.endswith("redirect"):
                reds_nodes.append(child)
            elif kind == "command_name":
                for sub in child.named_children:
                    self.add_words(sub, words, pre, post)
            else:
                self.add_words(child, words, pre, post)
        extra_scripts: list[tuple[str, Span]] = []
        name_guess = command_basename(words[0].value) if words else ""
        reds: list[Redirect] = []
        for r in reds_nodes:
            red, before, after = self.redirect(r, name_guess)
            reds.append(red)
            pre.extend(before)
            post.extend(after)
            if red.op in ("<<", "<<-", "<<<"):
                extra_scripts.append((red.target, red.span))
        if not words:
            for assignment in assignments:
                self.remember(assignment, False)
        cmds = self.unwrap(words, tuple(reds), tuple(assignments), self.span(node))
        for cmd in cmds:
            self.state.commands.append(cmd)
        self.state.redirects.extend(reds)
        flow = [*pre, *cmds, *post]
        # Text a shell will run: `bash -c STR`, `eval STR`, `su -c STR`, `sh <<<STR`.
        nested: list[Command] = []
        for cmd in cmds:
            for text, span, interp in self.inline_scripts(cmd, extra_scripts):
                if interp in SHELLS or interp in _EVAL_LIKE or interp in _SU_LIKE:
                    nested.extend(self.nested(text, span, (*cmd.wrappers, cmd.name)))
                else:
                    self.state.scripts.append((interp, text, span))
        if nested:
            # The nested commands run inside the shell and read its stdin: they come after it.
            flow = [*pre, *cmds, *nested, *post]
        if not in_pipeline and (pre or post or len(cmds) > 1):
            self.state.pipelines.append(tuple([*pre, *cmds, *post]))
        elif not in_pipeline:
            self.state.pipelines.append(tuple(cmds))
        return flow

    def nested(self, text: str, span: Span, runner: tuple[str, ...]) -> list[Command]:
        if self.depth + 1 > self.state.limits.max_depth:
            raise _Bounded(f"nesting deeper than {self.state.limits.max_depth} layers")
        src = _source(text)
        tree = _parse_bytes(src, self.state.deadline)
        walker = _Walker(src, self.state, self.depth + 1, span, (*self.inside, *runner))
        return walker.visit(tree.root_node)

    def inline_scripts(
        self, cmd: Command, stdin_scripts: list[tuple[str, Span]]
    ) -> list[tuple[str, Span, str]]:
        out: list[tuple[str, Span, str]] = []
        argv = cmd.args
        name = cmd.name
        if name in _EVAL_LIKE and argv:
            out.append((" ".join(w.value for w in argv), argv[0].span, name))
            return out
        if name in ("source", "."):
            return out
        if name == "alias":  # alias ll='…': the value is shell text run later
            for w in argv:
                if "=" in w.value:
                    out.append((w.value.split("=", 1)[1], w.span, "eval"))
            return out
        if name == "trap" and argv and not argv[0].value.startswith("-"):
            out.append((argv[0].value, argv[0].span, "eval"))
            return out
        if name == "watch" and len(argv) == 1 and " " in argv[0].value:
            out.append((argv[0].value, argv[0].span, "eval"))  # watch 'cmd | cmd'
            return out
        if name in ("su", "runuser", "script", "flock"):  # -c STRING may come anywhere
            for i, w in enumerate(argv[:-1]):
                if w.value in ("-c", "--command", "--session-command"):
                    out.append((argv[i + 1].value, argv[i + 1].span, name))
                    return out
            return out
        takes_c = name in SHELLS
        for i, w in enumerate(argv):
            v = w.value
            if v == "--":
                break
            if takes_c and v.startswith("-") and not v.startswith("--") and "c" in v[1:]:
                if i + 1 < len(argv):
                    out.append((argv[i + 1].value, argv[i + 1].span, name))
                break
            if takes_c and v == "--command" and i + 1 < len(argv):
                out.append((argv[i + 1].value, argv[i + 1].span, name))
                break
            if not v.startswith("-"):
                break
        if not out:
            # Non-shell interpreters' inline code is kept as a script body for regex rules.
            flags = _INLINE_CODE_FLAGS.get(name, frozenset())
            if cmd.path.startswith("$"):  # `$PYTHON -c CODE`: an interpreter held in a variable
                flags = frozenset({"-c", "-e"})
            if flags:
                for i, w in enumerate(argv):
                    if w.value in flags and i + 1 < len(argv):
                        out.append((argv[i + 1].value, argv[i + 1].span, name))
                        break
                    attached = w.value[:2]
                    if attached in flags and len(w.value) > 2:  # ruby -e'code'
                        out.append((w.value[2:], w.span, name))
                        break
            if name in SHELLS or name in _INLINE_CODE_FLAGS:  # `sh <<EOF`, `python3 <<<CODE`
                for text, span in stdin_scripts:
                    out.append((text, span, name))
        return out

    def unwrap(
        self,
        words: list[Word],
        reds: tuple[Redirect, ...],
        assignments: tuple[str, ...],
        span: Span,
    ) -> list[Command]:
        """Strip wrappers; `find … -exec CMD ;` also yields CMD. First command is the outer one."""
        wrappers: list[str] = []
        i = 0
        extra: list[Command] = []
        while i < len(words):
            name = command_basename(words[i].value)
            if name == "busybox" and i + 1 < len(words):
                wrappers.append(name)
                i += 1
                continue
            if name not in _WRAPPERS:
                break
            if name == "command" and i + 1 < len(words) and words[i + 1].value in ("-v", "-V"):
                break  # `command -v curl` looks curl up; it does not run it
            opts = _WRAPPERS[name]
            j = i + 1
            while j < len(words):
                v = words[j].value
                if v == "--":
                    j += 1
                    break
                if name == "env" and "=" in v and not v.startswith("-"):
                    j += 1
                    continue
                if name == "env" and v in ("-S", "--split-string") and j + 1 < len(words):
                    split = [Word(p, words[j + 1].span) for p in words[j + 1].value.split()]
                    words = [*words[: j], *split, *words[j + 2 :]]
                    continue
                if name == "nice" and v.startswith("-") and v[1:].isdigit():
                    j += 1
                    continue
                if v.startswith("-") and len(v) > 1:
                    j += 2 if v in opts else 1
                    continue
                break
            j += _WRAPPER_POSITIONALS.get(name, 0)
            if name == "flock" and j < len(words) and words[j].value in ("-c", "--command"):
                break  # `flock FILE -c STRING`: flock runs the string itself
            if name == "watch" and j == len(words) - 1 and " " in words[j].value:
                break  # `watch 'a | b'`: watch hands the string to sh -c
            if name in ("sudo", "su") and j >= len(words):
                break
            wrappers.append(name)
            i = j
        if i >= len(words):
            # Only wrappers (`sudo -s`, `exec 3>file`): the first word is the command.
            if not words:
                return [Command("", "", (), span, reds, (), assignments, self.depth,
                                self.inside)]
            first = words[0].value
            return [Command(command_basename(first), first, tuple(words[1:]), span, reds, (),
                            assignments, self.depth, self.inside)]
        path = words[i].value
        if words[i].dynamic and "$" in path:
            path = _without_unknown_expansions(path)
        name = command_basename(path)
        args = tuple(words[i + 1 :])
        if name == "find":
            extra = self.find_exec(args, span)
        main = Command(name, path, args, span, reds, tuple(wrappers), assignments, self.depth,
                       self.inside)
        return [main, *extra]

    def find_exec(self, args: tuple[Word, ...], span: Span) -> list[Command]:
        out: list[Command] = []
        i = 0
        while i < len(args):
            if args[i].value in ("-exec", "-execdir", "-ok", "-okdir") and i + 1 < len(args):
                j = i + 1
                while j < len(args) and args[j].value not in (";", "+", "\\;"):
                    j += 1
                inner = list(args[i + 1 : j])
                if inner:
                    out.extend(self.unwrap(inner, (), (), span))
                i = j
            i += 1
        return out

    # -- words ---------------------------------------------------------------
    def add_words(
        self, node: tree_sitter.Node, words: list[Word], pre: list[Command], post: list[Command]
    ) -> None:
        value, dynamic, inner, after = self.word_value(node)
        pre.extend(inner)
        post.extend(after)
        span = self.span(node)
        if node.type == "word" and "/" in value:
            resolved = resolve_glob_path(value)  # an unquoted glob: bash expands it
            if resolved is not None:
                value = resolved
        if _IFS_SENTINEL in value:
            for part in value.split(_IFS_SENTINEL):
                if part:
                    words.append(Word(part, span, dynamic))
            return
        words.append(Word(value, span, dynamic))

    def word_value(
        self, node: tree_sitter.Node, quoted: bool = False
    ) -> tuple[str, bool, list[Command], list[Command]]:
        """(value, dynamic, commands feeding it, commands it feeds) for one word node."""
        self.state.tick()
        kind = node.type
        if kind in ("word", "number", "variable_name", "special_variable_name"):
            t = self.text(node)
            return (unescape_double(t) if quoted else unescape_unquoted(t)), False, [], []
        if kind == "raw_string":
            return self.text(node)[1:-1], False, [], []
        if kind == "string_content":
            return unescape_double(self.text(node)), False, [], []
        if kind == "ansi_c_string":
            return decode_ansi_c(self.text(node)[2:-1]), False, [], []
        if kind in ("string", "translated_string", "concatenation", "variable_assignment"):
            parts: list[str] = []
            dyn = False
            pre: list[Command] = []
            post: list[Command] = []
            inner_quoted = quoted or (kind != "concatenation" and kind != "variable_assignment")
            for child in node.children:
                if not child.is_named:
                    if kind in ("concatenation", "variable_assignment"):
                        parts.append(self.text(child))
                    continue
                v, d, i, p = self.word_value(child, inner_quoted)
                parts.append(v)
                dyn = dyn or d
                pre.extend(i)
                post.extend(p)
            return "".join(parts), dyn, pre, post
        if kind in ("simple_expansion", "expansion"):
            t = self.text(node)
            if t == "$IFS" or t.startswith("${IFS"):
                return (" " if quoted else _IFS_SENTINEL), False, [], []
            known = self.expand(t)
            if known is not None:
                return known, False, [], []
            inner_cmds: list[Command] = []
            for child in node.named_children:
                inner_cmds.extend(self.visit(child))
            return t, True, inner_cmds, []
        if kind == "command_substitution":
            inner = self.visit(node)
            folded = _echo_value(inner)
            if folded is not None:  # `$(echo curl)` is just "curl"
                return folded, False, inner, []
            return self.text(node), True, inner, []
        if kind == "process_substitution":
            cmds = self.visit(node)
            if self.text(node).startswith(">"):
                return self.text(node), True, [], cmds
            return self.text(node), True, cmds, []
        # arithmetic, brace, array, ERROR…: keep the raw text; look inside for commands.
        inner_cmds = []
        for child in node.named_children:
            inner_cmds.extend(self.visit(child))
        return self.text(node), True, inner_cmds, []

    def remember(self, assignment: str, dynamic: bool) -> None:
        name, _, value = assignment.partition("=")
        if dynamic or not name.isidentifier() or _IFS_SENTINEL in value:
            self.state.variables.pop(name, None)
        else:
            self.state.variables[name] = value

    def expand(self, text: str) -> str | None:
        """The value of `$v`, `${v}`, `${v:-word}` when the line itself decides it."""
        m = _EXPANSION_RE.fullmatch(text)
        if m is None:
            return None
        name = m.group(1) or m.group(2)
        value = self.state.variables.get(name)
        if value is not None:
            return value
        default = m.group(4)
        if default is not None and name not in _ENVIRONMENT_DEFAULTS:
            return unescape_unquoted(default.strip("'\""))
        return None

    def redirect(
        self, node: tree_sitter.Node, command: str
    ) -> tuple[Redirect, list[Command], list[Command]]:
        op = ""
        fd = ""
        target = ""
        pre: list[Command] = []
        post: list[Command] = []
        body_parts: list[str] = []
        for child in node.children:
            self.state.tick()
            kind = child.type
            if not child.is_named:
                if not op:
                    op = self.text(child)
                elif op == "<>" and self.text(child) in ("<", ">"):
                    pass
                continue
            if kind == "file_descriptor":
                fd = self.text(child)
            elif kind == "heredoc_body":
                body_parts.append(self.text(child))
            elif kind in ("heredoc_start", "heredoc_end"):
                continue
            elif kind == "ERROR" and self.text(child) in ("<", ">"):
                # tree-sitter-bash does not know the read-write operator `<>`: it leaves
                # one of its halves in an ERROR node, before or after the other.
                op = "<>" if op in ("", "<", ">") else op
            elif kind in ("pipeline", "command", "list", "redirected_statement"):
                # tree-sitter hangs `cat <<EOF | sh` 's pipeline tail on the heredoc node.
                post.extend(self.visit(child, in_pipeline=True))
            elif not target:
                value, _dyn, inner, after = self.word_value(child)
                target = value
                pre.extend(inner)
                post.extend(after)
        if op in ("<<", "<<-"):
            target = "".join(body_parts)
        return Redirect(op, target, self.span(node), fd, command), pre, post


_EXPANSION_RE = re.compile(r"\$(?:([A-Za-z_]\w*)|\{([A-Za-z_]\w*)(:?-(.*))?\})", re.DOTALL)
# Variables whose value comes from the environment: a default is not their value.
_ENVIRONMENT_DEFAULTS = frozenset({"HOME", "PATH", "USER", "SHELL", "PWD", "TMPDIR", "LANG"})


_UNKNOWN_EXPANSION_RE = re.compile(r"\$(?:\{[A-Za-z_@*][^}]*\}|[A-Za-z_]\w*|[@*])")


def _without_unknown_expansions(path: str) -> str:
    """`c${u}rl`, `w$@get` -> `curl`, `wget` when that names a well-known program.

    An unset variable expands to nothing, which is how letters get split apart
    by expansions nobody set. Only applied when the result is a program attackers
    use, so that `$EDITOR` or `$dir/tool` stay as typed.
    """
    bare = _UNKNOWN_EXPANSION_RE.sub("", path)
    if bare != path and bare and command_basename(bare) in KNOWN_PROGRAMS:
        return bare
    return path


def _echo_value(flow: list[Command]) -> str | None:
    """The output of a lone `echo`/`printf %s` with constant arguments, else None."""
    if len(flow) != 1:
        return None
    cmd = flow[0]
    if any(w.dynamic for w in cmd.args) or cmd.redirects:
        return None
    if cmd.name == "echo" and not any(a.startswith("-") for a in cmd.argv):
        return " ".join(cmd.argv)
    # `$(which curl)`, `$(command -v curl)`, `$(type -P curl)`: the program's path.
    lookup = [a for a in cmd.argv if not a.startswith("-")]
    if len(lookup) == 1 and (
        cmd.name == "which" or (cmd.name in ("command", "type") and len(cmd.argv) == 2)
    ):
        return lookup[0]
    if cmd.name == "printf" and cmd.argv and "%" not in cmd.argv[0] and "\\" not in cmd.argv[0]:
        return cmd.argv[0]
    return None


# `python -c CODE`, `perl -e CODE`, … : code kept for raw-text rules.
_INLINE_CODE_FLAGS: dict[str, frozenset[str]] = {
    **{n: frozenset({"-c"}) for n in ("python", "python2", "python3", "pypy", "pypy3")},
    **{n: frozenset({"-e", "-E"}) for n in ("perl", "ruby")},
    **{n: frozenset({"-e", "--eval", "-p", "--print"}) for n in ("node", "nodejs", "deno")},
    "php": frozenset({"-r"}),
    **{n: frozenset({"-c", "-Command", "-command", "-C"}) for n in ("pwsh", "powershell")},
    "lua": frozenset({"-e"}),
    "awk": frozenset(),
}


def parse(line: str, limits: Limits | None = None, deadline: float | None = None,
          clock: Callable[[], float] = time.monotonic) -> Parsed:
    """Parse one command line. Never raises for any str; bounds are reported in `bounded`.

    `deadline` (a `time.monotonic()` instant) lets a caller share one budget
    between the line and its decoded layers.
    """
    limits = limits or Limits()
    state = _State(limits, deadline if deadline is not None else clock() + limits.deadline_s)
    bounded: str | None = None
    try:
        src = _source(line)
        tree = _parse_bytes(src, state.deadline)
        _Walker(src, state, 0, None).visit(tree.root_node)
    except _Bounded as exc:
        bounded = exc.reason
    except RecursionError:
        bounded = "syntax nested too deeply"
    pipelines = state.pipelines
    return Parsed(
        commands=tuple(state.commands),
        pipelines=tuple(p for p in pipelines if p),
        redirects=tuple(state.redirects),
        scripts=tuple(state.scripts),
        bounded=bounded,
        has_error=state.has_error,
    )
