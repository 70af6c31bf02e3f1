"""Parameter expansion as bash does it, for values the engine knows.

This module owns the one resolver of `$name`, `${name…}` and `${array[…]}`
forms: the parser feeds it the variables a line assigned before the word and
the live shell's state (`ShellState`), and it answers the expanded text, or
None when the value is not known. Forms: `$v` `${v}` `$1`, defaults
(`${v:-w}` `${v-w}` `${v:=w}` `${v:+w}`), substrings `${v:off:len}`, length
`${#v}`, indirection `${!v}`, case modification `${v,,}` `${v^^}` `${v^}`
`${v,}` `${v~~}`, prefix/suffix removal `${v#p}` `${v##p}` `${v%p}` `${v%%p}`,
replacement `${v/p/r}` `${v//p/r}` `${v/#p/r}` `${v/%p/r}`, transformations
`${v@U}` `${v@L}` `${v@u}` `${v@Q}` `${v@E}`, and arrays `${a[i]}` `${a[@]}`
`${a[*]}` `${a[@]:off:len}`.

Pure and bounded: values longer than `MAX_VALUE` are not expanded (None), and
pattern operators work on at most that many characters.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from attyguard.engine.normalize import decode_ansi_c, unescape_double

__all__ = ["ARRAY_JOIN", "MAX_VALUE", "Scope", "expand_parameter"]

MAX_VALUE = 4096  # characters; a longer value is left unexpanded (pattern ops are O(n^2))
# `"${a[@]}"` is several words: joined with this marker, which the parser splits on
# (the same private-use character it uses for `${IFS}`).
ARRAY_JOIN = "\ue000"


@dataclass(frozen=True, slots=True)
class Scope:
    """Where names are looked up: the line's own assignments first, then the shell's.

    `scalar(name)` / `array(name)` answer None for a name whose value is unknown
    (never assigned as far as the engine knows, or assigned something dynamic).
    """

    scalar: Callable[[str], str | None]
    array: Callable[[str], Mapping[str, str] | None]
    # Names whose default (`${HOME:-x}`) is not their value: they come from the environment.
    environment: frozenset[str] = frozenset()
    # `${v:=word}` assigns: told here, so later words of the line see the value.
    assign: Callable[[str, str], None] | None = None


_SIMPLE = re.compile(r"\$([A-Za-z_]\w*|[0-9])")
_NAME = re.compile(r"(!?)(#?)([A-Za-z_]\w*|[0-9]+)(?:\[([^\]]*)\])?")
_INT = re.compile(r"\s*\(?\s*(-?\s*\d+)\s*\)?\s*")


def expand_parameter(text: str, scope: Scope) -> str | None:
    """The value of one parameter expansion `text` (`$v`, `${…}`), or None if unknown."""
    if len(text) > MAX_VALUE:
        return None
    m = _SIMPLE.fullmatch(text)
    if m is not None:
        return _value(m.group(1), None, scope)
    if not (text.startswith("${") and text.endswith("}")):
        return None
    body = text[2:-1]
    m = _NAME.match(body)
    if m is None:
        return None
    bang, hash_, name, index = m.groups()
    rest = body[m.end():]
    if bang:
        if hash_ or index is not None or rest:
            return None  # `${!a[@]}` (keys), `${!p*}` (names): not needed yet
        target = _value(name, None, scope)
        if target is None or not _NAME.fullmatch(target):
            return None
        tm = _NAME.fullmatch(target)
        assert tm is not None
        return _value(tm.group(3), tm.group(4), scope)
    if hash_:
        if rest:
            return None
        if index in ("@", "*"):
            arr = scope.array(name)
            return None if arr is None else str(len(arr))
        v = _value(name, index, scope)
        return None if v is None else str(len(v))
    if index in ("@", "*") and rest.startswith(":") and rest[1:2] not in ("-", "=", "+", "?"):
        return _array_slice(name, rest[1:], scope)
    value = _value(name, index, scope)
    return _operate(name, value, rest, scope)


def _value(name: str, index: str | None, scope: Scope) -> str | None:
    if index is None:
        v = scope.scalar(name)
        if v is not None:
            return v
        arr = scope.array(name)  # `$a` of an array is its element 0
        return None if arr is None else arr.get("0")
    arr = scope.array(name)
    if arr is None:
        if index in ("0", "@", "*"):
            return scope.scalar(name)  # a scalar is an array of one
        return None
    if index in ("@", "*"):
        joiner = ARRAY_JOIN if index == "@" else " "
        return joiner.join(arr[k] for k in _ordered(arr))
    key: str | None = index.strip().strip("'\"")
    if key is not None and key.startswith("$"):
        key = scope.scalar(key[1:])
    if key is None:
        return None
    if key.lstrip("-").isdigit() and int(key) < 0:
        ordered = _ordered(arr)
        pos = len(ordered) + int(key)
        return arr[ordered[pos]] if 0 <= pos < len(ordered) else ""
    return arr.get(key)


def _ordered(arr: Mapping[str, str]) -> list[str]:
    if all(k.isdigit() for k in arr):
        return sorted(arr, key=int)
    return list(arr)


def _array_slice(name: str, spec: str, scope: Scope) -> str | None:
    arr = scope.array(name)
    if arr is None:
        return None
    off_len = _offsets(spec)
    if off_len is None:
        return None
    off, length = off_len
    values = [arr[k] for k in _ordered(arr)]
    if off < 0:
        off = max(len(values) + off, 0)
    end = len(values) if length is None else off + length if length >= 0 else len(values) + length
    return ARRAY_JOIN.join(values[off:end])


def _offsets(spec: str) -> tuple[int, int | None] | None:
    off_text, sep, len_text = spec.partition(":")
    m = _INT.fullmatch(off_text)
    if m is None:
        return None
    off = int(m.group(1).replace(" ", ""))
    if not sep:
        return off, None
    m = _INT.fullmatch(len_text)
    if m is None:
        return None
    return off, int(m.group(1).replace(" ", ""))


def _word(word: str, scope: Scope) -> str | None:
    """The value of the word after an operator (`${v:-WORD}`): quotes removed, `$x` expanded."""
    if "$(" in word or "`" in word:
        return None
    if len(word) >= 2 and word[0] == word[-1] == "'":
        return word[1:-1]
    if word.startswith("$'") and word.endswith("'"):
        return decode_ansi_c(word[2:-1])
    if len(word) >= 2 and word[0] == word[-1] == '"':
        word = unescape_double(word[1:-1])
    if "$" not in word:
        return word.replace("\\", "") if "\\" in word else word
    out: list[str] = []
    pos = 0
    for m in re.finditer(r"\$(?:\{[^{}]*\}|[A-Za-z_]\w*|[0-9])", word):
        v = expand_parameter(m.group(0), scope)
        if v is None:
            return None
        out.append(word[pos:m.start()])
        out.append(v)
        pos = m.end()
    if "$" in word[pos:]:
        return None
    out.append(word[pos:])
    return "".join(out)


def _operate(name: str, value: str | None, op: str, scope: Scope) -> str | None:
    if not op:
        return value
    for prefix in (":-", ":=", ":+", ":?", "-", "=", "+", "?"):
        if op.startswith(prefix):
            word = op[len(prefix):]
            colon = prefix.startswith(":")
            unset = value is None
            if unset and name in scope.environment:
                return None  # `${HOME:-/x}`: HOME is set in any real session
            empty = unset or (colon and value == "")
            kind = prefix[-1]
            if kind in ("-", "="):
                if not empty:
                    return value
                result = _word(word, scope)
                if kind == "=" and result is not None and scope.assign is not None:
                    scope.assign(name, result)
                return result
            if kind == "+":
                return "" if empty else _word(word, scope)
            return None if empty else value  # `:?` errors out when unset
    if value is None or len(value) > MAX_VALUE:
        return None
    if op.startswith(":"):
        off_len = _offsets(op[1:])
        if off_len is None:
            return None
        off, length = off_len
        if off < 0:
            off = max(len(value) + off, 0)
        if length is None:
            return value[off:]
        if length < 0:
            return value[off:len(value) + length]
        return value[off:off + length]
    case = _CASE.get(op)
    if case is not None:
        return case(value)
    if op.startswith("@") and len(op) == 2:
        return _transform(value, op[1])
    if op.startswith(("##", "#", "%%", "%")):
        greedy = op[:2] in ("##", "%%")
        pattern = _word(op[2 if greedy else 1:], scope)
        if pattern is None:
            return None
        return _remove(value, pattern, op[0] == "#", greedy)
    if op.startswith("/"):
        return _replace(value, op[1:], scope)
    return None


_CASE: dict[str, Callable[[str], str]] = {
    "^^": str.upper,
    ",,": str.lower,
    "~~": str.swapcase,
    "^": lambda v: v[:1].upper() + v[1:],
    ",": lambda v: v[:1].lower() + v[1:],
    "~": lambda v: v[:1].swapcase() + v[1:],
}


def _transform(value: str, op: str) -> str | None:
    if op == "U":
        return value.upper()
    if op == "L":
        return value.lower()
    if op == "u":
        return value[:1].upper() + value[1:]
    if op == "E":
        return decode_ansi_c(value)
    if op == "Q":
        return value  # quoted for re-use: the same text once the quotes are removed
    return None


def _matches(candidate: str, pattern: str) -> bool:
    if not any(c in pattern for c in "*?["):
        return candidate == pattern
    return fnmatch.fnmatchcase(candidate, pattern)


def _remove(value: str, pattern: str, prefix: bool, greedy: bool) -> str:
    n = len(value)
    lengths = range(n, -1, -1) if greedy else range(n + 1)
    for k in lengths:
        part = value[:k] if prefix else value[n - k:]
        if _matches(part, pattern):
            return value[k:] if prefix else value[:n - k]
    return value


def _replace(value: str, spec: str, scope: Scope) -> str | None:
    every = spec.startswith("/")
    anchor = spec[0] if spec[:1] in ("#", "%") else ""
    if every or anchor:
        spec = spec[1:]
    pat_text, _, rep_text = spec.partition("/")
    pattern = _word(pat_text, scope)
    replacement = _word(rep_text, scope)
    if pattern is None or replacement is None or not pattern:
        return None if pattern is None or replacement is None else value
    literal = not any(c in pattern for c in "*?[")
    if literal:
        if anchor == "#":
            return replacement + value[len(pattern):] if value.startswith(pattern) else value
        if anchor == "%":
            return value[: -len(pattern)] + replacement if value.endswith(pattern) else value
        return value.replace(pattern, replacement, -1 if every else 1)
    # Glob patterns: bash takes the longest match at the leftmost position.
    n = len(value)
    out: list[str] = []
    i = 0
    while i <= n:
        if anchor == "#" and i > 0:
            break
        found = -1
        for j in range(n, i - 1, -1):
            if anchor == "%" and j != n:
                break
            if fnmatch.fnmatchcase(value[i:j], pattern):
                found = j
                break
        if found > i or (found == i and found >= 0 and anchor):
            out.append(replacement)
            i = found
            if not every:
                out.append(value[i:])
                return "".join(out)
            continue
        if i < n:
            out.append(value[i])
        i += 1
    if i <= n:
        out.append(value[i:])
    return "".join(out)
