"""WarnBuffer: warnings waiting for the user (the status bar's `⚠ N`).

Fed by the shell's own warn verdicts (each warned line the user ran or
cancelled) and, when a daemon is configured, by its warn events (from a
WarnSubscriber thread, hence the lock). Alt+Shift+W drains it into scrollback.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

__all__ = ["WarnBuffer"]

_MAX = 1000  # oldest warnings are dropped beyond this, the count says how many


class WarnBuffer:
    def __init__(self, on_change: Callable[[], None] | None = None) -> None:
        self._lock = threading.Lock()
        self._items: list[str] = []
        self._dropped = 0
        self.on_change = on_change

    def add(self, text: str) -> None:
        with self._lock:
            self._items.append(text)
            if len(self._items) > _MAX:
                del self._items[0]
                self._dropped += 1
        self._changed()

    @property
    def count(self) -> int:
        with self._lock:
            return len(self._items) + self._dropped

    def drain(self) -> list[str]:
        with self._lock:
            items = self._items
            if self._dropped:
                items = [f"({self._dropped} older warnings dropped)", *items]
            self._items, self._dropped = [], 0
        self._changed()
        return items

    def _changed(self) -> None:
        callback = self.on_change
        if callback is not None:
            callback()
