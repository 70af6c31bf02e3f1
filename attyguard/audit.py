"""The daemon's tamper-evident audit log: JSON lines in a SHA-256 hash chain.

Every record carries the hash of the record before it, so an edited, removed
or reordered record breaks the chain at a place `verify` can name (file and
line). The chain runs across size-rotated files (`audit.jsonl.1` is older
than `audit.jsonl`): each file starts with an anchor record that continues
the previous file's chain. Anchors are also written every `anchor_every`
records and on close; each anchor is mirrored to a small `<log>.head` file
(the newest sequence number and hash), so cutting the log's tail back past
an anchor is detected too. What a chain kept on the same disk cannot show:
records removed from the tail after the last anchor together with the head
file's rewrite by someone who can write both (root) — ship the events off the
machine (syslog/journald) for that.

Record: `{"seq", "time", "kind": "event"|"anchor", "event"|"anchor", "prev", "hash"}`
where `hash` = SHA-256 of the record's canonical JSON without `hash`
(sorted keys, no spaces, UTF-8). Secrets in command lines are redacted the way
the trust store redacts them before a record is written.

Written by hand rather than with a library: the format is a few lines of
hashlib + json, and a verifier must be obvious enough to audit.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "GENESIS",
    "AuditError",
    "AuditLog",
    "Problem",
    "VerifyReport",
    "log_files",
    "redact_event",
    "verify",
]

GENESIS = "0" * 64  # the `prev` of the first record ever written
REDACT_LIMIT = 8192  # characters of a command line kept in a record
_REDACTED_KEYS = ("line", "cmdline", "command", "detail")


class AuditError(Exception):
    """The log cannot be opened or written safely (one line, for the daemon's log)."""


def _canonical(record: Mapping[str, Any]) -> bytes:
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _digest(record: Mapping[str, Any]) -> str:
    return hashlib.sha256(_canonical({k: v for k, v in record.items() if k != "hash"})).hexdigest()


def redact_event(event: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of the event with secrets in its command-line fields redacted."""
    from attyguard.trust import redact

    out = dict(event)
    for key in _REDACTED_KEYS:
        value = out.get(key)
        if isinstance(value, str):
            out[key] = redact(value, limit=REDACT_LIMIT)
    argv = out.get("argv")
    if isinstance(argv, list | tuple) and all(isinstance(a, str) for a in argv):
        # Redact the joined line (a secret is often an option's value: `-pSECRET`, `sshpass -p S`).
        out["argv"] = redact(" ".join(argv), limit=REDACT_LIMIT).split(" ")
    return out


def _now() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}Z"


def log_files(path: Path) -> list[Path]:
    """The log and its rotated siblings, oldest first (`p.3`, `p.2`, `p.1`, `p`)."""
    rotated: list[tuple[int, Path]] = []
    for sibling in path.parent.glob(path.name + ".*"):
        suffix = sibling.name[len(path.name) + 1:]
        if suffix.isdigit():
            rotated.append((int(suffix), sibling))
    files = [p for _, p in sorted(rotated, reverse=True)]
    if path.exists():
        files.append(path)
    return files


def _head_path(path: Path) -> Path:
    return path.with_name(path.name + ".head")


class AuditLog:
    """Appends hash-chained records; thread-safe; rotates by size.

    `max_bytes`: rotate once the current file reaches it; `keep`: rotated files kept
    (the oldest beyond it is deleted: the chain then starts later, which `verify`
    reports as information, not as tampering).
    """

    def __init__(self, path: Path, *, max_bytes: int = 10 << 20, keep: int = 5,
                 anchor_every: int = 100) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.keep = keep
        self.anchor_every = max(1, anchor_every)
        self._lock = threading.Lock()
        self._fd = -1
        self._size = 0
        self._since_anchor = 0
        self._seq, self._prev = self._resume()
        self._open("open")

    # -- opening ---------------------------------------------------------------

    def _resume(self) -> tuple[int, str]:
        """Continue the chain where the newest readable record left it."""
        for file in reversed(log_files(self.path)):
            last = _last_record(file)
            if last is not None:
                return int(last["seq"]), str(last["hash"])
        return 0, GENESIS

    def _open(self, reason: str) -> None:
        directory = self.path.parent
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW
                         | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise AuditError(f"cannot open audit log {self.path}: {exc.strerror}") from exc
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid():
            os.close(fd)
            raise AuditError(f"audit log {self.path} is not a regular file owned by uid "
                             f"{os.geteuid()}")
        if st.st_mode & 0o077:
            os.fchmod(fd, 0o600)  # never world- (or group-) readable: it holds command lines
        self._fd, self._size = fd, st.st_size
        self._append({"kind": "anchor", "anchor": {"reason": reason, "file": self.path.name}})

    # -- writing ---------------------------------------------------------------

    def write(self, event: Mapping[str, Any], *, redacted: bool = False) -> None:
        """Append one event, redacted unless the caller did it (`redacted`).

        Raises AuditError when the disk refuses it.
        """
        record = {"kind": "event", "event": dict(event) if redacted else redact_event(event)}
        with self._lock:
            if self._fd < 0:
                raise AuditError("audit log is closed")
            self._append(record)
            self._since_anchor += 1
            if self._since_anchor >= self.anchor_every:
                self._anchor("periodic")
            if self._size >= self.max_bytes:
                self._rotate()

    def _append(self, body: dict[str, Any]) -> None:
        record = {"seq": self._seq + 1, "time": _now(), "prev": self._prev, **body}
        record["hash"] = _digest(record)
        data = _canonical(record) + b"\n"
        try:
            os.write(self._fd, data)
        except OSError as exc:
            raise AuditError(f"cannot write audit log {self.path}: {exc.strerror}") from exc
        self._seq, self._prev = record["seq"], record["hash"]
        self._size += len(data)

    def _anchor(self, reason: str) -> None:
        self._append({"kind": "anchor", "anchor": {"reason": reason, "file": self.path.name}})
        self._since_anchor = 0
        with contextlib.suppress(OSError):  # a disk that refuses fsync still keeps the record
            os.fsync(self._fd)
        self._write_head()

    def _write_head(self) -> None:
        head = _head_path(self.path)
        tmp = head.with_name(head.name + ".tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump({"seq": self._seq, "hash": self._prev}, f)
            os.replace(tmp, head)
        except OSError as exc:
            raise AuditError(f"cannot write {head}: {exc.strerror}") from exc

    def _rotate(self) -> None:
        self._anchor("rotate")
        os.close(self._fd)
        self._fd = -1
        oldest = self.path.with_name(f"{self.path.name}.{self.keep}")
        if oldest.exists():
            oldest.unlink()
        for n in range(self.keep - 1, 0, -1):
            src = self.path.with_name(f"{self.path.name}.{n}")
            if src.exists():
                src.rename(self.path.with_name(f"{self.path.name}.{n + 1}"))
        if self.keep > 0:
            self.path.rename(self.path.with_name(f"{self.path.name}.1"))
        else:
            self.path.unlink()
        self._open("rotated")

    def close(self) -> None:
        with self._lock:
            if self._fd < 0:
                return
            with contextlib.suppress(AuditError):  # closing must not fail on a full disk
                self._anchor("close")
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _last_record(file: Path) -> dict[str, Any] | None:
    """The last complete record of a file (reads only its tail)."""
    try:
        with open(file, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - (1 << 20)))
            tail = f.read()
    except OSError:
        return None
    for raw in reversed(tail.split(b"\n")):
        try:
            record = json.loads(raw)
        except ValueError:
            continue
        if isinstance(record, dict) and isinstance(record.get("seq"), int) and "hash" in record:
            return record
    return None


# -- verifying -------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


@dataclass(frozen=True)
class VerifyReport:
    records: int
    first_seq: int
    last_seq: int
    files: tuple[str, ...]
    problem: Problem | None  # the first break; None when the chain is intact
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.problem is None


def verify(files: Sequence[Path], head: Path | None = None) -> VerifyReport:
    """Check the chain across `files` (oldest first); stop at the first break.

    `head` (default: the newest file's `.head`) must name a record the files hold,
    so a tail cut back past the last anchor is reported.
    """
    prev: str | None = None
    last_seq = 0
    first_seq = 0
    count = 0
    notes: list[str] = []
    seen: dict[int, str] = {}

    def report(problem: Problem | None) -> VerifyReport:
        return VerifyReport(count, first_seq, last_seq, tuple(str(f) for f in files), problem,
                            tuple(notes))

    for file in files:
        try:
            data = file.read_bytes()
        except OSError as exc:
            return report(Problem(str(file), 0, f"cannot read: {exc.strerror}"))
        if not data:
            return report(Problem(str(file), 0, "empty file (truncated?)"))
        lines = data.split(b"\n")
        if lines[-1] == b"":
            lines.pop()
        else:
            return report(Problem(str(file), len(lines), "last record is cut short (truncated)"))
        for number, raw in enumerate(lines, 1):
            where = (str(file), number)
            try:
                record = json.loads(raw)
            except ValueError:
                return report(Problem(*where, "not a JSON record (edited or truncated)"))
            if not isinstance(record, dict) or not isinstance(record.get("seq"), int):
                return report(Problem(*where, "not an audit record"))
            seq = record["seq"]
            if record.get("hash") != _digest(record):
                return report(Problem(*where, f"record {seq} was altered (hash mismatch)"))
            if prev is None:
                first_seq = seq
                if seq == 1 and record.get("prev") != GENESIS:
                    return report(Problem(*where, "first record does not start the chain"))
                if seq != 1:
                    notes.append(f"the chain starts at record {seq} (older files rotated away)")
            elif seq <= last_seq:
                return report(Problem(*where, f"record {seq} is out of order (after {last_seq})"))
            elif seq != last_seq + 1:
                return report(Problem(*where, f"records {last_seq + 1}–{seq - 1} are missing"))
            elif record.get("prev") != prev:
                return report(Problem(*where, f"record {seq} does not follow record {last_seq}"))
            prev, last_seq = record["hash"], seq
            seen[seq] = record["hash"]
            count += 1
    head_file = head if head is not None else (_head_path(files[-1]) if files else None)
    if head_file is not None and head_file.exists():
        try:
            h = json.loads(head_file.read_text())
            hseq, hhash = int(h["seq"]), str(h["hash"])
        except (OSError, ValueError, KeyError, TypeError):
            return report(Problem(str(head_file), 1, "head file unreadable"))
        if hseq > last_seq:
            return report(Problem(str(files[-1]), len(lines) if files else 0,
                                  f"records {last_seq + 1}–{hseq} are missing at the end "
                                  f"(the head says {hseq}: truncated)"))
        if hseq in seen and seen[hseq] != hhash:
            return report(Problem(str(head_file), 1, f"record {hseq} differs from the head"))
    return report(None)

