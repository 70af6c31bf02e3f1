"""What bash does to words before it runs them, redone so that rules see through it.

This module owns the string-level normalisation: quote removal, backslash
escapes, ANSI-C `$'…'` strings, `${IFS}` word splitting, brace lists used to
hide a command (`{curl,-s,URL}`), paths to known binaries, and the cheap
whole-line normalisation the atom prefilter runs over before any parse.
Everything here is pure and linear in the input.
"""

from __future__ import annotations

import fnmatch
import re

__all__ = [
    "IFS_RE",
    "KNOWN_PROGRAMS",
    "command_basename",
    "decode_ansi_c",
    "decode_printf_escapes",
    "prefilter_text",
    "prepass",
    "resolve_glob_path",
    "unescape_double",
    "unescape_unquoted",
]

# ${IFS}, ${IFS%??}, ${IFS:0:1} and a bare $IFS all expand to whitespace when
# unquoted (default IFS), which is how `cat${IFS}/etc/passwd` hides a space.
IFS_RE = re.compile(r"\$\{IFS[^}]{0,16}\}|\$IFS(?![A-Za-z0-9_])")
# A stand-alone brace list `{curl,-fsSL,URL}` expands to its items as words.
# Only stand-alone lists (after a separator) are rewritten: `file{,.bak}` stays.
# Possessive items: no backtracking, so `{a,a,a,…` without a closing brace stays linear.
_BRACE_RE = re.compile(
    r"(?:(?<=^)|(?<=[\s;|&(]))\{([^{}\s'\"$,]*+(?:,[^{}\s'\"$,]*+)++)\}(?=$|[\s;|&)])"
)


def prepass(line: str) -> str:
    """Rewrite `${IFS}` and stand-alone brace lists into spaces, keeping every offset.

    The replacement has the same length as the original so that spans found in
    the rewritten text are spans in the user's line.
    """
    if "IFS" in line:
        line = IFS_RE.sub(lambda m: " " * len(m.group(0)), line)
    if "{" in line and "," in line:
        line = _BRACE_RE.sub(lambda m: " " + m.group(1).replace(",", " ") + " ", line)
    return line


_SIMPLE_ESCAPES = {
    "a": "\a",
    "b": "\b",
    "e": "\x1b",
    "E": "\x1b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    "\\": "\\",
    "'": "'",
    '"': '"',
    "?": "?",
}
_ESCAPE_RE = re.compile(
    r"\\(?:x([0-9A-Fa-f]{1,2})|u([0-9A-Fa-f]{1,4})|U([0-9A-Fa-f]{1,8})|([0-7]{1,3})|c(.)|(.))",
    re.DOTALL,
)


def _escape(m: re.Match[str], *, octal_zero: bool) -> str:
    hex2, u4, u8, octal, ctrl, other = m.groups()
    try:
        if hex2 is not None:
            return chr(int(hex2, 16))
        if u4 is not None:
            return chr(int(u4, 16))
        if u8 is not None:
            return chr(min(int(u8, 16), 0x10FFFF))
        if octal is not None:
            if octal_zero and octal.startswith("0") and len(octal) > 1:
                octal = octal[1:] or "0"
            return chr(int(octal, 8) & 0xFF)
    except ValueError:
        return m.group(0)
    if ctrl is not None:
        return chr(ord(ctrl) & 0x1F)
    assert other is not None
    return _SIMPLE_ESCAPES.get(other, "\\" + other)


def decode_ansi_c(body: str) -> str:
    """The value of `$'body'` (the text between the quotes), as bash computes it."""
    if "\\" not in body:
        return body
    return _ESCAPE_RE.sub(lambda m: _escape(m, octal_zero=False), body)


# printf/echo -e also take `\0NNN` (a zero, then up to three octal digits).
_PRINTF_ESCAPE_RE = re.compile(
    r"\\(?:x([0-9A-Fa-f]{1,2})|u([0-9A-Fa-f]{1,4})|U([0-9A-Fa-f]{1,8})|(0[0-7]{1,3}|[0-7]{1,3})"
    r"|c(.)|(.))",
    re.DOTALL,
)


def decode_printf_escapes(text: str) -> str:
    """The output of `printf 'text'` / `echo -e 'text'` for escape sequences (no % formats)."""
    if "\\" not in text:
        return text
    return _PRINTF_ESCAPE_RE.sub(lambda m: _escape(m, octal_zero=True), text)


_BACKSLASH_NEWLINE = re.compile(r"\\\r?\n")
_UNQUOTED_ESCAPE = re.compile(r"\\(.)", re.DOTALL)
_DOUBLE_ESCAPE = re.compile(r"\\([$`\"\\])")


def unescape_unquoted(text: str) -> str:
    """Backslash removal outside quotes: `\\c\\u\\r\\l` -> `curl`; line continuations vanish."""
    if "\\" not in text:
        return text
    text = _BACKSLASH_NEWLINE.sub("", text)
    return _UNQUOTED_ESCAPE.sub(r"\1", text)


def unescape_double(text: str) -> str:
    """Backslash removal inside double quotes: only before $ ` \" \\ and newline."""
    if "\\" not in text:
        return text
    text = _BACKSLASH_NEWLINE.sub("", text)
    return _DOUBLE_ESCAPE.sub(r"\1", text)


def command_basename(word: str) -> str:
    """`/usr/bin/curl`, `./curl`, `../bin/curl` -> `curl`: rules name binaries, not paths."""
    if "/" in word:
        tail = word.rstrip("/").rsplit("/", 1)[-1]
        return tail or word
    return word


_QUOTES_RE = re.compile(r"[\"'\\]")
_ANSI_C_RE = re.compile(r"\$'((?:[^'\\]|\\.)*)'", re.DOTALL)


def prefilter_text(line: str) -> str:
    """The cheap normalised text the atom prefilter scans before any parse.

    Lower-cased raw line, plus (only when they differ) the line with ANSI-C
    strings decoded and with quotes and backslashes removed, so that `c''url`,
    `"cu"rl`, `\\c\\url` and `$'\\x63url'` all contain the atom `curl`.
    """
    parts = [line]
    text = line
    if "$'" in text:
        text = _ANSI_C_RE.sub(lambda m: decode_ansi_c(m.group(1)), text)
    if "'" in text or '"' in text or "\\" in text:
        text = _QUOTES_RE.sub("", text)
    if text != line:
        parts.append(text)
    if "IFS" in line or "{" in line:
        parts.append(prepass(text))
    return "\n".join(parts).lower()


# Binaries attackers reach with glob paths (`/???/b??h`, `/u*/b*/n?`). The engine
# is pure (no filesystem), so a glob is matched against this list of the usual
# places rather than the disk. Order matters: the first match wins.
_GLOB_DIRS = ("/bin", "/usr/bin", "/usr/local/bin", "/sbin", "/usr/sbin")
KNOWN_PROGRAMS = frozenset({
    "bash", "sh", "dash", "zsh", "ksh", "nc", "ncat", "netcat", "socat", "telnet", "curl",
    "wget", "python", "python3", "perl", "ruby", "php", "node", "lua", "awk", "gawk",
    "base64", "xxd", "openssl", "rm", "dd", "chmod", "chown", "crontab", "busybox", "mkfifo",
    "mknod", "ssh", "scp", "sudo", "su", "eval", "exec", "shred", "mkfs", "wipefs", "tee",
})
_GLOB_NAMES = (
    "bash", "sh", "dash", "zsh", "ksh", "nc", "ncat", "netcat", "socat", "telnet", "curl",
    "wget", "python", "python3", "perl", "ruby", "php", "node", "lua", "awk", "gawk",
    "base64", "xxd", "openssl", "cat", "rm", "dd", "chmod", "chown", "crontab", "busybox",
    "id", "whoami", "uname", "tar", "gzip", "mkfifo", "mknod", "ssh", "scp", "env",
    "passwd", "shadow", "sudo", "su",
)
_GLOB_FILES = {"/etc": ("passwd", "shadow", "sudoers", "hosts", "crontab")}
_GLOB_CHARS = re.compile(r"[?*\[]")


def resolve_glob_path(word: str) -> str | None:
    """`/???/b??h` -> `/bin/bash` (first well-known path the glob matches), else None."""
    if not word.startswith("/") or not _GLOB_CHARS.search(word) or len(word) > 64:
        return None
    if not _GLOB_CHARS.sub("", word.rsplit("/", 1)[-1]):
        return None  # `/usr/bin/*` lists a directory; it does not name one program
    directory, _, base = word.rpartition("/")
    for known in (*_GLOB_DIRS, *_GLOB_FILES):
        if not fnmatch.fnmatchcase(known, directory or "/"):
            continue
        for name in _GLOB_FILES.get(known, _GLOB_NAMES):
            if fnmatch.fnmatchcase(name, base):
                return f"{known}/{name}"
    return None
