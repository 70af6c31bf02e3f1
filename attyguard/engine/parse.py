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

import bisect
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import tree_sitter
import tree_sitter_bash

from attyguard.engine.expand import ARRAY_JOIN, Scope, expand_parameter
from attyguard.engine.normalize import (
    DEFAULT_PROGRAMS,
    KNOWN_PROGRAMS,
    ProgramIndex,
    command_basename,
    decode_ansi_c,
    decode_printf_escapes,
    prepass,
    unescape_double,
    unescape_unquoted,
)
from attyguard.engine.state import EMPTY_STATE, ShellState

__all__ = [
    "SHELLS",
    "Command",
    "Finding",
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
    # A dynamic word of an everyday form: `"$@"`, `$EDITOR`, `${JAVA}`, `$(pyenv init -)`
    # (a program's output, the program judged on its own). Not reported as hidden.
    everyday: bool = False


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
class Finding:
    """Something the walk saw that no pattern can express; classify turns it into a hit.

    kinds: "dynamic-command" (a command word whose value stays unknown), "hash-path"
    (`hash -p FILE name`: a name pointed at an unusual program), "env-file"
    (BASH_ENV/ENV: the next shell runs that file).
    """

    kind: str
    detail: str
    span: Span


@dataclass(frozen=True, slots=True)
class Parsed:
    commands: tuple[Command, ...]  # execution order, all nesting levels
    pipelines: tuple[tuple[Command, ...], ...]  # data-flow order; includes $(…)/<(…) feeds
    redirects: tuple[Redirect, ...]
    scripts: tuple[tuple[str, str, Span], ...] = ()  # (interpreter, text, span) non-shell bodies
    bounded: str | None = None  # why analysis stopped early, if it did
    has_error: bool = False
    findings: tuple[Finding, ...] = ()


@dataclass(frozen=True, slots=True)
class Limits:
    """Work bounds for one line; hitting one is reported in `Parsed.bounded`."""

    max_depth: int = 6  # nested bash -c / eval / substitution layers
    max_nodes: int = 20_000  # tree nodes visited over all layers
    max_commands: int = 2_000
    # wall-clock budget for all parses of one line, far above a normal line's
    # (bench/engine_latency.py)
    deadline_s: float = 0.15


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
_IFS_SENTINEL = ARRAY_JOIN
_MAX_LEVEL = 150


@dataclass(frozen=True, slots=True)
class _Assigned:
    """One evaluated `name=value` / `name+=value` / `name=(…)` / `name[i]=value`."""

    text: str  # `name=value` after expansion (arrays: `name=(a b)`)
    name: str  # the variable (without a subscript)
    index: str | None  # `a[1]=x`: "1"
    value: str | None  # None when unknowable
    elements: tuple[str, ...] | None  # `name=(…)`: the elements, None when not an array
    append: bool
    pre: tuple[Command, ...]
    post: tuple[Command, ...]


MAX_EXPANSIONS = 32  # alias and function bodies walked for one line
# Variables whose value is code bash runs later, or a file the next shell runs.
_CODE_VARIABLES = frozenset({"PROMPT_COMMAND"})
_PROMPT_VARIABLES = frozenset({"PS0", "PS1", "PS2", "PS3", "PS4"})
_FILE_VARIABLES = frozenset({"BASH_ENV", "ENV"})
# A command word that is one of these, unknown, is everyday: positional parameters
# (`"$@"`), and upper-case names, the convention for the environment and for a
# script's settings (`$EDITOR file`, `${JAVA} -jar`, `$CC -o x x.c`). A lower-case
# name the shell's state does not resolve (`$cmd`) is not.
_QUIET_DYNAMIC = re.compile(r"\$(?:[@*#0-9]|[A-Z][A-Z0-9_]*+|\{(?:[@*#0-9]+|[A-Z][A-Z0-9_]*+)\})")
_HAS_EXPANSION = re.compile(r"\$[{A-Za-z_(@*0-9!#']|`")
# Programs that turn text into other text: `$(… | rev)` in command position builds a
# program name, where `$(pyenv init -)` only runs pyenv (which is judged on its own).
_TRANSFORMERS = frozenset({
    "echo", "printf", "base64", "base32", "basenc", "xxd", "od", "hexdump", "rev", "tr",
    "sed", "awk", "gawk", "mawk", "cut", "head", "tail", "perl", "python", "python3",
    "ruby", "node", "php", "openssl", "gzip", "gunzip", "zcat", "bzip2", "xz", "iconv",
    "dd", "paste", "fold", "sort", "uniq", "history", "fc", "compgen", "tac", "grep",
})


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
    clock: Callable[[], float] = time.monotonic
    nodes: int = 0
    level: int = 0  # current recursion depth of the walk (Python's stack is finite)
    commands: list[Command] = field(default_factory=list)
    pipelines: list[tuple[Command, ...]] = field(default_factory=list)
    redirects: list[Redirect] = field(default_factory=list)
    scripts: list[tuple[str, str, Span]] = field(default_factory=list)
    has_error: bool = False
    # The live shell's names (aliases, functions, variables…) the line may use.
    shell: ShellState = EMPTY_STATE
    programs: ProgramIndex = DEFAULT_PROGRAMS  # where a glob in a command word may point
    globs: int = 0  # glob words resolved for this line (each is a scan of `programs`)
    # Variables assigned earlier in the line (`a=cu; b=rl; $a$b`): None = assigned
    # something unknowable, which hides the shell's value too.
    variables: dict[str, str | None] = field(default_factory=dict)
    arrays: dict[str, dict[str, str] | None] = field(default_factory=dict)
    positional: tuple[str, ...] | None = None  # `$1…` while walking a called function's body
    functions: dict[str, str] = field(default_factory=dict)  # defined earlier in the line
    calls: list[str] = field(default_factory=list)  # aliases/functions being expanded now
    expansions: int = 0  # alias and function bodies walked for this line
    findings: list[Finding] = field(default_factory=list)
    # Variables whose unknown value is a line `read` took from its input, until set again.
    read_names: set[str] = field(default_factory=set)
    scope: Scope = field(init=False)

    namerefs: dict[str, str] = field(default_factory=dict)  # `declare -n r=v`

    def __post_init__(self) -> None:
        self.scope = Scope(self.scalar, self.array, _ENVIRONMENT_DEFAULTS, self.assign)

    def assign(self, name: str, value: str) -> None:
        if name.isidentifier():
            self.variables[name] = value
            self.arrays.pop(name, None)
            self.read_names.discard(name)

    def ifs(self) -> str | None:
        """The IFS unquoted expansions split on; None = the default (blanks)."""
        value = self.variables["IFS"] if "IFS" in self.variables else self.shell.variables.get(
            "IFS")
        return None if value is None or value == " \t\n" else value

    def scalar(self, name: str) -> str | None:
        for _ in range(8):  # a nameref names another variable (chains are bounded)
            target = self.namerefs.get(name)
            if target is None:
                break
            name = target
        if name.isdigit():
            if self.positional is None:
                return None
            i = int(name)
            if i == 0:
                return None
            return self.positional[i - 1] if i <= len(self.positional) else ""
        if name in self.variables:
            return self.variables[name]
        if name in self.arrays:
            return None
        return self.shell.variables.get(name)

    def array(self, name: str) -> dict[str, str] | None:
        if name in self.arrays:
            return self.arrays[name]
        if name in self.variables:
            return None
        found = self.shell.arrays.get(name)
        return None if found is None else dict(found)

    def tick(self) -> None:
        self.nodes += 1
        # The walk shares the line's one budget with the parse (and the matchers after).
        if not self.nodes & 255 and self.clock() > self.deadline:
            raise _Bounded("analysis deadline exceeded")
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


# bash drops every backslash-newline before it splits words (`c\\<newline>url` is
# `curl`), except where it reads text literally: single quotes, `$'…'` (where it is
# an escape of its own), comments (the newline still ends them) and here-document
# bodies (a shell reading the body joins them itself, through `nested`).
_CONTINUATION = b"\\\n"
_LITERAL_NODES = frozenset({"raw_string", "ansi_c_string", "comment", "heredoc_body"})


def _literal_ranges(root: tree_sitter.Node) -> list[tuple[int, int]]:
    """Byte ranges, in order, of the nodes whose text bash reads as written."""
    out: list[tuple[int, int]] = []
    stack = [root]
    while stack:
        node = stack.pop()
        if node.type in _LITERAL_NODES:
            out.append((node.start_byte, node.end_byte))
        else:
            stack.extend(node.children)
    out.sort()
    return out


def _join_continuations(src: bytes, root: tree_sitter.Node) -> tuple[bytes, list[int]] | None:
    """`src` without the backslash-newlines bash removes, and each byte's offset in `src`.

    Tree-sitter keeps them as separators (`c\\<newline>url` parses as `c` and `url`),
    so they are found with the first tree's quoting and the text is parsed again
    (only lines holding one pay for it). None when no pair is removed.
    """
    literal = _literal_ranges(root)
    starts = [a for a, _ in literal]

    def is_literal(pos: int) -> bool:
        k = bisect.bisect_right(starts, pos) - 1
        return k >= 0 and pos < literal[k][1]

    cuts: list[int] = []
    pos = src.find(_CONTINUATION)
    while pos >= 0:
        if not is_literal(pos):
            # `\\<newline>` is an escaped backslash then a newline: count the run.
            run = 1
            while pos - run >= 0 and src[pos - run] == 0x5C and not is_literal(pos - run):
                run += 1
            if run % 2 == 1 and (not cuts or cuts[-1] + 2 <= pos):
                cuts.append(pos)
        pos = src.find(_CONTINUATION, pos + 1)
    if not cuts:
        return None
    out = bytearray()
    offsets: list[int] = []
    prev = 0
    for cut in [*cuts, len(src)]:
        out += src[prev:cut]
        offsets.extend(range(prev, cut))
        prev = cut + 2
    offsets.append(len(src))
    return bytes(out), offsets


def _parse_text(text: str, deadline: float, clock: Callable[[], float],
                ) -> tuple[bytes, tree_sitter.Tree, list[int] | None]:
    """Parse `text` as bash reads it: (bytes parsed, tree, their offsets in `text`'s bytes).

    The offsets are None when the bytes are `text`'s own (no backslash-newline removed).
    """
    src = _source(text)
    tree = _parse_bytes(src, deadline, clock)
    if _CONTINUATION not in src:
        return src, tree, None
    joined = _join_continuations(src, tree.root_node)
    if joined is None:
        return src, tree, None
    return joined[0], _parse_bytes(joined[0], deadline, clock), joined[1]


def _source(text: str) -> bytes:
    """The bytes tree-sitter parses for `text` (rewritten by prepass, made crash-safe)."""
    text = prepass(text)
    if not text.isascii():
        text = _UNSAFE_FOR_PARSER.sub("\ufffd", text)
    return text.encode("utf-8", "surrogatepass")


class _Feed:
    """One parser and one reused input buffer per thread, for `_parse_bytes`.

    Only the read-callback form of `Parser.parse` honours `progress_callback`
    (tree-sitter 0.25/0.26 ignore it for a bytes argument, and 0.26 has no
    timeout), and py-tree-sitter 0.25–0.26 keeps a reference to every object the
    read callback returns: fresh slices leaked a little on every parse, without
    bound in a long-lived daemon. So the callback always returns the same
    bytearray, refilled in place for each parse: the leaked references pile up on
    one object and memory stays flat (bench/engine_memory.py). Trees keep byte
    offsets, never the buffer, so refilling it for a nested parse is safe.
    """

    def __init__(self) -> None:
        self.parser = tree_sitter.Parser(_LANGUAGE)  # creating one costs as much as a parse
        self.buf = bytearray()
        self.tail = bytearray()
        self.deadline = 0.0
        self.clock: Callable[[], float] = time.monotonic
        # Bound once: a new bound method per parse would be one more object handed over.
        self.read_cb = self.read
        self.progress_cb = self.progress

    def read(self, offset: int, _point: tuple[int, int]) -> bytes | bytearray:
        if offset == 0:
            return self.buf
        if offset >= len(self.buf):
            return b""  # a shared singleton: a kept reference costs nothing
        # After the end-of-input chunk, the lexer steps back into the text about twice
        # a line: the rest of the text, in a second reused buffer (tree-sitter reads a
        # chunk only until it asks for the next one).
        self.tail[:] = memoryview(self.buf)[offset:]
        return self.tail

    def progress(self, *_args: object) -> bool:
        return self.clock() > self.deadline


def _feed() -> _Feed:
    feed: _Feed | None = getattr(_PARSERS, "feed", None)
    if feed is None:
        feed = _PARSERS.feed = _Feed()
    return feed


def _parse_bytes(src: bytes, deadline: float,
                 clock: Callable[[], float] = time.monotonic) -> tree_sitter.Tree:
    """Parse with a deadline that cancels, without leaking the input (see _Feed)."""
    feed = _feed()
    feed.buf[:] = src
    feed.deadline = deadline
    feed.clock = clock
    parser = feed.parser
    try:
        tree = parser.parse(feed.read_cb, progress_callback=feed.progress_cb)
    except ValueError as exc:  # raised when the progress callback cancels
        # A cancelled parser resumes the old parse on its next call unless reset.
        parser.reset()
        raise _Bounded("parse deadline exceeded") from exc
    finally:
        if len(feed.buf) > 1 << 16:
            # Keep the objects (references to them are held), not a huge line's bytes.
            feed.buf.clear()
            feed.tail.clear()
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
                 inside: tuple[str, ...] = (), offsets: list[int] | None = None) -> None:
        self.inside = inside
        self.src = src
        # Redirections tree-sitter put on an enclosing pipeline/list, by command node id.
        self.pending: dict[int, list[tree_sitter.Node]] = {}
        self.state = state
        self.depth = depth
        self.outer = outer  # spans of a nested text map onto its word in the real line
        # Spans are reported in characters of the line; tree-sitter counts bytes.
        self.b2c: list[int] | None = None
        if outer is None and offsets is not None:
            self.b2c = offsets  # bytes were removed before parsing (backslash-newlines)
        elif outer is None and not src.isascii():
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
            stored: list[Command] = []
            for part in parts:
                assigned = self.assignment(part)
                self.remember(assigned)
                stored.extend(self.stored_code(assigned, self.span(part)))
                inner.extend(assigned.pre)
                values.append(assigned.text)
            cmd = Command("", "", (), self.span(node), assignments=tuple(values),
                          depth=self.depth, inside=self.inside)
            self.state.commands.append(cmd)
            return [*inner, cmd, *stored]
        if kind == "function_definition":
            # Remember it for a call later in the line; its body is judged here as if it ran.
            name_node = node.child_by_field_name("name")
            if name_node is not None:
                self.state.functions[self.text(name_node)] = self.text(node)
        elif kind == "for_statement":
            var = node.child_by_field_name("variable")
            if var is not None:  # the loop variable takes values the engine does not track
                self.state.variables[self.text(var)] = None
                self.state.read_names.discard(self.text(var))
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
        stored: list[Command] = []
        words: list[Word] = []
        name = ""
        for child in node.children:
            self.state.tick()
            if not child.is_named:
                if not name:
                    name = self.text(child)
                continue
            if child.type == "variable_assignment":
                assigned = self.assignment(child)
                pre.extend(assigned.pre)
                if any(w.value.startswith("-") and "n" in w.value for w in words):
                    # `declare -n ref=var`: $ref is $var from now on.
                    if assigned.value is not None and assigned.name.isidentifier():
                        self.state.namerefs[assigned.name] = assigned.value
                        self.state.variables.pop(assigned.name, None)
                elif name != "local" or self.state.positional is not None:
                    self.remember(assigned)
                stored.extend(self.stored_code(assigned, self.span(child)))
                words.append(Word(assigned.text, self.span(child)))
            else:
                value, dyn, inner, _post = self.word_value(child)
                pre.extend(inner)
                words.append(Word(value, self.span(child), dyn))
        if name == "export" and any(w.value == "-n" for w in words):
            stored = []  # `export -n`: takes the export away
        cmd = Command(name, name, tuple(words), self.span(node), depth=self.depth,
                      inside=self.inside)
        self.state.commands.append(cmd)
        if name == "unset":
            for w in words:
                if not w.value.startswith("-"):
                    self.state.variables[w.value] = None
        flow = [*pre, cmd, *stored]
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
        aliased = self.alias_text(node, reds_nodes)
        if aliased is not None:
            return self.reparse(aliased[0], self.span(node), aliased[1], in_pipeline)
        assigned_list: list[_Assigned] = []
        last_word: tree_sitter.Node | None = None
        for child in node.named_children:
            self.state.tick()
            kind = child.type
            if kind == "variable_assignment":
                assigned = self.assignment(child)
                assigned_list.append(assigned)
                assignments.append(assigned.text)
                pre.extend(assigned.pre)
                post.extend(assigned.post)
            elif kind.endswith("redirect"):
                reds_nodes.append(child)
            elif kind == "command_name":
                for sub in child.named_children:
                    self.add_words(sub, words, pre, post)
                    last_word = sub
            elif last_word is not None and _glued(last_word, child) and words:
                words[-1] = self.glue(words[-1], child, pre, post)
                last_word = child
            else:
                self.add_words(child, words, pre, post)
                last_word = child
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
        for assigned in assigned_list:
            if not words:
                self.remember(assigned)
            # `BASH_ENV=F bash -c true`, `PROMPT_COMMAND=… bash -i`: the command runs it.
            post.extend(self.stored_code(assigned, self.span(node), exported=bool(words)))
        cmds = self.unwrap(words, tuple(reds), tuple(assignments), self.span(node))
        for cmd in cmds:
            self.state.commands.append(cmd)
        self.state.redirects.extend(reds)
        flow = [*pre, *cmds, *post]
        # Text a shell will run: `bash -c STR`, `eval STR`, `su -c STR`, `sh <<<STR`.
        nested: list[Command] = []
        if cmds:
            self.builtin_effects(cmds[0])
            nested.extend(self.call(cmds[0], words))
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
        src, tree, _ = _parse_text(text, self.state.deadline, self.state.clock)
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
        if name == "trap":
            rest = argv[1:] if argv and argv[0].value == "--" else argv
            if rest and not rest[0].value.startswith("-"):
                out.append((rest[0].value, rest[0].span, "eval"))
            return out
        if name == "bind":  # bind -x '"\C-t": CODE': CODE runs on that key
            for i, w in enumerate(argv[:-1]):
                if w.value == "-x" or (w.value.startswith("-") and "x" in w.value[1:]
                                       and not w.value.startswith("--")):
                    code = _bind_command(argv[i + 1].value)
                    if code:
                        out.append((code, argv[i + 1].span, "eval"))
            return out
        if name in ("complete", "compgen"):  # complete -C CMD: CMD runs on Tab
            for i, w in enumerate(argv[:-1]):
                if w.value == "-C":
                    out.append((argv[i + 1].value, argv[i + 1].span, "eval"))
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
                        if cmd.path.startswith("$") and w.value == "-c":
                            # `$SHELL -c STR`: most likely a shell; judge STR as one too.
                            out.append((argv[i + 1].value, argv[i + 1].span, "sh"))
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
        starts: list[int] = []  # where each wrapper's word is
        i = 0
        extra: list[Command] = []
        while i < len(words):
            value = words[i].value
            if words[i].dynamic and "$" in value:
                value = _without_unknown_expansions(value)  # `s${u}udo` is a sudo too
            name = command_basename(value)
            if name == "busybox" and i + 1 < len(words):
                wrappers.append(name)
                starts.append(i)
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
            starts.append(i)
            i = j
        if i >= len(words):
            # Only wrappers (`sudo -s`, `exec 3>file`): the last of them is the command
            # (`timeout 9 env` prints the environment), wrapped by those before it.
            if not words:
                return [Command("", "", (), span, reds, (), assignments, self.depth,
                                self.inside)]
            k = starts[-1] if starts else 0
            last = words[k].value
            if words[k].dynamic and "$" in last:
                last = _without_unknown_expansions(last)
            return [Command(command_basename(last), last, tuple(words[k + 1:]), span, reds,
                            tuple(wrappers[:-1]), assignments, self.depth, self.inside)]
        path = words[i].value
        if words[i].dynamic and "$" in path:
            path = _without_unknown_expansions(path)
        # An alias's value is judged again where it is used (expanded from the shell's
        # state), with the variables of that moment: unknown words in it are not hidden yet.
        if (words[i].dynamic and path == words[i].value and not words[i].everyday
                and _HAS_EXPANSION.search(path) and "alias" not in self.inside
                and not self.evals_read_line(path)):
            # Still unknown after every resolution, and it runs: the program is hidden.
            self.state.findings.append(Finding(
                "dynamic-command", f"the program run is only known when the line runs: {path}",
                words[i].span))
        elif not words[i].dynamic and path.startswith("/") and _GLOB_CHARS.search(path):
            self.state.findings.append(Finding(
                "dynamic-command", f"the pattern {path} names no program attyguard knows",
                words[i].span))
        elif (not words[i].dynamic and "/" not in path and path in self.state.shell.hashed
              and path not in self.state.shell.functions and path not in self.state.functions):
            hashed = self.state.shell.hashed[path]  # `hash -p FILE name`, set before
            if _unusual_program(hashed, path):
                self.state.findings.append(Finding(
                    "hash-path", f"`{path}` runs {hashed} (hash -p)", words[i].span))
            path = hashed
        name = command_basename(path)
        args = tuple(words[i + 1 :])
        if name == "find":
            extra = self.find_exec(args, span)
        main = Command(name, path, args, span, reds, tuple(wrappers), assignments, self.depth,
                       self.inside)
        return [main, *extra]

    def evals_read_line(self, path: str) -> bool:
        """`… | while read l; do eval "$l"; done`: eval runs each line the loop reads.

        That loop is a shell reading its input, and the pipeline rules judge it so
        (`eval` is a shell sink: `curl … | while read l; do eval $l; done` is the
        download piped to a shell); the program is whatever the input holds, as for
        `bash FILE`, not a name the line hides. A bare `$l` run without eval is not a
        sink to those rules, so it keeps its finding.
        """
        m = _LONE_VARIABLE.fullmatch(path)
        return (m is not None and self.inside[-1:] == ("eval",)
                and (m.group(1) or m.group(2)) in self.state.read_names)

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
        if dynamic:  # a command word (here, or after find -exec/xargs): an everyday form?
            everyday = _everyday_dynamic(node, self.text(node), inner)
            if everyday:
                words.append(Word(value, span, dynamic, everyday=True))
                return
        if (node.type in ("word", "concatenation") and "/" in value and not dynamic
                and _UNQUOTED_GLOB.fullmatch(self.text(node))
                and self.state.globs < _MAX_GLOBS):
            self.state.globs += 1
            found = self.state.programs.matches(value)  # an unquoted glob: bash expands it
            if found:
                if len(found) > 1 and not words:
                    # The first match runs with the others as its arguments: which ones
                    # depends on the disk, so the program is not known.
                    self.state.findings.append(Finding(
                        "dynamic-command", f"the pattern {value} names several programs",
                        span))
                value = found[0]
        if not dynamic and node.type in ("simple_expansion", "expansion"):
            # An unquoted expansion is split into words on IFS.
            ifs = self.state.ifs()
            if ifs is None and (" " in value or "\t" in value or "\n" in value):
                value = _IFS_SENTINEL.join(value.split())
            elif ifs:
                value = _IFS_SENTINEL.join(
                    p for p in re.split("[" + re.escape(ifs) + "]", value) if p)
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

    def assignment(self, node: tree_sitter.Node) -> _Assigned:
        name_node = node.child_by_field_name("name")
        value_node = node.child_by_field_name("value")
        append = any(not c.is_named and self.text(c) == "+=" for c in node.children)
        op = "+=" if append else "="
        if name_node is None:
            value, _dyn, pre, post = self.word_value(node)
            return _Assigned(value, "", None, None, None, append, tuple(pre), tuple(post))
        index: str | None = None
        name = self.text(name_node)
        if name_node.type == "subscript":
            base = name_node.child_by_field_name("name")
            idx = name_node.child_by_field_name("index")
            name = self.text(base) if base is not None else name
            index = self.text(idx) if idx is not None else None
        shown = name if index is None else f"{name}[{index}]"
        if value_node is None:
            return _Assigned(f"{shown}{op}", name, index, "", None, append, (), ())
        if value_node.type == "array":
            elements: list[str] = []
            feeding: list[Command] = []
            fed: list[Command] = []
            known = True
            for child in value_node.named_children:
                v, d, i, p = self.word_value(child)
                feeding.extend(i)
                fed.extend(p)
                known = known and not d
                elements.extend(e for e in v.split(_IFS_SENTINEL) if e or v == "")
            text = f"{shown}{op}(" + " ".join(elements) + ")"
            return _Assigned(text, name, index, None, tuple(elements) if known else None,
                             append, tuple(feeding), tuple(fed))
        value, dyn, pre, post = self.word_value(value_node)
        return _Assigned(f"{shown}{op}{value.replace(_IFS_SENTINEL, ' ')}", name, index,
                         None if dyn else value.replace(_IFS_SENTINEL, " "), None, append,
                         tuple(pre), tuple(post))

    def remember(self, a: _Assigned) -> None:
        """Record an assignment that persists, so later words of the line expand with it."""
        if not a.name.isidentifier():
            return
        st = self.state
        st.read_names.discard(a.name)
        if a.elements is not None or (a.index is not None and a.value is not None):
            old = st.scope.array(a.name) if (a.append or a.index is not None) else None
            arr = dict(old or {})
            if a.elements is not None:
                start = max((int(k) for k in arr if k.isdigit()), default=-1) + 1
                arr.update({str(start + k): v for k, v in enumerate(a.elements)})
            else:
                assert a.index is not None and a.value is not None
                arr[a.index.strip("'\"")] = a.value
            st.arrays[a.name] = arr
            st.variables.pop(a.name, None)
            return
        if a.value is None or a.index is not None:
            st.variables[a.name] = None
            st.arrays.pop(a.name, None)
            return
        old_value = st.scalar(a.name) if a.append else ""
        st.variables[a.name] = None if old_value is None else old_value + a.value
        st.arrays.pop(a.name, None)

    def stored_code(self, a: _Assigned, span: Span, exported: bool = True) -> list[Command]:
        """Code an assignment stores for later (PROMPT_COMMAND), judged as if it ran now."""
        if a.name in _CODE_VARIABLES:
            texts = a.elements if a.elements is not None else (a.value,)
            out: list[Command] = []
            for text in texts:
                if text:
                    out.extend(self.nested(text, span, (a.name,)))
            return out
        if a.name in _PROMPT_VARIABLES and a.value and ("$(" in a.value or "`" in a.value):
            # bash expands the prompt (promptvars) each time: `$(…)` in it runs then.
            quoted = a.value.replace("\\", "\\\\").replace('"', '\\"')
            return self.nested(f': "{quoted}"', span, (a.name,))
        # ENV=production is everyday; ENV=/path/file is a file the next shell runs.
        if a.name in _FILE_VARIABLES and a.value and exported and (
                a.name == "BASH_ENV" or a.value.startswith(("~", ".", "$")) or "/" in a.value):
            self.state.findings.append(Finding(
                "env-file", f"{a.name}={a.value}: the next shell started runs this file", span))
        return []

    def alias_text(self, node: tree_sitter.Node,
                   reds_nodes: list[tree_sitter.Node]) -> tuple[str, list[str]] | None:
        """The command's text with its alias(es) replaced, as bash's reader does it."""
        aliases = self.state.shell.aliases
        if not aliases:
            return None
        name_node = node.child_by_field_name("name")
        if name_node is None or len(name_node.named_children) != 1:
            return None
        word = name_node.named_children[0]
        first = self.text(word)
        if word.type != "word" or first not in aliases or first in self.state.calls:
            return None
        end = max([node.end_byte, *(r.end_byte for r in reds_nodes)])
        head = self.src[node.start_byte : word.start_byte].decode("utf-8", "replace")
        rest = self.src[word.end_byte : end].decode("utf-8", "replace")
        used = [first]
        value = aliases[first]
        text = value
        # A value ending in a blank makes bash check the next word for an alias too.
        while value[-1:] in (" ", "\t") and len(used) < MAX_EXPANSIONS:
            m = _NEXT_WORD.match(rest)
            if m is None or m.group(2) not in aliases or m.group(2) in used:
                break
            used.append(m.group(2))
            value = aliases[m.group(2)]
            text += m.group(1) + value
            rest = rest[m.end():]
        return head + text + rest, used

    def reparse(self, text: str, span: Span, names: list[str],
                in_pipeline: bool) -> list[Command]:
        """Walk alias-expanded text in place of the command (same depth: it runs here)."""
        st = self.state
        st.expansions += 1
        if st.expansions > MAX_EXPANSIONS:
            raise _Bounded(f"more than {MAX_EXPANSIONS} aliases or functions expanded")
        src, tree, _ = _parse_text(text, st.deadline, st.clock)
        walker = _Walker(src, st, self.depth, span, self.inside)
        st.calls.extend(names)
        try:
            root = tree.root_node
            if in_pipeline and len(root.named_children) == 1:
                return walker.visit(root.named_children[0], in_pipeline)
            return walker.visit(root)
        finally:
            del st.calls[len(st.calls) - len(names):]

    def call(self, cmd: Command, words: list[Word]) -> list[Command]:
        """A call of a function: its body judged with `$1…` bound to the arguments."""
        if cmd.wrappers or not words or words[0].dynamic or "/" in cmd.path:
            return []
        st = self.state
        body = st.functions.get(cmd.path)
        if body is None:
            body = st.shell.functions.get(cmd.path)
        if body is None or cmd.path in st.calls:
            return []  # a recursive call: its body is being judged already
        st.expansions += 1
        if st.expansions > MAX_EXPANSIONS:
            raise _Bounded(f"more than {MAX_EXPANSIONS} aliases or functions expanded")
        saved = st.positional
        st.positional = cmd.argv
        st.calls.append(cmd.path)
        try:
            return self.nested(body, cmd.span, ("function",))
        finally:
            st.calls.pop()
            st.positional = saved

    def builtin_effects(self, cmd: Command) -> None:
        """Builtins that set variables (`printf -v`, `read`) or re-point names (`hash -p`)."""
        argv = cmd.argv
        st = self.state
        if cmd.name == "printf" and len(argv) >= 3 and argv[0] == "-v":
            st.read_names.discard(argv[1])
            value = _printf_value(argv[2], argv[3:]) if not cmd.args[2].dynamic else None
            if not any(w.dynamic for w in cmd.args[3:]) and value is not None:
                st.variables[argv[1]] = value
            else:
                st.variables[argv[1]] = None
        elif cmd.name in ("read", "mapfile", "readarray"):
            self.read_effects(cmd)
        elif cmd.name == "hash" and "-p" in argv:
            i = argv.index("-p")
            if i + 2 < len(argv) + 1 and i + 1 < len(argv):
                path = argv[i + 1]
                names = [a for a in argv[i + 2 :] if not a.startswith("-")]
                for name in names:
                    if _unusual_program(path, name):
                        st.findings.append(Finding(
                            "hash-path", f"hash -p {path} {name}: `{name}` will run {path}",
                            cmd.span))

    def glue(self, word: Word, node: tree_sitter.Node, pre: list[Command],
             post: list[Command]) -> Word:
        """Join a word tree-sitter split off (`$d/$t/x` parses as `$d/$` + `t/x`)."""
        value, dyn, inner, after = self.word_value(node)
        pre.extend(inner)
        post.extend(after)
        span = (word.span[0], self.span(node)[1]) if self.outer is None else word.span
        m = _IDENT.match(value) if word.value.endswith("$") else None
        if m is not None:
            known = self.expand("$" + m.group(0))
            if known is None:
                return Word(word.value + value, span, True)
            return Word(word.value[:-1] + known + value[m.end():], span, word.dynamic or dyn)
        return Word(word.value + value, span, word.dynamic or dyn)

    def read_effects(self, cmd: Command) -> None:
        """`read -r v <<< TEXT` sets v to TEXT; any other read sets what it names to unknown."""
        st = self.state
        argv = cmd.argv
        names: list[str] = []
        array: str | None = None
        i = 0
        while i < len(argv):
            a = argv[i]
            if a.startswith("-") and len(a) > 1:
                # `-ra NAME`: the last letter of a cluster may take the next word.
                if a[-1] in "adpnNtuiCcO":
                    if a[-1] == "a" and i + 1 < len(argv):
                        array = argv[i + 1]
                    i += 2
                else:
                    i += 1
                continue
            if a.isidentifier():
                names.append(a)
            i += 1
        text: str | None = None
        feeds = [r for r in cmd.redirects if r.op == "<<<"]
        if cmd.name == "read" and feeds and not _HAS_EXPANSION.search(feeds[-1].target):
            text = feeds[-1].target.split("\n", 1)[0]
        if array is not None:
            if text is None:
                st.variables[array] = None
            else:
                st.arrays[array] = {str(k): v for k, v in enumerate(text.split())}
                st.variables.pop(array, None)
        targets = names or ([] if array is not None else ["REPLY"])
        if not targets:
            return
        if cmd.name != "read" or text is None:
            for name in targets:
                st.variables[name] = None
                if cmd.name == "read":
                    st.read_names.add(name)
            return
        parts = text.split(None, max(len(targets) - 1, 0)) if targets[0] != "REPLY" else [text]
        for k, name in enumerate(targets):
            st.variables[name] = parts[k].strip() if k < len(parts) else ""
            st.read_names.discard(name)

    def expand(self, text: str) -> str | None:
        """The value of a parameter expansion when the line or the shell's state decides it."""
        return expand_parameter(text, self.state.scope)

    def redirect(
        self, node: tree_sitter.Node, command: str
    ) -> tuple[Redirect, list[Command], list[Command]]:
        op = ""
        fd = ""
        target = ""
        pre: list[Command] = []
        post: list[Command] = []
        body_parts: list[str] = []
        last: tree_sitter.Node | None = None
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
                last = child
            elif last is not None and _glued(last, child):
                target = self.glue(Word(target, self.span(last)), child, pre, post).value
                last = child
        if op in ("<<", "<<-"):
            target = "".join(body_parts)
        return Redirect(op, target, self.span(node), fd, command), pre, post


_IDENT = re.compile(r"[A-Za-z_]\w*")
_WORDISH = frozenset({"word", "concatenation", "simple_expansion", "expansion", "string",
                      "raw_string", "number", "ansi_c_string"})


def _glued(prev: tree_sitter.Node, node: tree_sitter.Node) -> bool:
    """Two word nodes with nothing between them: one word to bash."""
    return (prev.end_byte == node.start_byte and prev.type in _WORDISH
            and node.type in _WORDISH)


_UNQUOTED_GLOB = re.compile(r"[^'\"\\$`]*[?*\[][^'\"\\$`]*")
_GLOB_CHARS = re.compile(r"[?*\[]")
_MAX_GLOBS = 64  # per line; beyond, globs stay as typed (and a glob command word warns)
_NEXT_WORD = re.compile(r"(\s*)([^\s;|&<>()'\"\\$`]+)")
_PROGRAM_DIRS = ("/bin/", "/usr/bin/", "/usr/local/bin/", "/sbin/", "/usr/sbin/",
                 "/usr/local/sbin/", "/usr/games/", "/snap/bin/")


def _unusual_program(path: str, name: str) -> bool:
    """`hash -p /tmp/x ls`: a name pointed somewhere other than its usual program."""
    if command_basename(path) != name:
        return True
    return not path.startswith(_PROGRAM_DIRS)


_PRINTF_FORMAT = re.compile(r"%(?:%|s|b|d|q)")


def _printf_value(fmt: str, args: tuple[str, ...]) -> str | None:
    """What `printf -v v FMT ARGS…` stores, for %s/%b/%d/%q formats and escapes."""
    if "%" in _PRINTF_FORMAT.sub("", fmt):
        return None
    pieces = _PRINTF_FORMAT.split(fmt)
    specs = _PRINTF_FORMAT.findall(fmt)
    n = sum(1 for s in specs if s != "%%")
    if n == 0:
        return decode_printf_escapes(fmt)
    out: list[str] = []
    queue = list(args) or [""]
    rounds = 0
    while queue and rounds < 64:  # the format is reused while arguments remain
        rounds += 1
        for piece, spec in zip(pieces, [*specs, ""], strict=True):
            out.append(decode_printf_escapes(piece))
            if spec == "%%":
                out.append("%")
            elif spec:
                arg = queue.pop(0) if queue else ""
                out.append(decode_printf_escapes(arg) if spec == "%b" else arg)
        if not args:
            break
    return "".join(out)
# Variables whose value comes from the environment: a default is not their value.
_ENVIRONMENT_DEFAULTS = frozenset({"HOME", "PATH", "USER", "SHELL", "PWD", "TMPDIR", "LANG"})


_UNKNOWN_EXPANSION_RE = re.compile(r"\$(?:\{[A-Za-z_@*][^}]*\}|[A-Za-z_]\w*|[@*])")


def _everyday_dynamic(node: tree_sitter.Node, text: str, inner: list[Command]) -> bool:
    """A command word whose value is unknown but whose form is ordinary (see _QUIET_DYNAMIC)."""
    if node.type == "string" and len(node.named_children) == 1:
        node = node.named_children[0]
        text = text[1:-1]
    if node.type in ("simple_expansion", "expansion"):
        return _QUIET_DYNAMIC.fullmatch(text) is not None
    if node.type in ("concatenation", "string") and node.named_children:
        # `$JAVA_HOME/bin/java`, `"$dir/run.sh"`: the directory is unknown, the program's
        # name is not (rules see it as the command's name).
        last = node.named_children[-1]
        tail = text[last.start_byte - node.start_byte:] if node.type == "concatenation" else ""
        if node.type == "string":
            tail = text[text.rfind("}") + 1 if "}" in text else text.rfind("$") + 1:]
            tail = tail if not _HAS_EXPANSION.search(tail) else ""
        if last.type in ("word", "string_content") and "/" in tail:
            base = tail.rstrip('"').rsplit("/", 1)[-1]
            return bool(base) and not _GLOB_CHARS.search(base) and "$" not in base
    if node.type == "command_substitution":
        return bool(inner) and not any(c.name in _TRANSFORMERS or c.name == "" or
                                       (c.args and c.args[0].dynamic and c.path == "")
                                       for c in inner)
    return False


def _bind_command(spec: str) -> str:
    """The shell command of a `bind -x` spec: `"\\C-t": cmd` or `\\C-t: cmd`."""
    if spec.startswith('"'):
        end = spec.find('"', 1)
        while end > 0 and spec[end - 1] == "\\":
            end = spec.find('"', end + 1)
        rest = spec[end + 1 :] if end > 0 else ""
    else:
        rest = spec[spec.find(":"):] if ":" in spec else ""
    rest = rest.lstrip()
    if not rest.startswith(":"):
        return ""
    code = rest[1:].strip()
    if len(code) >= 2 and code[0] == code[-1] and code[0] in "'\"":
        code = code[1:-1]
    return code


_LONE_VARIABLE = re.compile(r"\$(?:([A-Za-z_]\w*)|\{([A-Za-z_]\w*)\})")


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
          clock: Callable[[], float] = time.monotonic,
          state: ShellState | None = None,
          programs: ProgramIndex = DEFAULT_PROGRAMS) -> Parsed:
    """Parse one command line. Never raises for any str; bounds are reported in `bounded`.

    `deadline` (a `time.monotonic()` instant) lets a caller share one budget
    between the line and its decoded layers. `state` is the live shell's names
    the line may use: the line is walked as bash will expand it.
    """
    limits = limits or Limits()
    work = _State(limits, deadline if deadline is not None else clock() + limits.deadline_s,
                  clock, shell=state or EMPTY_STATE, programs=programs)
    bounded: str | None = None
    try:
        src, tree, offsets = _parse_text(line, work.deadline, clock)
        if offsets is not None:
            # Spans are characters of the line as typed: parsed byte -> its byte -> char.
            typed = _source(line)
            if not typed.isascii():
                b2c = _byte_to_char(typed)
                offsets = [b2c[o] for o in offsets]
        walker = _Walker(src, work, 0, None, offsets=offsets)
        debug_trap = work.shell.traps.get("DEBUG")
        if debug_trap:
            # bash runs a DEBUG trap before each command of the line: judge it with it.
            walker.nested(debug_trap, (0, len(line)), ("trap",))
        walker.visit(tree.root_node)
        exit_trap = work.shell.traps.get("EXIT")
        if exit_trap and any(c.name in ("exit", "logout") and c.depth == 0 and not c.wrappers
                             for c in work.commands):
            walker.nested(exit_trap, (0, len(line)), ("trap",))  # the shell runs it as it exits
    except _Bounded as exc:
        bounded = exc.reason
    except RecursionError:
        bounded = "syntax nested too deeply"
    return Parsed(
        commands=tuple(work.commands),
        pipelines=tuple(p for p in work.pipelines if p),
        redirects=tuple(work.redirects),
        scripts=tuple(work.scripts),
        bounded=bounded,
        has_error=work.has_error,
        findings=tuple(work.findings),
    )
