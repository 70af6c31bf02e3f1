"""Judging the files a line hands to a shell, and pinning bash to what was judged.

`engine/files.py` names the files (pure); this module reads them — bounded
(`MAX_FILE`), regular files only, each exactly once — judges each text with
the same decide function as the line (a file's own `source`/`bash FILE` are
followed, `MAX_DEPTH` deep), and returns the line rewritten so that bash
reads a private snapshot of the judged bytes instead of the file a second
time (the file could change in between: a writer racing us, or a FIFO that
answers each open differently). The caller chooses where snapshots live
(`Snapshots`): sealed memfds for `-c`/scripts (bash inherits them as
/dev/fd/N), files in the session's 0700 directory for the interactive shell.

What differs for the code that runs: the snapshot's path replaces the file's
name in the line, so inside a sourced file `$BASH_SOURCE` (and a script's
`$0`) name the snapshot, not the original; `$PWD`, `$@`, `$LINENO` and
everything else are unchanged. A name that is not in the line exactly (inside a
`-c` string, an assignment `BASH_ENV=F`) is rewritten where it is found
literally once; otherwise the line is "not pinned" and the caller treats it
as too complex (ask, or refuse without a user).
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from attyguard.engine.verdict import Action, RuleHit, Severity, Verdict, combine_probabilities

__all__ = [
    "MAX_FILE",
    "DirSnapshots",
    "FileJudgement",
    "MemfdSnapshots",
    "Snapshots",
    "judge_files",
    "read_bounded",
    "resolve_path",
]

MAX_FILE = 1 << 20  # bytes of one file judged; a larger file is never run unasked
MAX_DEPTH = 3  # files named by files, followed this deep
MAX_FILES = 16  # files judged for one line, over all depths
FILES_RULE_ID = "files.unjudgeable"

# A line that may name a file for a shell: parsing is skipped for the rest.
_MAY_READ = re.compile(
    r"(?:^|[\s;&|(`{])(?:source|\.|eval|cat|[a-z]*sh)(?=[\s;&|)]|$)"
    r"|BASH_ENV=|(?<![\w])ENV=|--rcfile|--init-file|\$\(\s*<"
)


class Snapshots(Protocol):
    def add(self, data: bytes, name: str) -> str | None:
        """Keep `data`; the path bash should read instead, or None if it cannot be kept."""
        ...


class MemfdSnapshots:
    """Sealed memfds that survive exec: bash reads them as /dev/fd/N.

    Sealed (no write, grow, shrink) because anyone who can open
    /proc/PID/fd/N could otherwise change the bytes after they were judged.
    """

    FIRST_FD = 200  # above what scripts use and bash's own saved fds (10+)

    def __init__(self) -> None:
        self.fds: list[int] = []

    def add(self, data: bytes, name: str) -> str | None:
        import fcntl

        try:
            fd = os.memfd_create(f"attyguard:{os.path.basename(name)[:40]}",
                                 os.MFD_ALLOW_SEALING)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_WRITE | fcntl.F_SEAL_GROW
                        | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_SEAL)
            target = fcntl.fcntl(fd, fcntl.F_DUPFD, self.FIRST_FD + len(self.fds))
            os.close(fd)
            os.lseek(target, 0, os.SEEK_SET)
            os.set_inheritable(target, True)
        except OSError:
            return None
        self.fds.append(target)
        return f"/dev/fd/{target}"


class DirSnapshots:
    """Snapshot files in a private (0700) directory (the interactive shell's).

    Only the last `KEEP` are kept: a background job may source its copy
    after the prompt is back, so a copy outlives its command for a while.
    """

    KEEP = 64

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.count = 0

    @classmethod
    def private(cls, inside: str | None = None) -> DirSnapshots:
        """A fresh 0700 directory of our own (removed by `close`).

        `inside`: the shell's session directory, if its path can go into a
        line; the copies then live (and go, also on a signal) with it.
        """
        if inside is not None and re.fullmatch(r"[A-Za-z0-9/_.+-]+", inside):
            with contextlib.suppress(OSError):
                path = os.path.join(inside, f"files-{os.urandom(6).hex()}")
                os.mkdir(path, 0o700)
                return cls(path)
        base = os.environ.get("XDG_RUNTIME_DIR") or "/tmp"
        if not os.access(base, os.W_OK) or not re.fullmatch(r"[A-Za-z0-9/_.+-]+", base):
            base = "/tmp"
        for _ in range(100):
            path = os.path.join(base, f"attyguard-files-{os.urandom(6).hex()}")
            try:
                os.mkdir(path, 0o700)
            except FileExistsError:
                continue
            return cls(path)
        raise OSError("cannot create a private directory")

    def add(self, data: bytes, name: str) -> str | None:
        if not re.fullmatch(r"[A-Za-z0-9/_.+-]+", self.directory):
            return None  # the path must go into a line unquoted
        self.count += 1
        if self.count > self.KEEP:
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(self.directory, f"src{self.count - self.KEEP}"))
        path = os.path.join(self.directory, f"src{self.count}")
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o400)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)
        except OSError:
            return None
        return path

    def close(self) -> None:
        """Remove the copies and the directory."""
        for i in range(max(1, self.count - self.KEEP + 1), self.count + 1):
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(self.directory, f"src{i}"))
        with contextlib.suppress(OSError):
            os.rmdir(self.directory)


@dataclass(frozen=True)
class JudgedFile:
    """One file a line hands to a shell: where, how it is read, its verdict."""

    path: str  # resolved
    how: str
    verdict: Verdict | None  # None: not judged (missing, trusted)
    problem: str | None = None  # why it could not be judged (too large, not regular…)
    trusted: bool = False
    text: str | None = field(default=None, repr=False)  # what was judged


@dataclass(frozen=True)
class FileJudgement:
    """The files a line hands to a shell, judged; the line to send instead."""

    verdict: Verdict | None  # the files' combined verdict; None when the line reads none
    files: tuple[JudgedFile, ...] = ()
    line: str = ""  # the line to hand bash (rewritten to read the snapshots)
    notes: tuple[str, ...] = field(default=())

    def combine(self, line_verdict: Verdict) -> Verdict:
        """The line's verdict with the files': the most severe wins."""
        if self.verdict is None:
            return line_verdict
        rules = line_verdict.rules + self.verdict.rules
        action = Action.strongest([line_verdict.action, self.verdict.action])
        return replace(line_verdict, action=action, rules=rules,
                       probability=combine_probabilities([h.probability for h in rules]),
                       notes=line_verdict.notes + self.notes)


def may_read_files(text: str) -> bool:
    return _MAY_READ.search(text) is not None


def resolve_path(path: str, cwd: str, home: str, *, search_path: str | None = None) -> str:
    """The file bash would open for `path` (tilde, relative to cwd; `source` searches PATH)."""
    if path == "~" or path.startswith("~/"):
        path = home + path[1:]
    if search_path is not None and "/" not in path:
        for directory in search_path.split(":"):
            candidate = os.path.join(directory or ".", path)
            with contextlib.suppress(OSError):
                if stat.S_ISREG(os.stat(os.path.join(cwd, candidate)).st_mode):
                    return os.path.normpath(os.path.join(cwd, candidate))
    return os.path.normpath(os.path.join(cwd, path))


def read_bounded(path: str, limit: int = MAX_FILE) -> tuple[bytes | None, str | None]:
    """(bytes, None), or (None, why) — (None, None) when there is no such file.

    Non-blocking open, so a FIFO with no writer cannot hang the shell; only
    regular files are read (a FIFO or device would be consumed by our read).
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None, None
    except OSError as exc:
        return None, f"cannot read {path}: {exc.strerror}"
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None, f"{path} is not a regular file"
        if st.st_size > limit:
            return None, f"{path} is larger than {limit // 1024} KiB"
        chunks: list[bytes] = []
        size = 0
        while True:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                break
            size += len(chunk)
            if size > limit:
                return None, f"{path} is larger than {limit // 1024} KiB"
            chunks.append(chunk)
        return b"".join(chunks), None
    except OSError as exc:
        return None, f"cannot read {path}: {exc.strerror}"
    finally:
        os.close(fd)


def problem_hit(problem: str, span: tuple[int, int] | None = None) -> RuleHit:
    return RuleHit(
        rule_id=FILES_RULE_ID, title=f"File not judged: {problem}", severity=Severity.MEDIUM,
        action=Action.WARN, probability=0.3,
        explanation="This line hands a file to a shell, and attyguard could not judge "
        f"what the file holds ({problem}).",
        remediation="Review the file; trust it with `attyguard trust add --file FILE`.",
        span=span, matched=problem[:300],
    )


_RC_NAMES = frozenset({".bashrc", ".bash_profile", ".bash_login", ".profile", ".bash_aliases"})


def _rc_file(path: str, home: str) -> bool:
    return os.path.dirname(path) == os.path.normpath(home) and os.path.basename(path) in _RC_NAMES


def system_file(path: str, home: str) -> bool:
    """Owned by root, writable by no one else, in root's directories, outside $HOME."""
    real = os.path.realpath(path)
    if home not in ("", "/") and (real + "/").startswith(os.path.realpath(home) + "/"):
        return False
    while True:
        try:
            st = os.stat(real)
        except OSError:
            return False
        if st.st_uid != 0 or st.st_mode & 0o022:
            return False
        if real == "/":
            return True
        real = os.path.dirname(real)


def line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, max(0, offset)) + 1


def located(hit: RuleHit, path: str, text: str, span: tuple[int, int] | None) -> RuleHit:
    """`hit` (found in `text`, the content of `path`) named by file:line, at `span` of the line."""
    where = f"{path}:{line_of(text, hit.span[0]) if hit.span else 1}"
    return replace(hit, title=f"{hit.title} (in {where})", span=span,
                   matched=f"{where}: {hit.matched}"[:300])


@dataclass
class _Walk:
    """The state of one walk over a line and the files it reads, file by file."""

    decide: Callable[[str], Verdict]
    snapshots: Snapshots | None
    cwd: str
    home: str
    search_path: str
    trusted: Callable[[str], bool]
    files: list[JudgedFile] = field(default_factory=list)
    hits: list[RuleHit] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def judge_files(line: str, decide: Callable[[str], Verdict], *,
                snapshots: Snapshots | None, cwd: str, home: str,
                search_path: str = "", trusted: Callable[[str], bool] | None = None
                ) -> FileJudgement:
    """Judge the files `line` hands to a shell; never raises.

    `decide` judges a text (the engine; file contents never go through the
    trust store's line lookup, `trusted` answers for a whole file's text).
    With `snapshots`, the returned line reads the judged bytes; without, the
    line is returned unchanged (`attyguard check`: judging only).
    """
    if not may_read_files(line):
        return FileJudgement(None, (), line)
    walk = _Walk(decide, snapshots, cwd, home, search_path, trusted or (lambda _text: False))
    try:
        rewritten = _walk(walk, line, 0, None)
    except Exception as exc:  # a bug here must not let the file through unjudged
        walk.hits.append(problem_hit(f"internal error: {type(exc).__name__}"))
        rewritten = line
    if not walk.files and not walk.hits:
        return FileJudgement(None, (), line)
    action = Action.strongest([h.action for h in walk.hits])
    verdict = Verdict(action, tuple(walk.hits))
    return FileJudgement(verdict, tuple(walk.files), rewritten, tuple(walk.notes))


def _walk(walk: _Walk, text: str, depth: int, outer: tuple[int, int] | None) -> str:
    """Judge the files `text` names; `text` rewritten to read their snapshots."""
    from attyguard.engine.files import SOURCE, files_read
    from attyguard.engine.parse import parse

    if depth > 0 and not may_read_files(text):
        return text
    parsed = parse(text)
    replacements: list[tuple[int, int, str]] = []
    for read in files_read(parsed):
        span = outer if outer is not None else read.span
        cwd = _cwd_at(parsed, read.span[0], walk.cwd, walk.home)
        relative = not read.path.startswith(("/", "~"))
        if cwd is None and relative:
            walk.hits.append(problem_hit(f"{read.path} is named after a directory change "
                                         "that cannot be followed", span))
            continue
        path = resolve_path(read.path, cwd or walk.cwd, walk.home,
                            search_path=walk.search_path if read.how == SOURCE else None)
        if not os.path.lexists(path):
            # No such file (`[ -f F ] && . F`): bash says so itself; nothing to judge.
            walk.files.append(JudgedFile(path, read.how, None))
            continue
        if sum(1 for f in walk.files if f.verdict is not None or f.trusted) >= MAX_FILES:
            walk.hits.append(problem_hit(f"more than {MAX_FILES} files", span))
            break
        data, problem = read_bounded(path)
        if data is None and problem is None:
            walk.files.append(JudgedFile(path, read.how, None))
            continue
        if data is None:
            assert problem is not None
            walk.files.append(JudgedFile(path, read.how, None, problem))
            walk.hits.append(problem_hit(problem, span))
            continue
        content = data.decode("utf-8", "surrogateescape")
        if walk.trusted(content):
            walk.files.append(JudgedFile(path, read.how, None, trusted=True))
            pinned = data
        elif system_file(path, walk.home) or _rc_file(path, walk.home):
            # Root's own files (bash-completion, /etc/profile.d): whoever can change
            # them is root already. Judged for what would be refused, but one too
            # long to analyse (bash_completion is ~100 KiB) is no reason to ask,
            # and the files they source in turn are theirs. The user's own rc
            # files likewise (`source ~/.bashrc` stays quiet): every new shell
            # reads them with only blocks refused (rcjudge), so asking here
            # about their warnings would guard nothing more.
            verdict = walk.decide(content)
            walk.files.append(JudgedFile(path, read.how, verdict, text=content))
            walk.hits.extend(located(h, path, content, span) for h in verdict.rules
                             if h.action is Action.BLOCK)
            pinned = data
        else:
            verdict = walk.decide(content)
            walk.files.append(JudgedFile(path, read.how, verdict, text=content))
            walk.hits.extend(located(h, path, content, span) for h in verdict.rules)
            if depth + 1 < MAX_DEPTH:
                pinned_text = _walk(walk, content, depth + 1, span)
                pinned = pinned_text.encode("utf-8", "surrogateescape")
            else:
                pinned = data
                if may_read_files(content):
                    walk.hits.append(problem_hit(f"files nested more than {MAX_DEPTH} deep",
                                                 span))
        if walk.snapshots is None:
            continue
        target = walk.snapshots.add(pinned, path)
        where = _where(text, read.path, read.span, read.exact)
        if target is None or where is None:
            walk.hits.append(problem_hit(f"{path} could not be pinned for bash", span))
            continue
        replacements.append((where[0], where[1], target))
    for start, end, target in sorted(replacements, reverse=True):
        text = text[:start] + target + text[end:]
    return text


def _cwd_at(parsed: Any, offset: int, cwd: str, home: str) -> str | None:
    """The directory bash is in at `offset` of the text: `cd DIR` before it is followed.

    None when a change before it cannot be followed (`cd "$d"`, `cd -`, pushd/popd).
    """
    for command in parsed.commands:
        if command.span[1] > offset or command.depth != 0:
            continue
        if command.name in ("pushd", "popd"):
            return None
        if command.name != "cd":
            continue
        args = [w for w in command.args if not w.value.startswith("-") or w.value == "-"]
        if not args:
            cwd = home
        elif args[0].dynamic or args[0].value == "-":
            return None
        else:
            cwd = resolve_path(args[0].value, cwd, home)
    return cwd


def _where(text: str, path: str, span: tuple[int, int], exact: bool) -> tuple[int, int] | None:
    """Where in `text` the file's name is written, to put the snapshot's path there."""
    if exact:
        return span
    start, end = span
    found = [m.start() for m in re.finditer(re.escape(path), text[start:end])]
    if len(found) != 1:
        return None
    # Only a whole word: `a/b` inside `xa/b` is not the same file.
    at = start + found[0]
    before = text[at - 1] if at > 0 else " "
    after = text[at + len(path)] if at + len(path) < len(text) else " "
    if before not in " \t\n=;'\"(<" or after not in " \t\n;'\")&|":
        return None
    return at, at + len(path)


class SessionFiles:
    """The interactive shell's side: judge a line's files at the enforcement point.

    One per session. `judge` combines the files' verdict with the line's and
    returns the line to send (reading copies in a private directory);
    `remember` trusts the files too when the user answers [t]rust (a line's
    trust never covers a file: the file can change); `close` removes the copies.
    """

    def __init__(self, inside: str | None = None) -> None:
        self.snapshots: DirSnapshots | None = None
        self.last: FileJudgement | None = None
        self.inside = inside  # the session directory, for the copies (DirSnapshots.private)

    def judge(self, guard: _GuardLike, line: str, verdict: Verdict, cwd: str, *,
              pin: bool = True) -> tuple[Verdict, str]:
        self.last = None
        if not may_read_files(line):
            return verdict, line
        snapshots: Snapshots | None = None
        if pin:
            if self.snapshots is None:
                try:
                    self.snapshots = DirSnapshots.private(self.inside)
                except OSError:
                    self.snapshots = None
            snapshots = self.snapshots
        trust = guard.trust

        def trusted(text: str) -> bool:
            return trust is not None and trust.lookup(text)

        judgement = judge_files(line, guard.engine, snapshots=snapshots,
                                cwd=cwd or os.getcwd(), home=os.environ.get("HOME", "/"),
                                search_path=os.environ.get("PATH", ""), trusted=trusted)
        if judgement.verdict is None:
            return verdict, line
        self.last = judgement
        if pin and snapshots is None:
            judgement = replace(judgement, verdict=replace(judgement.verdict, rules=(
                *judgement.verdict.rules, problem_hit("no private directory for copies"))))
        return judgement.combine(verdict), judgement.line

    def remember(self, guard: _GuardLike) -> None:
        """The user answered [t]rust: trust the judged files' contents as well."""
        if self.last is None or guard.trust is None:
            return
        for judged in self.last.files:
            if judged.text is None or judged.verdict is None:
                continue
            rule_ids = tuple(h.rule_id for h in judged.verdict.rules)
            with contextlib.suppress(Exception):
                guard.trust.add(judged.text, rule_ids, preview=f"[file] {judged.path}")

    def close(self) -> None:
        if self.snapshots is not None:
            self.snapshots.close()
            self.snapshots = None


class _TrustLike(Protocol):
    def lookup(self, line: str) -> bool: ...

    def add(self, line: str, rule_ids: tuple[str, ...], *, preview: str | None = None
            ) -> None: ...


class _GuardLike(Protocol):
    @property
    def trust(self) -> _TrustLike | None: ...

    @property
    def engine(self) -> Callable[[str], Verdict]: ...
