"""Judging the rc files the interactive bash child reads at start-up.

Persistence in ~/.bashrc is a common attack step, and bash sources it before
any line reaches the enforcement point. So shellrc/attyguard.bash asks first:
it waits on a FIFO in the session's 0700 directory for one answer per file
it would source (/etc/profile and /etc/profile.d for login shells, then the
first of ~/.bash_profile, ~/.bash_login, ~/.profile; else ~/.bashrc):

    ok<TAB>FILE<TAB>COPY      source COPY, the bytes that were judged
    no<TAB>FILE<TAB>MESSAGE   do not source FILE; print MESSAGE (file:line, the
                              reason and how to trust it) on stderr
    as-is<TAB>FILE            judging is off (config shell.judge_rc_files): source FILE
    end

A file is refused when a line in it (or in a file it sources) would be
refused at the prompt, or when it cannot be judged (larger than 1 MiB, too
complex); warn-level findings stay silent (Debian's default ~/.bashrc sets
HISTCONTROL, which the prompt would ask about). Judging runs in a child
process forked right after bash, while the front end loads.

Loading the engine costs ~0.3-0.5 s, far too much for every start-up, so an
allowed file is remembered by a BLAKE2b digest of its bytes (and of the files
it sources) together with a fingerprint of the rules, in
state_dir()/rc-judged (one line per version); a start-up whose rc files are
unchanged only reads and hashes them, on a path that imports nothing but `os`
(it races the front end's imports for the GIL while bash waits). On such a
hit the files that rc file sources are checked by digest and then read by bash
itself (not from copies).
"""

from __future__ import annotations

import contextlib
import os
import threading
from typing import Any

__all__ = ["RcJudge", "rc_files", "start_rc_judge"]

CACHE_NAME = "rc-judged"
CACHE_MAX = 64  # remembered rc file versions
ANSWER_FIFO = "rc"


def rc_files(*, login: bool, norc: bool, noprofile: bool, home: str) -> list[str]:
    """The files shellrc/attyguard.bash sources, in its order (the same test it makes)."""
    if login:
        if noprofile:
            return []
        files = ["/etc/profile"] if os.access("/etc/profile", os.R_OK) else []
        for name in (".bash_profile", ".bash_login", ".profile"):
            path = f"{home}/{name}"  # (as bash expands ~/NAME: HOME, a slash, NAME)
            if os.access(path, os.R_OK):
                files.append(path)
                break
        return files
    if norc:
        return []
    path = f"{home}/.bashrc"
    return [path] if os.access(path, os.R_OK) else []


def _profile_d() -> list[str]:
    with contextlib.suppress(OSError):
        return sorted(os.path.join("/etc/profile.d", n) for n in os.listdir("/etc/profile.d")
                      if n.endswith(".sh"))
    return []


def _sha(data: bytes) -> str:
    # _blake2 is built in: hashlib would load OpenSSL on the start-up path
    # (bench/README.md, "Figures behind design choices").
    try:
        from _blake2 import blake2b
    except ImportError:  # another Python: hashlib has it too
        from hashlib import blake2b
    return blake2b(data, digest_size=32).hexdigest()


def _patterns_dir() -> str:
    """attyguard.resources.data_path("patterns") without pathlib (start-up path)."""
    pkg = os.path.dirname(os.path.realpath(__file__))
    packaged = os.path.join(pkg, "_data", "patterns")
    return packaged if os.path.isdir(packaged) else os.path.join(os.path.dirname(pkg),
                                                                 "patterns")


def rules_fingerprint() -> str:
    """What the cached verdicts depend on besides the files: attyguard and its rules."""
    import attyguard

    parts = [getattr(attyguard, "__version__", "")]
    with contextlib.suppress(OSError):
        for entry in sorted(os.scandir(_patterns_dir()), key=lambda e: e.name):
            st = entry.stat()
            parts.append(f"{entry.name}:{st.st_size}:{st.st_mtime_ns}")
    return _sha("\n".join(parts).encode())


def _read_small(path: str, limit: int = 1 << 20) -> bytes | None:
    """A regular file's bytes (at most `limit`), else None; os only (start-up path)."""
    import stat

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > limit:
            return None
        chunks: list[bytes] = []
        while True:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
    except OSError:
        return None
    finally:
        os.close(fd)


class RcJudge:
    """Answers the rc snippet's question once; keeps the copies until `close`."""

    # (A plain class: dataclasses would cost an import on the start-up path.)
    def __init__(self, files: list[str], *, enabled: bool = True, home: str | None = None,
                 cache_path: str | None = None) -> None:
        self.files = files
        self.enabled = enabled
        self.home = home if home is not None else os.path.expanduser("~")
        self.cache_path = cache_path
        self.answers: list[tuple[str, str, str]] = []
        self.snapshots: Any = None  # filejudge.DirSnapshots once a copy is made
        self.pid = 0  # the judging child process, once started

    def remembered(self) -> list[tuple[str, str, str]] | None:
        """The answers if every rc file is a version judged allowed before, else None.

        The start-up path: os and a digest only (no config, no engine).
        """
        if not self.files:
            return []
        cache = _Cache(self.cache_path)
        answers: list[tuple[str, str, str]] = []
        for path in self.files:
            data = _read_small(path)
            if data is None or not cache.ok(data, _profile_d() if path == "/etc/profile" else []):
                return None
            copy = self._copy(data)
            if copy is None:
                return None
            answers.append(("ok", path, copy))
        return answers

    def judge(self) -> list[tuple[str, str, str]]:
        """(kind, file, copy-or-message) per file; never raises."""
        if not self.enabled:
            self.answers = [("as-is", f, "") for f in self.files]
            return self.answers
        answers: list[tuple[str, str, str]] = []
        cache = _Cache(self.cache_path)
        for path in self.files:
            try:
                answers.append(self._one(path, cache))
            except Exception as exc:  # a bug here must not source the file unjudged
                answers.append(("no", path, f"attyguard: {path}: not judged ({type(exc).__name__}:"
                                f" {exc}); not sourced"))
        cache.save()
        self.answers = answers
        return answers

    def _copy(self, data: bytes, path: str = "") -> str | None:
        if self.snapshots is None:
            try:
                self.snapshots = _copies_dir()
            except OSError:
                return None
        copy: str | None = self.snapshots.add(data, path)
        return copy

    def _one(self, path: str, cache: _Cache) -> tuple[str, str, str]:
        from attyguard.filejudge import read_bounded

        data, problem = read_bounded(path)
        if data is None:
            if problem is None:
                return ("as-is", path, "")  # gone since: bash finds nothing either
            return ("no", path, _message(path, None, problem))
        extra = _profile_d() if path == "/etc/profile" else []
        if cache.ok(data, extra):
            copy = self._copy(data, path)
            return ("ok", path, copy) if copy else ("as-is", path, "")
        return self._judge(path, data, extra, cache)

    def _judge(self, path: str, data: bytes, extra: list[str],
               cache: _Cache) -> tuple[str, str, str]:
        from attyguard.engine.classify import BOUNDED_RULE_ID, classify
        from attyguard.engine.verdict import Action
        from attyguard.filejudge import (
            FILES_RULE_ID,
            judge_files,
            line_of,
            located,
            read_bounded,
            system_file,
        )

        trusted = _trusted_lookup()
        content = data.decode("utf-8", "surrogateescape")
        if trusted(content):
            copy = self._copy(data, path)
            return ("ok", path, copy) if copy else ("as-is", path, "")
        hits = list(classify(content).rules)  # (spans into content: the line is from them)
        if self.snapshots is None:
            self.snapshots = _copies_dir()
        files = judge_files(content, classify, snapshots=self.snapshots, cwd=os.getcwd(),
                            home=self.home, search_path=os.environ.get("PATH", ""),
                            trusted=trusted)
        if files.verdict is not None:
            hits.extend(files.verdict.rules)
        nested = {f.path: _sha(f.text.encode("utf-8", "surrogateescape"))
                  for f in files.files if f.text is not None}
        for other in extra:  # /etc/profile.d/*.sh: sourced by /etc/profile through a glob
            other_data, _problem = read_bounded(other)
            if other_data is None:
                continue
            other_text = other_data.decode("utf-8", "surrogateescape")
            nested[other] = _sha(other_data)
            if not trusted(other_text):
                hits.extend(located(h, other, other_text, None)
                            for h in classify(other_text).rules
                            if h.action is Action.BLOCK or not system_file(other, self.home))
        refusing = [h for h in hits if h.action is Action.BLOCK
                    or h.rule_id in (BOUNDED_RULE_ID, FILES_RULE_ID)]
        if refusing:
            hit = max(refusing, key=lambda h: (h.action.rank, h.severity))
            line = line_of(content, hit.span[0]) if hit.span else None
            return ("no", path, _message(path, line, hit.title))
        cache.remember(data, nested)
        copy = self._copy(files.line.encode("utf-8", "surrogateescape"), path)
        return ("ok", path, copy) if copy else ("as-is", path, "")

    def write_answers(self, fifo: str) -> None:
        """Hand the answers to bash, then remove the FIFO (bash has it open by then).

        Opened write-only: that waits for bash to open it, so nothing written
        can be lost in a FIFO no one holds open yet.
        """
        lines = "".join(f"{kind}\t{path}\t{value}\n" for kind, path, value in self.answers)
        data = (lines + "end\n").encode("utf-8", "surrogateescape")
        fd = os.open(fifo, os.O_WRONLY | os.O_CLOEXEC)
        with contextlib.suppress(OSError):
            os.unlink(fifo)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)

    def close(self) -> None:
        if self.snapshots is not None:
            self.snapshots.close()
        if self.pid:
            with contextlib.suppress(OSError):  # (long done: it answered before bash went on)
                os.waitpid(self.pid, os.WNOHANG)


def _message(path: str, line: int | None, why: str) -> str:
    where = f"{path}:{line}" if line else path
    why = " ".join(why.split())[:160]
    return (f"attyguard: {where}: {why}; not sourced. If it is yours and safe: "
            f"attyguard trust add --file {path}")


def _trusted_lookup() -> Any:
    """The trust store's lookup for whole files (`trust add --file`), or never-trusted."""
    try:
        from attyguard.trust import open_trust_store

        store, _warning = open_trust_store(create=False)
    except Exception:
        store = None
    if store is None:
        return lambda _text: False
    return store.lookup


class _Copies:
    """The judged copies, in a fresh 0700 directory (filejudge.Snapshots).

    filejudge.DirSnapshots does the same for the prompt's lines; this one
    imports nothing (the start-up path), and keeps every copy until `close`.
    """

    def __init__(self, inside: str | None = None) -> None:
        self.made: list[str] = []
        if inside is not None and not any(c in inside for c in _UNSAFE):
            # In the shell's session directory: removed with it, also when a
            # signal ends attyguard before `close` runs (spawn.clean_up_on_signals).
            path = os.path.join(inside, f"rc-{os.urandom(6).hex()}")
            try:
                os.mkdir(path, 0o700)
            except OSError:
                pass
            else:
                self.directory = path
                return
        base = os.environ.get("XDG_RUNTIME_DIR") or "/tmp"
        if not os.access(base, os.W_OK) or any(c in base for c in _UNSAFE):
            base = "/tmp"
        for _ in range(100):
            path = os.path.join(base, f"attyguard-rc-{os.urandom(6).hex()}")
            try:
                os.mkdir(path, 0o700)
            except FileExistsError:
                continue
            self.directory = path
            return
        raise OSError("cannot create a private directory")

    def add(self, data: bytes, name: str) -> str | None:
        path = os.path.join(self.directory, f"rc{len(self.made) + 1}")
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o400)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
            finally:
                os.close(fd)
        except OSError:
            return None
        self.made.append(path)
        return path

    def close(self) -> None:
        # (listed, not remembered: the copies may have been made by the judging child)
        with contextlib.suppress(OSError):
            for name in os.listdir(self.directory):
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(self.directory, name))
        with contextlib.suppress(OSError):
            os.rmdir(self.directory)


# Characters a copy's path must not hold: it goes into a sourcing line unquoted.
_UNSAFE = " \t\n'\"\\$`"


def _copies_dir(inside: str | None = None) -> _Copies:
    return _Copies(inside)


class _Cache:
    """rc file versions judged allowed before, with the files they source (by digest).

    The file: the rules' fingerprint on the first line, then one line per
    version: its digest, then NUL-separated nested file/digest pairs. Plain
    text, not JSON: read on every start-up, and json costs an import there.
    """

    def __init__(self, path: str | None) -> None:
        self.path = path
        self.fingerprint = rules_fingerprint()
        self.entries: dict[str, dict[str, str]] = {}
        self.changed = False
        if path is None:
            return
        data = _read_small(path, 4 << 20)
        if data is None:
            return
        lines = data.decode("utf-8", "surrogateescape").split("\n")
        if lines[0] != self.fingerprint:
            return
        for line in lines[1:]:
            key, _sep, rest = line.partition("\0")
            if len(key) != 64:
                continue
            fields = rest.split("\0") if rest else []
            self.entries[key] = dict(zip(fields[::2], fields[1::2], strict=False))

    def ok(self, data: bytes, extra: list[str]) -> bool:
        entry = self.entries.get(_sha(data))
        if entry is None:
            return False
        if extra and not set(extra) <= set(entry):
            return False  # a profile.d file judged nowhere yet
        for nested, digest in entry.items():
            try:
                with open(nested, "rb") as f:
                    if _sha(f.read(1 << 20)) != digest:
                        return False
            except OSError:
                return False
        return True

    def remember(self, data: bytes, nested: dict[str, str]) -> None:
        self.entries[_sha(data)] = nested
        while len(self.entries) > CACHE_MAX:
            self.entries.pop(next(iter(self.entries)))
        self.changed = True

    def save(self) -> None:
        if not self.changed or self.path is None:
            return
        with contextlib.suppress(OSError):
            os.makedirs(os.path.dirname(self.path), mode=0o700, exist_ok=True)
            tmp = f"{self.path}.{os.getpid()}.tmp"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
            lines = [self.fingerprint]
            for key, nested in self.entries.items():
                if any("\0" in p or "\n" in p for p in nested):
                    continue  # (a file name this format cannot hold: judged again next time)
                lines.append("\0".join([key, *(x for kv in nested.items() for x in kv)]))
            with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape") as f:
                f.write("\n".join(lines) + "\n")
            os.replace(tmp, self.path)


def _cache_path() -> str:
    """state_dir()/CACHE_NAME, without importing platformdirs and pathlib first."""
    home = os.environ.get("ATTYGUARD_HOME")
    if home:
        return os.path.join(os.path.expanduser(home), "state", CACHE_NAME)
    from attyguard.paths import state_dir

    return str(state_dir() / CACHE_NAME)


def start_rc_judge(session_dir: str, *, login: bool, norc: bool,
                   noprofile: bool) -> RcJudge:
    """Judge in a child process and answer bash; returns the judge (close it at exit).

    A process, not a thread: on the first start after an rc file changed it
    loads the engine (~0.5 s of CPU), which a thread would do holding the GIL
    against the front end's own imports; a forked child does it on the other
    core. Forked early (from shell/main.py, right after bash), when this
    process has no other threads and few modules.
    """
    home = os.path.expanduser("~")
    judge = RcJudge(rc_files(login=login, norc=norc, noprofile=noprofile, home=home), home=home)
    fifo = os.path.join(session_dir, ANSWER_FIFO)
    try:
        # (made here: this process removes it at exit, or with the session's directory)
        judge.snapshots = _copies_dir(session_dir)
    except OSError:
        judge.snapshots = None

    def work() -> None:
        try:
            from attyguard.config import load_config

            config, _errors = load_config()  # (the session reports config errors)
            judge.enabled = config.shell.judge_rc_files
            judge.cache_path = _cache_path()
            remembered = judge.remembered() if judge.enabled else None
            if remembered is not None:
                judge.answers = remembered
                return
            judge.judge()
        except Exception as exc:  # never leave bash waiting
            why = " ".join(f"{type(exc).__name__}: {exc}".split())[:160]
            judge.answers = [("no", f, f"attyguard: {f}: not judged ({why}); not sourced")
                             for f in judge.files]
        finally:
            with contextlib.suppress(OSError):
                judge.write_answers(fifo)

    try:
        pid = os.fork()
    except OSError:
        pid = -1
    if pid == 0:
        try:
            work()
        finally:
            os._exit(0)
    if pid < 0:  # no process to be had: a thread, then
        threading.Thread(target=work, name="attyguard-rc-judge", daemon=True).start()
    else:
        judge.pid = pid
    return judge
