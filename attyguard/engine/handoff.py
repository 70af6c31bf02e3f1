"""What interpreter code hands to a shell: the command strings inside `python -c`, `perl -e`, ….

This module owns reading inline code of other languages — `python -c`,
`perl -e`, `ruby -e`, `node -e`, `php -r`, `lua -e`, awk programs,
`jrunscript -e`, `julia -e`, `groovy -e`, and here-docs into them — for the
text it gives to a shell or runs as a program: `os.system("…")`,
`subprocess.run([...])`, `popen`, `system`, `exec`, `shell_exec`, backticks,
`qx{…}`, `%x(…)`, `child_process.exec(…)`, `Runtime.exec(…)`, awk's
`system()` and `"cmd" | getline`, perl's pipe opens — and the commands other
programs are told to run through a shell (`sqlite3 '.shell CMD'`, `mysql -e
'\\! CMD'`, `vim -c ':!CMD'`, `gdb -ex '!CMD'`, `tar --to-command=CMD`,
`ssh -o ProxyCommand=CMD`, `zip -TT CMD`). decode.py turns each
string into a payload, which the engine judges again as a command line (as
it judges decoded text), so `perl -e 'system("rm -rf /")'` is judged as
`rm -rf /`. Only string literals are read (a variable's value is unknown
here); an argument list (`["nc", "-e", "/bin/sh", …]`) becomes one
shell-quoted line. Pure and bounded: at most MAX_STRINGS strings per code body.

No library parses this many languages' string syntax for us, and only
literal arguments of a known set of calls matter, so a small scanner is
written here.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator

from attyguard.engine.normalize import decode_printf_escapes
from attyguard.engine.parse import Command, Parsed, Span

__all__ = ["MAX_STRINGS", "code_bodies", "embedded_commands", "shell_strings"]

MAX_STRINGS = 16  # command strings taken from one code body
_MAX_ARGS = 4_000  # characters of one call's argument list scanned

_AWK = frozenset({"awk", "gawk", "mawk", "nawk", "busybox-awk"})
_AWK_VALUE_OPTS = frozenset({"-F", "-v", "--field-separator", "--assign"})
# Interpreters whose inline code parse.py does not keep (`-e CODE`): read from the command.
_EXTRA_E = {"jrunscript": ("-e",), "julia": ("-e", "-E", "--eval"), "groovy": ("-e",),
            "jjs": ("-e",), "tclsh": ()}

# Calls that hand their (first) string argument to a shell or run it as a program.
_CALLS = (
    r"system|popen[23]?|exec|execSync|execFile|execFileSync|spawn|spawnSync|shell_exec|passthru"
    r"|proc_open|pcntl_exec|getoutput|getstatusoutput|check_output|check_call|call|run|Popen"
    r"|execute|capture2e?|capture3|popen2e|exec[lv]p?e?|ProcessBuilder|startProcess|spawn_command"
)
_CALL_RE = re.compile(rf"(?<![\w$])(?:{_CALLS})(?=\s*\(|\s+['\"])")
# String literals: python prefixes, triple quotes, perl q{}/qq{}, lua [[…]], backticks.
_LITERAL_RE = re.compile(
    r"""(?:[rRbBuUfF]{0,2})(?:\"\"\"(?P<t3>.*?)\"\"\"|'''(?P<s3>.*?)'''"""
    r"""|"(?P<dq>(?:[^"\\]|\\.)*+)"|'(?P<sq>(?:[^'\\]|\\.)*+)'|`(?P<bt>(?:[^`\\]|\\.)*+)`"""
    r"""|\bqq?\s*\{(?P<qb>[^{}]*+)\}|\bqq?\s*\((?P<qp>[^()]*+)\)|\[\[(?P<lua>.*?)\]\])""",
    re.DOTALL,
)
# Text a language runs as a command on its own: backticks, qx{…}, %x(…).
_COMMAND_LITERAL_RE = re.compile(
    r"""`(?P<bt>(?:[^`\\]|\\.)*+)`|\bqx\s*(?:\{(?P<qb>[^{}]*+)\}|\((?P<qp>[^()]*+)\)"""
    r"""|/(?P<qs>[^/]*+)/)|%x\s*(?:\{(?P<xb>[^{}]*+)\}|\((?P<xp>[^()]*+)\)|\[(?P<xk>[^\[\]]*+)\])""",
)
# Before a call's first argument: brackets of a list/array, `new String[]{`.
_LEAD_RE = re.compile(r"^\s*(?:new\s+[\w.]+\s*(?:\[\s*\])?\s*)?(?:\[(?!\[)|[({\s])*")
_BACKTICK_COMMANDS = frozenset({"perl", "ruby", "php", "julia"})
# awk: `"cmd" | getline`, `"cmd" |& getline`, `print … | "cmd"`.
_AWK_PIPE_RE = re.compile(r'"((?:[^"\\]|\\.)*+)"\s*\|&?\s*getline|\|&?\s*"((?:[^"\\]|\\.)*+)"')
# perl: open(F, "cmd |"), open(F, "| cmd"), open(my $f, "-|", "cmd").
_PERL_OPEN_RE = re.compile(r"\bopen\s*\(?[^,;]{0,40},\s*(['\"])(.*?)\1(?:\s*,\s*(['\"])(.*?)\3)?",
                           re.DOTALL)
_SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "/bin/sh", "/bin/bash", "/bin/dash",
                     "/usr/bin/sh", "/usr/bin/bash", "/bin/zsh", "cmd", "cmd.exe"})


def _python_like(interp: str) -> bool:
    return interp.startswith(("python", "pypy"))


def _literal_value(m: re.Match[str]) -> str:
    for group in ("t3", "s3", "dq", "sq", "bt", "qb", "qp", "lua"):
        value = m.group(group)
        if value is not None:
            if group in ("dq", "t3", "bt"):
                return decode_printf_escapes(value)
            if group in ("sq", "s3"):
                return value.replace("\\'", "'").replace("\\\\", "\\")
            return value
    return ""


def _call_args(code: str, start: int) -> str:
    """The text of a call's arguments from `start` (just after the name), bounded.

    `(…)` with balanced brackets and quotes skipped; without parentheses (perl/ruby
    `system "cmd"`), the text up to the end of the statement.
    """
    i = start
    n = len(code)
    while i < n and code[i] in " \t":
        i += 1
    if i >= n:
        return ""
    if code[i] != "(":
        end = min(n, i + _MAX_ARGS)
        stop = re.compile(r"[;\n}]|\b(?:if|unless|or|and)\b").search(code, i, end)
        return code[i : stop.start() if stop else end]
    depth = 0
    quote = ""
    j = i
    end = min(n, i + _MAX_ARGS)
    while j < end:
        c = code[j]
        if quote:
            if c == "\\":
                j += 2
                continue
            if c == quote:
                quote = ""
        elif c in "'\"`":
            quote = c
        elif c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
            if depth == 0:
                return code[i + 1 : j]
        j += 1
    return code[i + 1 : end]


def _argv_line(name: str, literals: list[str]) -> str | None:
    """The command line a call with these literal arguments runs."""
    if not literals:
        return None
    if len(literals) >= 3 and literals[0] in _SHELLS and literals[1] in ("-c", "/c"):
        return literals[2]  # ["sh", "-c", CMD]: CMD is the line
    if len(literals) == 1:
        return literals[0]  # one string: handed to a shell (system, popen, exec…)
    if re.fullmatch(r"exec[lv]p?e?", name) and len(literals) >= 2:
        literals = [literals[0], *literals[2:]]  # execl(path, argv0, args…)
    return shlex.join(literals)


def shell_strings(interp: str, code: str) -> list[str]:
    """Command lines `code` (in the language of `interp`) hands to a shell or runs."""
    out: list[str] = []
    is_awk = interp in _AWK
    for m in _CALL_RE.finditer(code):
        if len(out) >= MAX_STRINGS:
            return out
        name = m.group(0)
        if is_awk and name != "system":
            continue
        if _python_like(interp) and name == "exec":
            continue  # python's exec() runs python code, not a command
        args = _call_args(code, m.end())
        if not args:
            continue
        first = _LITERAL_RE.match(_LEAD_RE.sub("", args, count=1))
        if first is None:
            continue  # the first argument is not a literal: its value is unknown here
        literals = [_literal_value(x) for x in _LITERAL_RE.finditer(args)][:64]
        line = _argv_line(name, literals)
        if line and line.strip():
            out.append(line)
    if is_awk:
        for m in _AWK_PIPE_RE.finditer(code):
            text = m.group(1) if m.group(1) is not None else m.group(2)
            if text and not text.startswith("/inet") and len(out) < MAX_STRINGS:
                out.append(decode_printf_escapes(text))
    elif interp in _BACKTICK_COMMANDS or interp.startswith(("perl", "ruby", "php")):
        for m in _COMMAND_LITERAL_RE.finditer(code):
            text = next((g for g in m.groups() if g is not None), "")
            if text.strip() and len(out) < MAX_STRINGS:
                out.append(text)
    if interp.startswith("perl"):
        for m in _PERL_OPEN_RE.finditer(code):
            mode, rest = m.group(2), m.group(4)
            if mode in ("-|", "|-") and rest:
                out.append(rest)
            elif mode.strip().endswith("|") or mode.strip().startswith("|"):
                out.append(mode.strip().strip("|"))
    return [s for s in dict.fromkeys(out) if s.strip()][:MAX_STRINGS]


def _awk_program(cmd: Command) -> tuple[str, Span] | None:
    args = cmd.args
    i = 0
    while i < len(args):
        v = args[i].value
        if v == "--":
            i += 1
            break
        if v in ("-f", "--file") or v.startswith("-f"):
            return None  # the program is in a file
        if v in _AWK_VALUE_OPTS:
            i += 2
            continue
        if v.startswith("-") and len(v) > 1:
            i += 1
            continue
        break
    if i < len(args):
        return args[i].value, args[i].span
    return None


def code_bodies(parsed: Parsed) -> Iterator[tuple[str, str, Span, Command | None]]:
    """(interpreter, code, span, the command running it) for every inline code body."""
    by_span: dict[str, list[Command]] = {}
    for cmd in parsed.commands:
        by_span.setdefault(cmd.name, []).append(cmd)
    for interp, code, span in parsed.scripts:
        owner = next((c for c in by_span.get(interp, ())
                      if c.span[0] <= span[0] and span[1] <= c.span[1]), None)
        yield interp, code, span, owner
    for cmd in parsed.commands:
        if cmd.name in _AWK:
            program = _awk_program(cmd)
            if program is not None:
                yield cmd.name, program[0], program[1], cmd
        elif cmd.name in _EXTRA_E:
            argv = cmd.args
            for i, w in enumerate(argv[:-1]):
                if w.value in _EXTRA_E[cmd.name]:
                    yield cmd.name, argv[i + 1].value, argv[i + 1].span, cmd
                    break


# Programs told to run a command through a shell: (option that takes the text or "" for
# any argument, prefixes that mark a shell command inside it).
_EMBEDDED: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "sqlite3": (("",), (".shell ", ".system ")),
    "sqlite": (("",), (".shell ", ".system ")),
    "mysql": (("-e", "--execute"), ("\\! ", "\\!", "system ")),
    "mariadb": (("-e", "--execute"), ("\\! ", "\\!", "system ")),
    "psql": (("-c", "--command"), ("\\! ", "\\!")),
    "vim": (("-c", "--cmd", "+"), (":!", "!", ":call system(", "call system(")),
    "vi": (("-c", "+"), (":!", "!")),
    "nvim": (("-c", "--cmd", "+"), (":!", "!")),
    "view": (("-c", "+"), (":!", "!")),
    "ex": (("-c", "+"), (":!", "!")),
    "gdb": (("-ex", "--eval-command"), ("!", "shell ")),
    "ssh": (("-o",), ("ProxyCommand=", "LocalCommand=")),
    "tar": (("--to-command", "--checkpoint-action", "-I", "--use-compress-program"),
            ("", "exec=")),
    "zip": (("-TT", "--unzip-command"), ("",)),
}


def embedded_commands(cmd: Command) -> list[str]:
    """Commands `cmd` hands to a shell through its own options (see _EMBEDDED)."""
    spec = _EMBEDDED.get(cmd.name)
    if spec is None:
        return []
    options, prefixes = spec
    argv = cmd.argv
    values: list[str] = []
    for i, v in enumerate(argv):
        if "" in options:
            values.append(v)
            continue
        for opt in options:
            if v == opt and i + 1 < len(argv):
                values.append(argv[i + 1])
            elif opt == "+" and v.startswith("+") and len(v) > 1:
                values.append(v[1:])
            elif opt.startswith("--") and v.startswith(opt + "="):
                values.append(v[len(opt) + 1 :])
            elif opt == "-o" and v.startswith("-o") and len(v) > 2:
                values.append(v[2:])
    out: list[str] = []
    for value in values[:MAX_STRINGS]:
        text = value.strip()
        for prefix in sorted(prefixes, key=len, reverse=True):
            if text.startswith(prefix):
                rest = text[len(prefix):]
                if prefix.endswith("system("):
                    m = _LITERAL_RE.match(rest.strip())
                    rest = _literal_value(m) if m else ""
                if rest.strip():
                    out.append(rest.strip())
                break
    return out
