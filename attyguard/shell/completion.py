"""Tab completion answered by the live bash (session functions, aliases,
variables, files, programmable `complete -F/-W` specs)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document

__all__ = ["BashCompleter"]


class BashCompleter(Completer):
    """Asks `ask(line, point) -> (word, candidates)` only on an explicit Tab."""

    def __init__(self, ask: Callable[[str, int], tuple[str, list[str]]]) -> None:
        self.ask = ask

    def get_completions(self, document: Document,
                        complete_event: CompleteEvent) -> Iterable[Completion]:
        if not complete_event.completion_requested:
            return  # never a bash round trip per keystroke
        word, candidates = self.ask(document.text, document.cursor_position)
        before = document.text_before_cursor
        start = -len(word) if word and before.endswith(word) else 0
        # Sorted and once each, as readline lists them (bash's order is the spec's).
        candidates = sorted(set(candidates))
        single = len(candidates) == 1
        for cand in candidates:
            # Like readline: a unique, finished word gets its trailing space.
            text = cand + " " if single and not cand.endswith(("/", " ")) else cand
            bare = cand.rstrip(" ")
            # Show the last path component, as readline lists file names.
            display = bare.rstrip("/").rsplit("/", 1)[-1] + ("/" if bare.endswith("/") else "")
            yield Completion(text, start_position=start, display=display or cand)
