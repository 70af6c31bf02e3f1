"""Tab completion answered by the live bash (session functions, aliases,
variables, files, programmable `complete -F/-W` specs), listed as bash lists.

The first Tab inserts what all candidates share (or the one candidate), or
rings the bell when there is nothing to add; a second Tab in a row lists
them: sorted, laid out in columns exactly as readline's
`rl_display_match_list` does (`bash_columns`), asked about first from
`completion-query-items` (100) candidates on, and a screenful at a time with
readline's `--More--`. prompt_toolkit's own readline-like listing pads by
one space, lays out each page separately and asks whenever the list does not
fit the screen; that is not what muscle memory expects, hence this module.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document
from prompt_toolkit.utils import get_cwidth

__all__ = ["QUERY_ITEMS", "BashCompleter", "bash_columns", "complete_or_list"]

QUERY_ITEMS = 100  # readline's completion-query-items: ask before listing this many

# Per prompt buffer: the text and cursor the last Tab left (see `complete_or_list`).
_last_tab: weakref.WeakKeyDictionary[Any, tuple[str, int]] = weakref.WeakKeyDictionary()


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


def bash_columns(items: Sequence[str], width: int) -> list[str]:
    """`items` in rows as readline lays out a completion listing on `width` columns.

    Columns are as wide as the widest item plus two; as many as fit, one
    fewer when they would fill the line exactly (the last column would
    wrap); at least one. Items run down the columns (like `ls`), the rows
    are as many as that takes for the whole list (a second screenful goes
    on with the same columns). No padding after a row's last item.
    """
    if not items:
        return []
    widths = [get_cwidth(item) for item in items]
    col = max(widths) + 2
    per_row = width // col
    if per_row != 1 and per_row * col == width:
        per_row -= 1
    per_row = max(per_row, 1)
    nrows = (len(items) + per_row - 1) // per_row
    rows = []
    for r in range(nrows):
        parts: list[str] = []
        for k in range(r, len(items), nrows):
            if parts:
                parts.append(" " * max(col - widths[k - nrows], 1))
            parts.append(items[k])
        rows.append("".join(parts))
    return rows


def complete_or_list(event: Any) -> None:
    """Tab: complete the shared prefix (or the one candidate), else list as bash does."""
    from prompt_toolkit.completion import get_common_complete_suffix

    buffer = event.current_buffer
    if buffer.completer is None:
        return
    completions = list(buffer.completer.get_completions(
        buffer.document, CompleteEvent(completion_requested=True)))
    if len(completions) == 1:
        buffer.delete_before_cursor(-completions[0].start_position)
        buffer.insert_text(completions[0].text)
        return
    common = get_common_complete_suffix(buffer.document, completions)
    here = (buffer.text, buffer.cursor_position)
    # A second Tab in a row: nothing typed or moved since the last one. (Not
    # prompt_toolkit's `is_repeat`: a cursor-position report arriving between
    # the two keys is handled by another binding and breaks it.)
    again = _last_tab.get(buffer) == here
    if common:
        buffer.insert_text(common)
        here = (buffer.text, buffer.cursor_position)
    elif completions and again:
        _list(event.app, [c.display_text for c in completions])
    elif completions:
        # Nothing to add: readline rings the bell and lists on the next Tab.
        event.app.output.bell()
    _last_tab[buffer] = here


def _list(app: Any, names: list[str]) -> None:
    """Print `names` above the prompt as readline would (asked first, paged)."""
    from prompt_toolkit.application.run_in_terminal import in_terminal

    size = app.output.get_size()
    rows = bash_columns(names, size.columns)
    page = max(size.rows - 1, 1)

    def show(row: str) -> None:
        app.print_text([("class:readline-like-completions.completion", row), ("", "\n")])

    async def run() -> None:
        # (render_cli_done: the prompt's frame as accepted, without the status bar,
        # is what stays above the listing: shell/prompt.py `_status_bar_without_cpr`)
        async with in_terminal(render_cli_done=True):
            if len(names) >= QUERY_ITEMS and not await _key_session(
                    f"Display all {len(names)} possibilities? (y or n)",
                    yes="yY ", no="nN\x7f", erase=False).prompt_async():
                return
            shown = 0
            for i, row in enumerate(rows):
                show(row)
                shown += 1
                if shown >= page and i + 1 < len(rows):
                    more = await _key_session("--More--", yes="yY ", no="nNqQ\x7f",
                                              one_line="\r\n", erase=True).prompt_async()
                    if more is False:
                        return
                    shown = shown - 1 if more is None else 0

    app.create_background_task(run())


def _key_session(message: str, *, yes: str, no: str, one_line: str = "",
                 erase: bool) -> Any:
    """A one-key question: True for a key in `yes`, False in `no`, None in `one_line`
    (readline's pager: Enter shows one more line). Other keys are ignored."""
    from prompt_toolkit.key_binding import KeyBindings
    from prompt_toolkit.keys import Keys
    from prompt_toolkit.shortcuts import PromptSession

    bindings = KeyBindings()

    def answer(result: bool | None) -> Callable[[Any], None]:
        def handler(event: Any) -> None:
            event.app.exit(result=result)
        return handler

    for keys, result in ((yes, True), (no, False), (one_line, None)):
        for key in keys:
            name = {"\r": Keys.ControlM, "\n": Keys.ControlJ, "\x7f": Keys.Backspace,
                    " ": " "}.get(key, key)
            bindings.add(name)(answer(result))
    bindings.add(Keys.ControlC)(answer(False))

    @bindings.add(Keys.Any)
    def _ignore(_event: Any) -> None:
        """Nothing else is typed into the question."""

    return PromptSession(message, key_bindings=bindings, erase_when_done=erase)
