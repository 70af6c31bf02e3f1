"""-c, scripts and piped stdin: classify what bash will run, then exec bash (no UI).

What is judged is what bash will run, not only the text it was handed:
- the `-c` string with its operands filled in where it uses them (`$1`,
  `${2…}`, `$@`, `$*`, `$0`), so `-c 'eval "$1"' _ PAYLOAD` is judged as the
  payload it evaluates;
- the files it reads first: `$BASH_ENV` (non-interactive), `--rcfile`/
  `--init-file`/~/.bashrc (with -i), `$ENV` (-i in POSIX mode);
- the files the text hands to a shell (`. FILE`, `bash FILE`, …: filejudge).
Each file (and a script, even a FIFO or /dev/stdin) is read once; bash is
pointed at sealed copies of the judged bytes (/dev/fd/N), never at a second read.

A block verdict prints one line on stderr and exits 126 without running
anything (for a script or stdin the line names where: `REFUSED — script.sh:3:
<reason>: <that line>`, stdin as `stdin:3`); so does a text or file too large
or too complex to analyse (unless the user trusted it: nobody is here to ask).
A warn verdict prints one line and runs (config shell.noninteractive_warn =
"refuse" makes it exit 126). A classifier that cannot be imported or whose
rules cannot be loaded also exits 126 with one line (fail closed). Then bash
replaces this process, so exit status, stdin and signals are bash's own.

What differs from bash reading the files itself: a script runs as
`bash -c '. /dev/fd/N' SCRIPT ARGS…`, so `$0` and `$@` are as usual but
`$BASH_SOURCE` (and bash's error messages) name /dev/fd/N; a sourced file
or `$BASH_ENV` likewise; the copies stay open on fds 200+ in the process tree.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
from typing import TYPE_CHECKING, Any

from attyguard.shell.args import ShellArgs

if TYPE_CHECKING:
    from attyguard.engine.verdict import Verdict

__all__ = ["run_noninteractive", "substitute_positionals"]

_MAX_SCRIPT = 64 * 1024 * 1024  # read (to hash for trust) at most; beyond: refused
_TOO_BIG_RULE = "noninteractive.too-large"


def _bash() -> str:
    return "/bin/bash" if os.path.exists("/bin/bash") else "bash"


def _read_fd(fd: int, limit: int) -> tuple[bytes, bool]:
    """Up to `limit` bytes from fd; (data, truncated)."""
    chunks: list[bytes] = []
    size = 0
    while size <= limit:
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        if not chunk:
            return b"".join(chunks), False
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)[:limit], size > limit


def _read_stdin_to_memfd() -> tuple[bytes, int, bool]:
    """All of stdin (bounded), and an fd to hand bash the same bytes as its stdin."""
    data, truncated = _read_fd(0, _MAX_SCRIPT)
    fd = os.memfd_create("attyguard-stdin", 0)
    os.write(fd, data)
    os.lseek(fd, 0, os.SEEK_SET)
    return data, fd, truncated


def _unavailable(why: object) -> int:
    text = " ".join(str(why).split())[:300]
    print(f"attyguard: REFUSED — classifier unavailable ({text}); nothing was run",
          file=sys.stderr)
    return 126


# --- operands --------------------------------------------------------------------------

_PARAM = re.compile(r"\$(?:(\d)|([@*])|\{([@*]|\d+)((?:[^}\\]|\\.)*)\})")


def _dq_escape(value: str) -> str:
    return re.sub(r'([\\"$`])', r"\\\1", value)


def substitute_positionals(text: str, params: list[str]) -> str | None:
    """`text` with the positional parameters it expands filled in, for judging; None if none.

    params[0] is $0. Inside double quotes a value is escaped for double
    quotes; unquoted, each of its words is quoted (bash splits it into
    literal words, it never parses it again); in single quotes nothing
    expands. An unset parameter stays as it is. Hand-written: shlex knows no
    bash quoting contexts (`$(…)` inside "…", `$'…'`).
    """
    if "$" not in text:
        return None
    out: list[str] = []
    stack: list[str] = [""]  # "" unquoted, '"' double quotes; $( pushes ""
    i = 0
    changed = False
    n = len(text)
    while i < n:
        ch = text[i]
        ctx = stack[-1]
        if ch == "\\" and i + 1 < n:
            out.append(text[i:i + 2])
            i += 2
            continue
        if ctx == "" and ch == "'":
            end = text.find("'", i + 1)
            end = n if end < 0 else end + 1
            out.append(text[i:end])
            i = end
            continue
        if ctx == "" and text.startswith("$'", i):
            j = i + 2
            while j < n and text[j] != "'":
                j += 2 if text[j] == "\\" else 1
            out.append(text[i:j + 1])
            i = j + 1
            continue
        if ch == '"':
            if ctx == '"':
                stack.pop()
            else:
                stack.append('"')
            out.append(ch)
            i += 1
            continue
        if text.startswith("$(", i) and not text.startswith("$((", i):
            stack.append("")
            out.append("$(")
            i += 2
            continue
        if ch == ")" and len(stack) > 1 and ctx == "":
            stack.pop()
            out.append(ch)
            i += 1
            continue
        if ch == "$":
            m = _PARAM.match(text, i)
            if m:
                name = m.group(1) or m.group(2) or m.group(3)
                if name in ("@", "*"):
                    values: list[str] | None = params[1:] if len(params) > 1 else None
                else:
                    index = int(name)
                    values = [params[index]] if index < len(params) else None
                if values is not None:
                    joined = " ".join(values)
                    if ctx == '"':
                        out.append(_dq_escape(joined))
                    else:
                        out.append(" ".join(shlex.quote(w) for v in values for w in v.split()))
                    changed = True
                    i = m.end()
                    continue
        out.append(ch)
        i += 1
    return "".join(out) if changed else None


# --- what bash will read first ---------------------------------------------------------


def _startup_files(args: ShellArgs, env: dict[str, str], home: str) -> list[tuple[str, str]]:
    """(kind, path) of the files bash reads before the command, that we can pin."""
    files: list[tuple[str, str]] = []
    if args.force_interactive:
        if args.posix:
            if env.get("ENV"):
                files.append(("ENV", env["ENV"]))
        elif args.rcfile is not None and not args.norc:
            files.append(("rcfile", args.rcfile))
        elif not args.norc and not args.login:
            files.append(("bashrc", os.path.join(home, ".bashrc")))
    elif env.get("BASH_ENV") and not args.posix:
        files.append(("BASH_ENV", env["BASH_ENV"]))
    return files


class _Plan:
    """What bash will be exec'd with, built while judging."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.argv = argv
        self.env = env
        self.verdicts: list[Verdict] = []
        self.unjudged: list[str] = []  # why something could not be judged (refuse)
        self.trusted_text = False


def _file_text(path: str) -> tuple[bytes | None, str | None]:
    from attyguard.filejudge import read_bounded

    return read_bounded(path)


# What a refusal calls piped stdin in `NAME:LINE:`. Not `-` (the usual
# command-line spelling): right after "REFUSED —" a lone dash reads as
# punctuation; bash's own messages for stdin say only "line N".
_STDIN_NAME = "stdin"


def _line_of_hit(verdict: Verdict, own: list[Verdict], text: str) -> int | None:
    """The line of `text` (a script's or stdin's) that `verdict`'s reason names.

    Only for a verdict on that text itself (its hits' spans are offsets into
    it); hits from a file the text sources carry their own `(in FILE:LINE)`
    and point here at the line that sources it. None: no line is known.
    """
    if not any(verdict is v for v in own) or not verdict.rules:
        return None
    from attyguard.filejudge import line_of

    # (the same hit `Verdict.reason` names)
    top = max(verdict.rules, key=lambda r: (r.action.rank, r.severity, r.probability))
    return None if top.span is None else line_of(text, top.span[0])


def run_noninteractive(args: ShellArgs, argv: list[str]) -> int:
    from attyguard.config import load_config
    from attyguard.shell.text import one_line

    config, errors = load_config()
    for error in errors:
        print(f"attyguard: config: {error}", file=sys.stderr)
    stdin_fd = None
    data: bytes | None = None
    too_big = False
    if args.command is not None:
        text = args.command
    elif args.file is not None:
        try:
            # Opened and read once, whatever it is (a FIFO answers each open
            # differently): bash runs a sealed copy of exactly these bytes.
            fd = os.open(args.file, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            fd = -1  # bash reports the missing/unreadable file itself
        if fd >= 0:
            try:
                if os.path.isdir(f"/proc/self/fd/{fd}"):
                    data = None  # bash says "is a directory" itself
                else:
                    data, too_big = _read_fd(fd, _MAX_SCRIPT)
            finally:
                os.close(fd)
        text = data.decode("utf-8", "surrogateescape") if data is not None else ""
    else:
        data, stdin_fd, too_big = _read_stdin_to_memfd()
        text = data.decode("utf-8", "surrogateescape")
    try:
        # Imports the engine (parser, rule model) unless the clean-line fast path
        # can answer: a broken install fails here or at the first other line.
        from attyguard.engine.quick import BOUNDED_RULE_ID, UNAVAILABLE_RULE_ID
        from attyguard.engine.verdict import Action
        from attyguard.shell.wiring import FAST_PATH_NOTE, build_guard

        wired = build_guard(config, quick=True)  # (clean lines: no engine import)
    except Exception as exc:
        return _unavailable(f"{type(exc).__name__}: {exc}")
    for note in wired.warnings:
        print(f"attyguard: {note}", file=sys.stderr)
    env = dict(os.environ)
    home = env.get("HOME", "/")
    cwd = os.getcwd()
    plan = _Plan(list(argv), env)
    made: list[Any] = []

    def snapshots() -> Any:
        """The sealed copies bash is given (filejudge.MemfdSnapshots), made at first use:
        filejudge is imported only where a file is read or judged, never for a clean
        `-c` line (every `ssh host CMD`)."""
        if not made:
            from attyguard.filejudge import MemfdSnapshots

            made.append(MemfdSnapshots())
        return made[0]
    guard = wired.guard
    trust = guard.trust

    def trusted(content: str) -> bool:
        return trust is not None and trust.lookup(content)

    def judge(content: str, pin: bool, where: str | None = None) -> str:
        """Judge `content` with the files it names; the content rewritten to read copies.

        `where`: the file `content` came from, named in the verdict's reasons.
        """
        try:
            verdict = guard.decide(content)
        except Exception as exc:  # the guard never raises by contract; be sure anyway
            plan.unjudged.append(f"classifier failed: {exc}")
            return content
        from attyguard.engine.verdict import Source

        if verdict.source is Source.TRUST:
            return content
        if FAST_PATH_NOTE in verdict.notes:  # (a clean line hands nothing to a shell)
            plan.verdicts.append(verdict)
            return content
        from attyguard.filejudge import judge_files

        files = judge_files(content, guard.engine, snapshots=snapshots() if pin else None,
                            cwd=cwd, home=home, search_path=env.get("PATH", ""),
                            trusted=trusted)
        if where is not None:
            from dataclasses import replace

            from attyguard.filejudge import located

            verdict = replace(verdict, rules=tuple(located(h, where, content, None)
                                                   for h in verdict.rules))
        plan.verdicts.append(files.combine(verdict))
        return files.line

    # The verdict on the script's (or stdin's) own text: its hits' spans are
    # offsets into `text`, so a refusal can name the line (`_where`).
    own: list[Verdict] = []
    try:
        if args.login and not args.noprofile:
            # A login shell's profiles: bash reads them itself (they cannot be
            # pointed at copies), so they are judged for blocks only, as at the prompt.
            from dataclasses import replace

            from attyguard.filejudge import located, read_bounded
            from attyguard.rcjudge import rc_files

            for path in rc_files(login=True, norc=False, noprofile=False, home=home):
                content, _problem = read_bounded(path)
                if content is None:
                    continue
                profile = content.decode("utf-8", "surrogateescape")
                found = guard.engine(profile)
                blocks = tuple(located(h, path, profile, None) for h in found.rules
                               if h.action is Action.BLOCK)
                if blocks:
                    plan.verdicts.append(replace(found, action=Action.BLOCK, rules=blocks))
        # The files bash reads before anything else.
        for kind, path in _startup_files(args, env, home):
            from attyguard.filejudge import resolve_path

            resolved = resolve_path(path, cwd, home)
            content, problem = _file_text(resolved)
            if problem is not None:
                plan.unjudged.append(f"{kind} {problem}")
                continue
            if content is None:
                continue
            pinned = judge(content.decode("utf-8", "surrogateescape"), True, resolved)
            target = snapshots().add(pinned.encode("utf-8", "surrogateescape"), resolved)
            if target is None:
                plan.unjudged.append(f"{kind} {resolved} could not be pinned")
            elif kind == "BASH_ENV":
                plan.env["BASH_ENV"] = target
            elif kind == "ENV":
                plan.env["ENV"] = target
            elif kind == "rcfile":
                plan.argv[args.rcfile_index] = target
            else:  # ~/.bashrc: read it from the copy instead
                plan.argv[0:0] = ["--rcfile", target]
        if too_big:
            plan.unjudged.append(f"larger than {_MAX_SCRIPT // (1 << 20)} MiB")
        elif args.command is not None or data is not None:
            if args.file is not None:
                from attyguard.filejudge import MAX_FILE

                if len(text) > MAX_FILE and not trusted(text):
                    plan.unjudged.append(f"script larger than {MAX_FILE // 1024} KiB")
            pinned = judge(text, True)
            own.extend(plan.verdicts[-1:])
            params = ([args.operands[0] if args.operands else _bash(), *args.operands[1:]]
                      if args.command is not None else [args.file or _bash(), *args.operands])
            filled = substitute_positionals(text, params)
            if filled is not None:
                judge(filled, False)  # (what the operands make of it: judged, bash runs `text`)
            if args.command is not None and pinned != text:
                plan.argv[args.operand_index + len(plan.argv) - len(argv)] = pinned
            elif args.file is not None and data is not None:
                target = snapshots().add(pinned.encode("utf-8", "surrogateescape"), args.file)
                if target is None:
                    plan.unjudged.append(f"{args.file} could not be pinned")
                else:
                    at = args.operand_index + len(plan.argv) - len(argv)
                    if at > 0 and plan.argv[at - 1] == "--":
                        at -= 1  # (`-c` must come before the end of options)
                    plan.argv[at:at + 1] = ["-c", f". {target}", args.file]
            elif stdin_fd is not None and pinned != text:
                os.ftruncate(stdin_fd, 0)
                os.write(stdin_fd, pinned.encode("utf-8", "surrogateescape"))
                os.lseek(stdin_fd, 0, os.SEEK_SET)
    finally:
        wired.close()

    verdicts = plan.verdicts
    unavailable = [h for v in verdicts for h in v.rules if h.rule_id == UNAVAILABLE_RULE_ID]
    if unavailable:
        # The rules failed to load (the engine answers warn, for the interactive
        # shell's user to judge): with no user here, refuse rather than run unchecked.
        return _unavailable(unavailable[0].explanation)
    action = Action.strongest([v.action for v in verdicts])
    hits = [h for v in verdicts for h in v.rules]
    shown = one_line(text, 120) if text else " ".join(argv)[:120]
    source = (None if args.command is not None
              else args.file if args.file is not None else _STDIN_NAME)

    def where(verdict: Verdict) -> str:
        """`NAME:LINE: ` for a script or stdin (what the reason names), else ""."""
        line = _line_of_hit(verdict, own, text) if source is not None else None
        return "" if line is None else f"{one_line(source or '', 200)}:{line}: "

    if action is Action.BLOCK:
        top = max((v for v in verdicts if v.action is Action.BLOCK), key=lambda v: len(v.rules))
        line = _line_of_hit(top, own, text) if source is not None else None
        if line is not None:
            # The line itself, rather than the start of the whole text.
            shown = one_line(text.split("\n")[line - 1], 120)
        print(f"attyguard: REFUSED — {where(top)}{one_line(top.reason)}: {shown}",
              file=sys.stderr)
        return 126
    bounded = []
    if hits:
        from attyguard.filejudge import FILES_RULE_ID

        bounded = [h for h in hits if h.rule_id in (BOUNDED_RULE_ID, FILES_RULE_ID)]
    if plan.unjudged or bounded:
        why = plan.unjudged[0] if plan.unjudged else bounded[0].matched or bounded[0].title
        print(f"attyguard: REFUSED — too large or complex to analyse ({one_line(why, 100)}); "
              "nothing was run (trust it with `attyguard trust add --file FILE` or "
              "`attyguard trust add CMD`)", file=sys.stderr)
        return 126
    if action is Action.WARN:
        warned = max((v for v in verdicts if v.action is Action.WARN), key=lambda v: len(v.rules))
        reason = where(warned) + one_line(warned.reason)
        if config.shell.noninteractive_warn == "refuse":
            print(f"attyguard: REFUSED (warn, non-interactive) — {reason}", file=sys.stderr)
            return 126
        print(f"attyguard: warning — {reason}", file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    if stdin_fd is not None:
        os.dup2(stdin_fd, 0)
        os.close(stdin_fd)
    bash = _bash()
    try:
        os.execvpe(bash, [bash, *plan.argv], plan.env)
    except OSError as exc:
        print(f"attyguard: cannot run bash: {exc.strerror}", file=sys.stderr)
        return 127
    return 127  # not reached
