"""What bash does to words before it runs them, redone so that rules see through it.

This module owns the string-level normalisation: quote removal, backslash
escapes, ANSI-C `$'…'` strings, `${IFS}` word splitting, brace lists used to
hide a command (`{curl,-s,URL}`), paths to known binaries, and the cheap
whole-line normalisation the atom prefilter runs over before any parse.
Everything here is pure and linear in the input.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = [
    "DEFAULT_PROGRAMS",
    "IFS_RE",
    "KNOWN_PROGRAMS",
    "ProgramIndex",
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

    Lower-cased raw line, plus (only when they differ) the line with backslash-newlines
    joined, ANSI-C strings decoded and quotes and backslashes removed, so that `c''url`,
    `"cu"rl`, `c\\<newline>url`, `\\c\\url` and `$'\\x63url'` all contain the atom `curl`.
    """
    parts = [line]
    text = line
    if "\\\n" in text:
        # bash joins `c\\<newline>url` into `curl` (parse.py does it where quoting
        # allows; a superset here only costs a parse).
        text = text.replace("\\\n", "")
    if "$'" in text:
        text = _ANSI_C_RE.sub(lambda m: decode_ansi_c(m.group(1)), text)
    if "'" in text or '"' in text or "\\" in text:
        text = _QUOTES_RE.sub("", text)
    if text != line:
        parts.append(text)
    if "IFS" in line or "{" in line:
        parts.append(prepass(text))
    return "\n".join(parts).lower()


# Programs attackers reach by a name the line does not spell: a glob path
# (`/???/b??h`, `/u?r/b?n/ju?ia`) or letters split by a variable nobody set
# (`ju${u}lia`). The engine is pure (no filesystem), so such a word is resolved
# against this table of the usual places, not the disk (a front end may add a
# snapshot of PATH: programs.py). What belongs here: a program some rule judges by
# name (shells and interpreters, downloaders, network tools, decoders, disk, account,
# module and service tools, container and cloud CLIs, credential printers, wrappers
# that run another program, and the everyday commands rules name: echo, cp, find…).
# Not every program on a system: a glob that names several programs warns as unknown,
# so a longer table is not always a better one.
_GLOB_DIRS = ("/bin", "/usr/bin", "/usr/local/bin", "/sbin", "/usr/sbin", "/usr/local/sbin")
_GLOB_NAMES = (
    # shells and interpreters
    "bash", "sh", "dash", "zsh", "ksh", "python", "python2", "python3", "perl", "ruby",
    "php", "node", "lua", "awk", "gawk", "julia", "jrunscript", "tclsh", "expect", "irb",
    # network: downloaders, relays, transfers, scans
    "nc", "ncat", "netcat", "socat", "telnet", "curl", "wget", "aria2c", "axel", "ftp",
    "tftp", "rsync", "sftp", "ssh", "scp", "openssl", "nmap", "tcpdump",
    # decoders and text tools that rebuild a payload
    "base64", "base32", "xxd", "od", "gzip", "gunzip", "zcat", "xz", "tar", "sed", "tr",
    "rev", "printf", "echo", "cat", "tee", "head",
    # files, disks and destruction
    "rm", "dd", "cp", "mv", "ln", "find", "xargs", "chmod", "chown", "chattr", "truncate",
    "shred", "wipefs", "mkfs", "mkfs.ext4", "mkfs.xfs", "blkdiscard", "fdisk", "sfdisk",
    "parted", "mkfifo", "mknod",
    # accounts, privilege, modules, services, security settings
    "passwd", "chpasswd", "useradd", "usermod", "userdel", "groupadd", "visudo", "sudo", "su",
    "insmod", "modprobe", "rmmod", "nsenter", "unshare", "chroot", "iptables", "nft", "ufw",
    "setenforce", "systemctl", "crontab", "at", "kill", "pkill", "killall",
    # wrappers that run another program
    "env", "nohup", "setsid", "timeout", "nice", "stdbuf", "busybox",
    # containers, clouds and credential printers
    "docker", "podman", "kubectl", "ctr", "crictl", "gcloud", "aws", "az", "secret-tool",
    "gpg", "vault", "git", "pip", "npm",
    # who am I, and debuggers that attach
    "id", "whoami", "uname", "strace", "gdb",
)
# Names a word resolves to when unknown expansions are dropped (`c${u}rl` -> `curl`):
# the table, plus the builtins that run text.
KNOWN_PROGRAMS = frozenset({*_GLOB_NAMES, "eval", "exec", "source", "command", "builtin"})
_GLOB_FILES = {"/etc": ("passwd", "shadow", "sudoers", "hosts", "crontab")}
_GLOB_CHARS = re.compile(r"[?*\[]")


_POSIX_CLASSES = {
    "alpha": "a-zA-Z", "digit": "0-9", "alnum": "a-zA-Z0-9", "lower": "a-z", "upper": "A-Z",
    "space": " \t\n", "blank": " \t", "punct": "!-/:-@[-`{-~", "xdigit": "0-9A-Fa-f",
    "word": "a-zA-Z0-9_", "print": " -~", "graph": "!-~", "cntrl": "\x00-\x1f",
}
_POSIX_CLASS_RE = re.compile(r"\[:([a-z]+):\]")
_GLOB_COMPONENT = re.compile(r"\[(?:!|\^)?\]?(?:\[:[a-z]+:\]|[^\]])*\]|[?*]|[^\[?*]+|\[")


def _glob_regex(component: str) -> str:
    """One path component of a bash glob as a regex: `*`/`?` never cross a `/`."""
    out: list[str] = []
    for m in _GLOB_COMPONENT.finditer(component):
        tok = m.group(0)
        if tok == "*":
            out.append("[^/]*")
        elif tok == "?":
            out.append("[^/]")
        elif tok.startswith("[") and len(tok) > 2 and tok.endswith("]"):
            body = tok[1:-1]
            negate = body[:1] in ("!", "^")
            body = body[1:] if negate else body
            body = _POSIX_CLASS_RE.sub(lambda c: _POSIX_CLASSES.get(c.group(1), ""), body)
            body = body.replace("\\", "\\\\").replace("^", "\\^").replace("[", "\\[")
            if not body:
                return "(?!)"
            out.append(("[^" if negate else "[") + body + "]")
        else:
            out.append(re.escape(tok))
    return "".join(out)


@dataclass(frozen=True)
class ProgramIndex:
    """The program paths a glob in a command word may name: data, so the engine does no I/O.

    The default is a static table of the usual places and the programs attackers
    reach with globs; a caller may build one once from a snapshot of PATH.
    """

    paths: tuple[str, ...]
    _joined: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # bash sorts a glob's matches: the first one sorted is the program that runs.
        paths = tuple(sorted(set(self.paths)))
        object.__setattr__(self, "paths", paths)
        object.__setattr__(self, "_joined", "\n".join(paths) + "\n")

    def matches(self, word: str, limit: int = 2) -> list[str]:
        """The first `limit` paths (sorted, as bash orders them) the glob `word` matches."""
        if not word.startswith("/") or not _GLOB_CHARS.search(word) or len(word) > 128:
            return []
        if not _GLOB_CHARS.sub("", word.rsplit("/", 1)[-1]):
            return []  # `/usr/bin/*` lists a directory; it does not name one program
        try:
            pattern = re.compile(
                "^" + "/".join(_glob_regex(c) for c in word.split("/")) + "$", re.MULTILINE)
        except re.error:
            return []
        # C-speed scans over all paths (one per line), not a Python loop per path.
        out: list[str] = []
        for m in pattern.finditer(self._joined):
            out.append(m.group(0))
            if len(out) >= limit:
                break
        return out

    def resolve(self, word: str) -> str | None:
        """`/u?r/s?in/wip?fs` -> `/usr/sbin/wipefs`: the first path the glob matches."""
        found = self.matches(word, 1)
        return found[0] if found else None


DEFAULT_PROGRAMS = ProgramIndex(
    tuple(f"{d}/{n}" for d in _GLOB_DIRS for n in _GLOB_NAMES)
    + tuple(f"{d}/{n}" for d, names in _GLOB_FILES.items() for n in names)
)


def resolve_glob_path(word: str, programs: ProgramIndex = DEFAULT_PROGRAMS) -> str | None:
    """`/???/b??h` -> `/bin/bash` (first known path the glob matches), else None."""
    return programs.resolve(word)
