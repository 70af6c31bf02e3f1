"""Command history shared by every attyguard shell of a user, kept atomically.

One file in attyguard.paths.state_dir(). Each entry is appended with a single
write(2) on an O_APPEND descriptor under an exclusive flock, so concurrent
shells interleave whole entries and never lose each other's lines; trimming
to shell.history_size rewrites a temporary file and renames it over, under
the same lock. Format (prompt_toolkit's FileHistory format): "# <time>" then
each line of the entry prefixed with "+".
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from prompt_toolkit.history import History

__all__ = ["SharedFileHistory", "encode_entry", "parse_entries"]


def encode_entry(text: str, when: float | None = None) -> bytes:
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(when))
    body = "".join(f"+{line}\n" for line in text.split("\n"))
    return f"\n# {stamp}\n{body}".encode("utf-8", "surrogateescape")


def parse_entries(data: str) -> list[str]:
    """Entries oldest first."""
    entries: list[str] = []
    lines: list[str] = []
    for line in data.split("\n"):
        if line.startswith("+"):
            lines.append(line[1:])
        elif lines:
            entries.append("\n".join(lines))
            lines = []
    if lines:
        entries.append("\n".join(lines))
    return entries


# Far above any real history (50,000 entries are a few MB); a device or a
# runaway file must not be read into memory.
_MAX_HISTORY_BYTES = 256 << 20


def _read_regular(path: Path) -> bytes | None:
    """The file's bytes if it is a regular file of sane size; None otherwise."""
    import stat

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > _MAX_HISTORY_BYTES:
            return None
        with os.fdopen(os.dup(fd), "rb") as f:
            return f.read(_MAX_HISTORY_BYTES)
    except OSError:
        return None
    finally:
        os.close(fd)


class SharedFileHistory(History):
    def __init__(self, path: Path, max_entries: int = 50000,
                 on_error: Callable[[str], None] | None = None) -> None:
        super().__init__()
        self.path = path
        self.max_entries = max_entries
        # Told once per run of failures (full disk, read-only file system):
        # the entries stay in this session's memory, and the user knows.
        self.on_error = on_error
        self._failing = False
        self._open: str | None = None  # the command being entered (bash wants more lines)

    def append_string(self, string: str) -> None:
        """A line as Enter accepted it: part of one entry until `finish_entry`.

        A command bash needs more lines for (a loop, a here-document, an open
        quote) is one entry, as bash's own history keeps it: the session
        calls `finish_entry` once bash has the whole command (or it was
        refused or cancelled), and Up recalls it whole meanwhile.
        """
        if self._open is None:
            self._open = string
            self._loaded_strings.insert(0, string)
            return
        self._open += "\n" + string
        if self._loaded_strings:
            self._loaded_strings[0] = self._open

    def finish_entry(self) -> None:
        """The command entered is complete: store it (idempotent)."""
        entry, self._open = self._open, None
        if entry is not None:
            self.store_string(entry)

    def load_history_strings(self) -> Iterable[str]:
        raw = _read_regular(self.path)
        if raw is None:
            return []
        data = raw.decode("utf-8", "surrogateescape")
        entries = parse_entries(data)
        if self.max_entries and len(entries) > self.max_entries * 2:
            self._trim()
        seen: set[str] = set()
        newest_first = []
        for entry in reversed(entries):
            if entry not in seen:  # one copy of each, most recent position
                seen.add(entry)
                newest_first.append(entry)
        return newest_first[: self.max_entries or None]

    def store_string(self, string: str) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                data = encode_entry(string)
                if os.write(fd, data) != len(data):
                    raise OSError(0, "short write (disk full?)")
            finally:
                os.close(fd)
        except OSError as exc:
            if not self._failing and self.on_error is not None:
                self.on_error(f"history: cannot save to {self.path}: "
                              f"{exc.strerror or exc}; this session's lines are kept "
                              "in memory only")
            self._failing = True
            return
        self._failing = False

    def _trim(self) -> None:
        """Keep the newest max_entries entries (atomic rename, under the lock)."""
        with contextlib.suppress(OSError):
            fd = os.open(self.path, os.O_RDWR)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                data = self.path.read_bytes().decode("utf-8", "surrogateescape")
                keep = parse_entries(data)[-self.max_entries:]
                tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
                tmp.write_bytes(b"".join(encode_entry(e) for e in keep))
                os.chmod(tmp, 0o600)
                os.replace(tmp, self.path)
            finally:
                os.close(fd)
