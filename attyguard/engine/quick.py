"""The clean-line fast path: lines the engine would allow without parsing, known without it.

`attyguard -c CMD` (every `ssh host CMD`, scp, rsync, git over ssh) paid
for importing the engine (tree-sitter, YAML, the matchers) and loading the
rules on every call, though nearly all such lines are clean: the engine
returns early for a line in which the atom prefilter finds no rule's atom
and nothing can hide words from it (`Engine._analyse`). This module decides
exactly that case for a narrow, conservative class of lines, with the atoms
of the shipped rules cached in a small file by the last process that loaded
them, keyed by the rule files' names, sizes and times (any change: no cache,
the full engine, which writes it again).

A line qualifies only if every character is a letter, digit, space or one of
`_ . / = : , + @ % -` (no quotes, backslashes, `$`, backticks, globs,
braces, redirections or separators), it does not mention IFS, and no atom
occurs in it. For such a line `prefilter_text` is the lower-cased line and
`_needs_parse` is false, so the engine would not parse it and would find no
candidate rule: the verdict is the same allow. Everything else goes to the
engine.

Many `-c` lines are short and repeat (`true`, rsync's and scp's server
commands, git's upload-pack) yet contain an atom (`^tr` is in `true`). The
engine is a pure function of the line, its rules and its code, so the lines
it allowed with no rule hit are remembered too (a hash per line, in a second
file keyed the same way plus the engine's own source files), like
`wiring.Remembering` does within one process. Standard library only.
"""

from __future__ import annotations

import os
import re

try:  # SHA-256 without hashlib, which loads OpenSSL first: ≈2 ms of a 40 ms `-c` line
    from _sha256 import sha256 as _sha256  # type: ignore[import-not-found,unused-ignore]
except ImportError:  # (CPython 3.12 renamed it; other interpreters: hashlib's)
    try:
        from _sha2 import sha256 as _sha256  # type: ignore[import-not-found,no-redef,unused-ignore]
    except ImportError:
        from hashlib import sha256 as _sha256  # type: ignore[no-redef,assignment,unused-ignore]

__all__ = ["BOUNDED_RULE_ID", "UNAVAILABLE_RULE_ID", "QuickAtoms", "is_clean", "load_atoms",
           "remember_allowed",
           "save_atoms"]

# The engine's verdict when its rules could not load, and its hit for an analysis
# cut short (classify.py re-exports both; the -c path needs them without the engine).
UNAVAILABLE_RULE_ID = "engine.rules-unavailable"
BOUNDED_RULE_ID = "engine.analysis-bounded"

_VERSION = 2  # 2: the atoms file is plain lines (json cost ≈1 ms to import)
_MAX_QUICK_LINE = 4096
_MAX_REMEMBERED = 4096  # lines; then the file starts over
_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 _./=:,+@%-")


class QuickAtoms:
    """The rules' atoms, split into substring atoms and word-start (`^x`) atoms."""

    __slots__ = ("allowed", "anywhere", "word_start")

    def __init__(self, anywhere: tuple[str, ...], word_start: tuple[str, ...],
                 allowed: frozenset[str] = frozenset()) -> None:
        self.anywhere = anywhere
        self.word_start = word_start
        self.allowed = allowed  # hashes of lines the engine allowed with no hit


def _line_hash(line: str) -> str:
    digest: str = _sha256(line.encode("utf-8", "surrogateescape")).hexdigest()
    return digest[:32]


# A line that may hand a file or text to a shell is never clean, even when the
# engine allowed it before: what it runs is the file's content, which the
# non-interactive path judges (attyguard/filejudge.py) only on the slow path.
_HANDS_TO_A_SHELL = re.compile(
    r"(?:^|[\s;&|(){}`])(?:\.|source|eval|exec|command|builtin|env|busybox|"
    r"[a-z]*sh)(?=[\s;&|)]|$)|[<`$]|ENV=|--rcfile|--init-file")


def is_clean(line: str, atoms: QuickAtoms) -> bool:
    """True only for a line the engine is sure to allow (see the module doc)."""
    if _HANDS_TO_A_SHELL.search(line):
        return False
    if atoms.allowed and _line_hash(line) in atoms.allowed:
        return True
    if not line or len(line) > _MAX_QUICK_LINE or "IFS" in line:
        return False
    if not _SAFE.issuperset(line):
        return False
    text = line.lower()
    for atom in atoms.anywhere:
        if atom in text:
            return False
    for atom in atoms.word_start:
        at = text.find(atom)
        while at >= 0:
            if at == 0 or not text[at - 1].isalnum():
                return False
            at = text.find(atom, at + 1)
    return True


def _patterns_dir() -> str:
    from attyguard.resources import data_path

    return str(data_path("patterns"))


def _signature(directory: str) -> str:
    """The rule files and the engine's code as they are now: any change changes it."""
    parts = [f"v{_VERSION}"]
    for where, suffixes in ((directory, (".yaml", ".yml")),
                            (os.path.dirname(os.path.abspath(__file__)), (".py",))):
        parts.append(where)
        with os.scandir(where) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                if entry.name.endswith(suffixes):
                    st = entry.stat()
                    parts.append(f"{entry.name}:{st.st_size}:{st.st_mtime_ns}")
    return "\n".join(parts)


def _cache_file(name: str = "quick-atoms") -> str:
    from attyguard.paths import state_dir

    return str(state_dir() / name)


_ALLOWED_FILE = "quick-allowed"
_FORMAT = f"attyguard quick atoms {_VERSION}"


def remember_allowed(line: str) -> None:
    """The engine allowed `line` with no rule hit: the next process may skip it. Never raises."""
    try:
        if len(line) > _MAX_QUICK_LINE:
            return
        path = _cache_file(_ALLOWED_FILE)
        head = _sha256(_signature(_patterns_dir()).encode()).hexdigest()[:32]
        try:
            with open(path, encoding="ascii") as f:
                lines = f.read(64 * _MAX_REMEMBERED).split("\n")
        except OSError:
            lines = []
        if not lines or lines[0] != head or len(lines) > _MAX_REMEMBERED:
            os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
            with open(path, "w", encoding="ascii") as f:
                f.write(f"{head}\n")
        # One append of one short line: concurrent shells interleave whole lines.
        fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        try:
            os.write(fd, f"{_line_hash(line)}\n".encode())
        finally:
            os.close(fd)
    except Exception:  # (an optimisation: never a reason to fail)
        return


def _escape(atom: str) -> str:
    return atom.encode("unicode_escape").decode("ascii")


def _unescape(text: str) -> str:
    return text.encode("ascii").decode("unicode_escape")


def save_atoms(atoms_per_rule: list[tuple[str, ...]]) -> None:
    """Called by the engine after loading the shipped rules; never raises."""
    try:
        if any(not atoms for atoms in atoms_per_rule):
            return  # a rule without atoms runs on every line: no fast path
        flat = sorted({a.lower() for atoms in atoms_per_rule for a in atoms})
        lines = [_FORMAT, _sha256(_signature(_patterns_dir()).encode()).hexdigest()]
        # One atom a line, escaped (an atom may be "\r"); a read decodes it back.
        lines += [f"w {_escape(a[1:])}" if a.startswith("^") and len(a) > 1 else f"a {_escape(a)}"
                  for a in flat]
        path = _cache_file()
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
        os.replace(tmp, path)
    except Exception:  # (an optimisation: never a reason to fail)
        return


def load_atoms() -> QuickAtoms | None:
    """The cached atoms if they belong to the rule files as they are now; else None."""
    try:
        with open(_cache_file(), encoding="utf-8") as f:
            lines = f.read(1 << 20).split("\n")
        signature = _signature(_patterns_dir())
        if lines[0] != _FORMAT or lines[1] != _sha256(signature.encode()).hexdigest():
            return None
        anywhere = tuple(_unescape(line[2:]) for line in lines[2:] if line.startswith("a "))
        word_start = tuple(_unescape(line[2:]) for line in lines[2:] if line.startswith("w "))
    except Exception:  # (missing, stale, corrupt: the full engine decides)
        return None
    if not all(anywhere) or not all(word_start):
        return None
    allowed: frozenset[str] = frozenset()
    try:
        with open(_cache_file(_ALLOWED_FILE), encoding="ascii") as f:
            lines = f.read(64 * _MAX_REMEMBERED).split("\n")
        if lines[0] == _sha256(signature.encode()).hexdigest()[:32]:
            allowed = frozenset(h for h in lines[1:] if len(h) == 32)
    except (OSError, ValueError):
        pass
    return QuickAtoms(anywhere, word_start, allowed)
