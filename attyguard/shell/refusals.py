"""Exec refusals from the daemon, shown as one red line at the shell's next prompt.

When the kernel layer refuses an exec in this shell's process tree (enforce
mode), the daemon sends a `refused` event on the shell's subscription (a
WarnSubscriber thread). The command that tried it is usually still running
then, its output on the terminal: the line waits here and is printed above
the next prompt, as the first thing drawn (a prompt already up shows it at
once). Hooked onto the prompt application's `before_render` so the
interactive loop itself needs no change.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["Refusals", "install"]

_MAX = 100  # a storm of refusals prints the newest ones and says how many were left out


class Refusals:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: list[str] = []
        self._dropped = 0
        self.wake: Callable[[], None] | None = None

    def add(self, text: str) -> None:
        with self._lock:
            self._items.append(text)
            if len(self._items) > _MAX:
                del self._items[0]
                self._dropped += 1
        wake = self.wake
        if wake is not None:
            with contextlib.suppress(Exception):
                wake()

    def take(self) -> list[str]:
        with self._lock:
            items, dropped = self._items, self._dropped
            self._items, self._dropped = [], 0
        if dropped:
            items = [f"({dropped} more exec refusals not shown)", *items]
        return items


def install(app: Any, refusals: Refusals, style: str) -> None:
    """Print waiting refusals above the prompt of `app` whenever it draws."""
    from prompt_toolkit import print_formatted_text
    from prompt_toolkit.application import run_in_terminal
    from prompt_toolkit.formatted_text import FormattedText

    from attyguard.shell.confirm import pt_style
    from attyguard.shell.text import one_line

    def show(items: list[str]) -> None:
        for text in items:
            print_formatted_text(FormattedText([(pt_style(style), one_line(text, 300))]))

    def before_render(_app: object) -> None:
        items = refusals.take()
        if items:
            run_in_terminal(lambda: show(items))

    app.before_render += before_render
    refusals.wake = app.invalidate
