"""Encoded layers that feed an interpreter, decoded so their text can be classified too.

This module owns `find_payloads(parsed)`: for each pipeline whose data starts
as a literal (echo/printf arguments, a here-string or here-document) it
replays the decoding stages bash would run — base64/base32 -d, openssl base64
-d, xxd -r, rev, tr (rot13 and other literal maps), printf/echo -e escapes,
gzip/zlib — and reports the resulting text and the command it is fed to
(`Payload`). It also decodes base64 literals inside interpreter code
(`exec(b64decode('…'))`), and reports the command strings interpreter code
hands to a shell (`os.system("…")`, backticks, `child_process.exec`…; read by
handoff.py) as payloads fed to `sh` with the decoder chain `("exec",)`.
Everything is pure and size-bounded.
"""

from __future__ import annotations

import base64
import binascii
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass

from attyguard.engine.handoff import code_bodies, embedded_commands, shell_strings
from attyguard.engine.normalize import decode_printf_escapes
from attyguard.engine.parse import Command, Parsed, Span

__all__ = ["MAX_PAYLOAD", "RUNS_LATER_RE", "SHELL_HANDOFF", "WRITTEN", "Payload",
           "find_payloads", "written_text"]

MAX_PAYLOAD = 65_536  # characters of decoded text kept per payload
# `fed_to` of a command string interpreter code hands to a shell (handoff.py); its
# decoder chain is ("exec",).
SHELL_HANDOFF = "sh"
# The decoder chain of text written where a shell runs it later (an rc file, a cron
# table, an at job): `fed_to` is the file's path, or `crontab`/`at`/`batch`.
WRITTEN = "written"
# Files whose content a shell runs later: start-up files, cron tables, boot scripts,
# login banners (update-motd.d runs as root at every login), network hooks, git hooks.
RUNS_LATER_RE = re.compile(
    r"(^|/)\.(bashrc|bash_profile|bash_login|bash_logout|profile|zshrc|zprofile|zshenv|zlogin"
    r"|zlogout|kshrc|mkshrc|cshrc|tcshrc|xprofile|xinitrc|xsession|bash_aliases)$"
    r"|(^|/)etc/(profile(\.d/.*)?|bash\.bashrc|bashrc|zsh/\S+|zshrc|zprofile|zshenv|zlogin"
    r"|rc\.local|init\.d/.*)$|(^|/)config\.fish$|/fish/conf\.d/"
    r"|(^|/)etc/(crontab|cron\.d/.*)$|(^|/)var/spool/cron(/.*)?$"
    r"|(^|/)etc/(update-motd\.d|NetworkManager/dispatcher\.d|network/if-(pre-)?(up|down)\.d"
    r"|X11/Xsession\.d|cron\.(hourly|daily|weekly|monthly))/[^/]+$|(^|/)\.git/hooks/[\w-]+$"
)
_CRON_FILE_RE = re.compile(r"(^|/)etc/(crontab|cron\.d/.*)$|(^|/)var/spool/cron(/.*)?$")
_SYSTEM_CRON_RE = re.compile(r"(^|/)etc/(crontab|cron\.d/.*)$")  # these have a user field
_SCHEDULE_RE = re.compile(
    r"^\s*(?:@\w+|(?:\S+\s+){4}\S+)\s+", re.MULTILINE)
_DEFERRED = frozenset({"at", "batch", "crontab", "fcrontab"})



@dataclass(frozen=True, slots=True)
class Payload:
    text: str
    fed_to: str  # command name the decoded text flows into ("" when it goes nowhere)
    decoders: tuple[str, ...]  # e.g. ("base64", "gzip"); () for a literal heredoc fed to sh
    span: Span
    replaces: str = ""  # the `$(…)` text the decoded text stands for, when it is a command name


def _b64(data: bytes) -> bytes | None:
    compact = re.sub(rb"\s+", b"", data)
    if not compact:
        return None
    compact += b"=" * (-len(compact) % 4)
    try:
        return base64.b64decode(compact, altchars=None, validate=False)
    except (binascii.Error, ValueError):
        try:
            return base64.urlsafe_b64decode(compact)
        except (binascii.Error, ValueError):
            return None


def _b32(data: bytes) -> bytes | None:
    compact = re.sub(rb"\s+", b"", data).upper()
    compact += b"=" * (-len(compact) % 8)
    try:
        return base64.b32decode(compact)
    except (binascii.Error, ValueError):
        return None


def _hex(data: bytes) -> bytes | None:
    compact = re.sub(rb"[\s:]|\\x|0x", b"", data)
    if len(compact) % 2:
        compact = compact[:-1]
    try:
        return binascii.unhexlify(compact)
    except (binascii.Error, ValueError):
        return None


def _gunzip(data: bytes) -> bytes | None:
    try:
        d = zlib.decompressobj(wbits=47)  # gzip or zlib header, auto-detected
        return d.decompress(data, MAX_PAYLOAD)
    except zlib.error:
        return None


def _rev(data: bytes) -> bytes:
    return b"\n".join(line[::-1] for line in data.split(b"\n"))


def _expand_tr_set(spec: str) -> str | None:
    out: list[str] = []
    i = 0
    while i < len(spec):
        if i + 2 < len(spec) and spec[i + 1] == "-":
            lo, hi = ord(spec[i]), ord(spec[i + 2])
            if hi < lo or hi - lo > 256:
                return None
            out.extend(chr(c) for c in range(lo, hi + 1))
            i += 3
        else:
            out.append(spec[i])
            i += 1
    return "".join(out)


def _tr(args: tuple[str, ...]) -> Callable[[bytes], bytes | None] | None:
    if len(args) != 2 or any(a.startswith("-") for a in args) or "[" in "".join(args):
        return None
    src, dst = _expand_tr_set(args[0]), _expand_tr_set(args[1])
    if not src or not dst:
        return None
    dst = dst + dst[-1] * max(0, len(src) - len(dst))
    table = str.maketrans(src, dst[: len(src)])

    def apply(data: bytes) -> bytes:
        return data.decode("latin-1").translate(table).encode("latin-1", "replace")

    return apply


def _decoder(cmd: Command) -> tuple[str, Callable[[bytes], bytes | None]] | None:
    """The transformation `cmd` applies to its stdin, if it is a decoder we can replay."""
    name = cmd.name
    argv = cmd.argv
    flags = {a for a in argv if a.startswith("-")}
    decode_flag = bool(flags & {"-d", "--decode", "-D"}) or any(
        a.startswith("-") and not a.startswith("--") and "d" in a for a in argv
    )
    if name == "b64decode" or (name in ("base64", "gbase64") and decode_flag):
        return "base64", _b64
    if name in ("base32",) and decode_flag:
        return "base32", _b32
    if name == "openssl" and ("base64" in argv or "-base64" in argv or "-a" in argv) and (
        "-d" in argv
    ):
        return "base64", _b64
    if name == "xxd" and any(a.startswith("-r") for a in argv):
        return "hex", _hex
    if name == "basenc" and decode_flag:
        return ("base32", _b32) if "--base32" in argv else ("base64", _b64)
    if name == "rev":
        return "rev", _rev
    if name in ("gunzip", "zcat") or (name in ("gzip", "pigz") and decode_flag):
        return "gzip", _gunzip
    if name == "tr":
        fn = _tr(argv)
        if fn is not None:
            return "tr", fn
    if name == "perl" and any("unpack" in a or "pack" in a for a in argv):
        return None
    return None


def _literal_source(cmd: Command) -> tuple[bytes, tuple[str, ...]] | None:
    """The literal bytes `cmd` writes to stdout (echo/printf with constant arguments)."""
    argv = cmd.argv
    if any(w.dynamic for w in cmd.args):
        return None
    if cmd.name == "echo":
        interpret = False
        words = list(argv)
        while words and re.fullmatch(r"-[neE]+", words[0]):
            interpret = interpret or "e" in words[0]
            words.pop(0)
        text = " ".join(words)
        if interpret:
            decoded = decode_printf_escapes(text)
            return _enc(decoded), (("printf",) if decoded != text else ())
        return _enc(text), ()
    if cmd.name == "printf" and argv:
        fmt, rest = argv[0], argv[1:]
        if fmt in ("%s", "%b", "%s\\n", "%b\\n") and rest:
            body = "".join(rest)
            decoded = decode_printf_escapes(body) if "b" in fmt else body
        elif "%" not in fmt.replace("%%", ""):
            decoded = decode_printf_escapes(fmt).replace("%%", "%")
        else:
            return None
        return _enc(decoded), (("printf",) if "\\" in fmt or "\\" in "".join(rest) else ())
    for red in cmd.redirects:
        if red.op in ("<<<", "<<", "<<-"):
            return _enc(red.target), ()
    return None


def _enc(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")[: MAX_PAYLOAD * 2]


def _text(data: bytes) -> str | None:
    """Decoded bytes as text, or None when they are binary noise rather than code."""
    text = data[:MAX_PAYLOAD].decode("utf-8", "replace")
    if not text.strip():
        return None
    printable = sum(1 for c in text if (c.isprintable() and c != "\ufffd") or c in "\n\t\r")
    return text if printable >= 0.85 * len(text) else None


def _flow_payloads(flow: tuple[Command, ...]) -> list[Payload]:
    out: list[Payload] = []
    for i, src in enumerate(flow):
        literal = _literal_source(src)
        # A decoder reading a here-string is both source and first stage.
        start = i + 1
        if literal is None:
            continue
        data, chain = literal
        decoders = list(chain)
        if _decoder(src) is not None:
            start = i
        j = start
        while j < len(flow):
            dec = _decoder(flow[j])
            if dec is None:
                break
            kind, fn = dec
            got = fn(data)
            if got is None:
                return out
            data = got
            decoders.append(kind)
            j += 1
        sink = flow[j] if j < len(flow) else None
        if not decoders and sink is None:
            continue
        text = _text(data)
        if text is None:
            continue
        fed_to = sink.name if sink is not None else ""
        replaces = ""
        if sink is not None and (sink.path.startswith("$(") or sink.path.startswith("`")):
            fed_to = "$(…)"
            replaces = sink.path
        span_end = sink.span if sink is not None else flow[max(j - 1, i)].span
        out.append(Payload(text, fed_to, tuple(decoders),
                           (min(src.span[0], span_end[0]), max(src.span[1], span_end[1])),
                           replaces))
        break
    return out


_B64_CALL_RE = re.compile(
    r"(?:b64decode|base64_decode|decode_base64|decode64|atob|Base64\.decode|from_base64|FromBase64String)"
    r"\s*\(\s*[bu]?['\"]([A-Za-z0-9+/=_-]{4,})['\"]"
)


def written_text(cmd: Command) -> str | None:
    """The text `cmd` writes out when the line decides it (echo, printf, a here-doc).

    Looser than `_literal_source`: environment variables stay as written (`$HOME`,
    `$PATH` in an rc line are ordinary), but a command substitution makes the text
    unknown (None): what it prints is decided when the line runs.
    """
    for red in cmd.redirects:
        if red.op in ("<<", "<<-", "<<<") and cmd.name in ("cat", "tee", *_DEFERRED):
            return red.target
    argv = cmd.argv
    if any(w.dynamic and ("$(" in w.value or "`" in w.value or "<(" in w.value)
           for w in cmd.args):
        return None
    if cmd.name == "echo":
        words = list(argv)
        interpret = False
        while words and re.fullmatch(r"-[neE]+", words[0]):
            interpret = interpret or "e" in words.pop(0)
        text = " ".join(words)
        return decode_printf_escapes(text) if interpret else text
    if cmd.name == "printf" and argv:
        fmt, rest = argv[0], argv[1:]
        if fmt in ("%s", "%b", "%s\\n", "%b\\n") and rest:
            body = "".join(rest)
            return decode_printf_escapes(body) if "b" in fmt else body
        if "%" not in fmt.replace("%%", ""):
            return decode_printf_escapes(fmt).replace("%%", "%")
    return None


def _deferred_shell_text(where: str, text: str) -> str:
    """Cron lines lose their schedule (and a system table's user field): the rest is shell."""
    if where in ("crontab", "fcrontab") or _CRON_FILE_RE.search(where):
        text = _SCHEDULE_RE.sub("", text)
        if _SYSTEM_CRON_RE.search(where):
            text = re.sub(r"^\s*[\w.-]+\s+", "", text, flags=re.MULTILINE)
    return text


def _written_later(parsed: Parsed) -> list[tuple[str, str, Span]]:
    """(where, text, span): literal text written to a file run later, or queued for at/cron."""
    out: list[tuple[str, str, Span]] = []
    for flow in parsed.pipelines:
        text: str | None = None
        for cmd in flow:
            own = written_text(cmd)
            for red in cmd.redirects:
                if (own is not None and red.op in (">", ">>", ">|", "&>", "&>>")
                        and RUNS_LATER_RE.search(red.target)):
                    out.append((red.target, _deferred_shell_text(red.target, own), cmd.span))
            if cmd.name in ("tee", "sponge") and text is not None:
                for target in (a for a in cmd.argv if not a.startswith("-")):
                    if RUNS_LATER_RE.search(target):
                        out.append((target, _deferred_shell_text(target, text), cmd.span))
            if cmd.name in _DEFERRED:
                body = own if own is not None and cmd.redirects else text
                if body is not None and not any(a in ("-l", "-r", "-e", "-c") for a in cmd.argv):
                    out.append((cmd.name, _deferred_shell_text(cmd.name, body), cmd.span))
            if own is not None:
                text = own  # what flows on to the next command of the pipe
            elif cmd.name not in ("crontab", "sudo") or "-l" not in cmd.argv:
                text = None if cmd.name not in ("cat",) or cmd.argv else text
    return [(w, t, s) for w, t, s in out if t.strip()]


def find_payloads(parsed: Parsed) -> tuple[Payload, ...]:
    """Every decoded layer in the line, each with the command it is fed to."""
    out: list[Payload] = []
    seen: set[tuple[str, str]] = set()
    for flow in parsed.pipelines:
        for p in _flow_payloads(flow):
            if not p.decoders and p.fed_to in _DEFERRED:
                continue  # plain text queued for at/cron: reported below as written text
            if (p.text, p.fed_to) not in seen:
                seen.add((p.text, p.fed_to))
                out.append(p)
    # base64 literals handed to a decoding call inside interpreter code.
    for interp, code, span in parsed.scripts:
        for m in _B64_CALL_RE.finditer(code):
            raw = _b64(m.group(1).encode("ascii"))
            text = _text(raw) if raw else None
            if text is not None and (text, interp) not in seen:
                seen.add((text, interp))
                out.append(Payload(text, interp, ("base64",), span))
    # Command strings interpreter code hands to a shell (`os.system("…")`, backticks…):
    # judged again as a line, like decoded text. Under sudo they run as root: say so.
    handed = [(span, owner, shell_strings(interp, code))
              for interp, code, span, owner in code_bodies(parsed)]
    handed += [(cmd.span, cmd, embedded_commands(cmd)) for cmd in parsed.commands
               if cmd.args]
    for span, owner, texts in handed:
        root = owner is not None and bool({"sudo", "doas"}.intersection(owner.wrappers))
        for text in texts:
            text = f"sudo {text}" if root else text
            if (text, SHELL_HANDOFF) not in seen:
                seen.add((text, SHELL_HANDOFF))
                out.append(Payload(text, SHELL_HANDOFF, ("exec",), span))
    # Literal text written where a shell runs it later (rc files, cron tables, at jobs):
    # judged again as a line, and matched by the persistence rules (decoders: written).
    for target, text, span in _written_later(parsed):
        if (text, target) not in seen:
            seen.add((text, target))
            out.append(Payload(text, target, (WRITTEN,), span))
    # `bash -c <base64…>`-style blobs given straight to an interpreter's -c/-e.
    for cmd in parsed.commands:
        if cmd.name in ("pwsh", "powershell", "powershell.exe"):
            for i, v in enumerate(cmd.argv[:-1]):
                if v.lower() in ("-enc", "-e", "-encodedcommand", "-ec"):
                    raw = _b64(cmd.argv[i + 1].encode("ascii", "replace"))
                    if raw:
                        text = raw.decode("utf-16-le", "replace")
                        out.append(Payload(text, cmd.name, ("base64",), cmd.span))
    # A decoded text that also reaches a command is reported once, with that command.
    sunk = {p.text for p in out if p.fed_to}
    # Not truncated here: the engine's work budget bounds (and reports) the re-analysis.
    return tuple(p for p in out if p.fed_to or p.text not in sunk)

