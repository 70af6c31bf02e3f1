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
HISTCONTROL, which the prompt would ask about). Judging runs on a thread
started right after bash, while the front end loads.

Loading the engine costs ~0.3-0.5 s, far too much for every start-up, so an
allowed file is remembered by the SHA-256 of its bytes (and of the files it
sources) together with a fingerprint of the rules, in state_dir()/rc-judged.json;
a start-up whose rc files are unchanged only reads and hashes them. On such a
hit the files that rc file sources are checked by hash and then read by bash
itself (not from copies).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
from dataclasses import dataclass, field
from typing import Any

__all__ = ["RcJudge", "rc_files", "start_rc_judge"]

CACHE_NAME = "rc-judged.json"
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
    return hashlib.sha256(data).hexdigest()


def rules_fingerprint() -> str:
    """What the cached verdicts depend on besides the files: attyguard and its rules."""
    import attyguard
    from attyguard.resources import data_path

    parts = [getattr(attyguard, "__version__", "")]
    directory = str(data_path("patterns"))
    with contextlib.suppress(OSError):
        for entry in sorted(os.scandir(directory), key=lambda e: e.name):
            st = entry.stat()
            parts.append(f"{entry.name}:{st.st_size}:{st.st_mtime_ns}")
    return _sha("\n".join(parts).encode())


@dataclass
class RcJudge:
    """Answers the rc snippet's question once; keeps the copies until `close`."""

    files: list[str]
    enabled: bool = True
    home: str = field(default_factory=lambda: os.path.expanduser("~"))
    cache_path: str | None = None
    answers: list[tuple[str, str, str]] = field(default_factory=list)
    snapshots: Any = None  # filejudge.DirSnapshots once a copy is made

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

    def _copy(self, data: bytes, path: str) -> str | None:
        from attyguard.filejudge import DirSnapshots

        if self.snapshots is None:
            self.snapshots = DirSnapshots.private()
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
        from attyguard.filejudge import DirSnapshots

        if self.snapshots is None:
            self.snapshots = DirSnapshots.private()
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


class _Cache:
    """rc file versions judged allowed before, with the files they source (by hash)."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self.fingerprint = rules_fingerprint()
        self.entries: dict[str, dict[str, str]] = {}
        self.changed = False
        if path is None:
            return
        with contextlib.suppress(OSError, ValueError):
            with open(path, encoding="utf-8") as f:
                stored = json.load(f)
            if isinstance(stored, dict) and stored.get("rules") == self.fingerprint:
                entries = stored.get("entries", {})
                if isinstance(entries, dict):
                    self.entries = {k: v for k, v in entries.items() if isinstance(v, dict)}

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
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump({"rules": self.fingerprint, "entries": self.entries}, f)
            os.replace(tmp, self.path)


def start_rc_judge(session_dir: str, *, login: bool, norc: bool,
                   noprofile: bool) -> RcJudge:
    """Judge on a thread and answer bash; returns the judge (close it at exit)."""
    home = os.path.expanduser("~")
    judge = RcJudge(rc_files(login=login, norc=norc, noprofile=noprofile, home=home), home=home)
    fifo = os.path.join(session_dir, ANSWER_FIFO)

    def work() -> None:
        try:
            from attyguard.config import load_config
            from attyguard.paths import state_dir

            config, _errors = load_config()  # (the session reports config errors)
            judge.enabled = config.shell.judge_rc_files
            judge.cache_path = str(state_dir() / CACHE_NAME)
            judge.judge()
        except Exception as exc:  # never leave bash waiting
            why = " ".join(f"{type(exc).__name__}: {exc}".split())[:160]
            judge.answers = [("no", f, f"attyguard: {f}: not judged ({why}); not sourced")
                             for f in judge.files]
        finally:
            with contextlib.suppress(OSError):
                judge.write_answers(fifo)

    threading.Thread(target=work, name="attyguard-rc-judge", daemon=True).start()
    return judge
