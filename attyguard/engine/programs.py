"""A snapshot of the programs on PATH, for resolving globs in command words.

The engine is pure: it matches `/u?r/s?in/wip?fs` against a `ProgramIndex`
(data). This module owns the one function that reads directories to build
such an index; a front end calls it once at start-up and hands the result to
`Engine(…, programs=…)` or `set_default_programs`. Unreadable directories are
skipped; the static table of usual programs is always included.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from attyguard.engine.normalize import DEFAULT_PROGRAMS, ProgramIndex

__all__ = ["MAX_PROGRAMS", "snapshot_programs"]

MAX_PROGRAMS = 50_000  # entries kept; a PATH with more is cut (the static table stays)
_SYSTEM_DIRS = ("/bin", "/sbin", "/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin")


def snapshot_programs(path: str | None = None, extra: Iterable[str] = _SYSTEM_DIRS) -> ProgramIndex:
    """Every executable name in PATH's absolute directories (and the system ones)."""
    dirs: list[str] = []
    for d in [*(path if path is not None else os.environ.get("PATH", "")).split(":"), *extra]:
        if d.startswith("/") and d not in dirs:
            dirs.append(d.rstrip("/") or "/")
    found: list[str] = list(DEFAULT_PROGRAMS.paths)
    for d in dirs:
        try:
            with os.scandir(d) as it:
                for entry in it:
                    if len(found) >= MAX_PROGRAMS:
                        break
                    if "\n" not in entry.name:
                        found.append(f"{d}/{entry.name}")
        except OSError:
            continue
    return ProgramIndex(tuple(found))
