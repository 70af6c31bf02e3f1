"""What the user sees of a verdict: the warn choice and the REFUSED line.

`ask_warn` is a tiny prompt_toolkit application reading one key:
y -> "yes" (run once), t -> "trust" (remember, then run), anything else ->
"cancel". Its input/output are parameters so tests drive it headless.
Everything shown from the command line is escaped first (`text.one_line`):
control characters never reach the terminal raw.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from prompt_toolkit.application import Application
from prompt_toolkit.formatted_text import FormattedText
from prompt_toolkit.input import Input
from prompt_toolkit.input.typeahead import get_typeahead
from prompt_toolkit.key_binding import KeyBindings, KeyPress, KeyPressEvent
from prompt_toolkit.keys import Keys
from prompt_toolkit.layout import Layout, Window
from prompt_toolkit.layout.controls import FormattedTextControl
from prompt_toolkit.output import Output

from attyguard.config import pt_style
from attyguard.shell.text import one_line

if TYPE_CHECKING:  # the engine loads on the Guard's thread, after the first prompt
    from attyguard.engine.verdict import Verdict

__all__ = ["ask_warn", "confirm_bindings", "pt_style", "refused_text", "warn_text"]


def refused_text(verdict: Verdict, style: str) -> FormattedText:
    return FormattedText([(pt_style(style), f"REFUSED — {one_line(verdict.reason)}"),
                          ("", "\n")])


def warn_text(verdict: Verdict, style: str, width: int = 0) -> FormattedText:
    """The reason, then each rule's id and explanation, wrapped at words to `width`.

    The id is what `attyguard rules explain ID` takes. `width` 0: the
    terminal's (80 if there is none).
    """
    if width <= 0:
        import shutil

        width = shutil.get_terminal_size((80, 24)).columns
    parts = [(pt_style(style), _wrap(f"⚠ {one_line(verdict.reason)}", width, "", "  "))]
    for hit in verdict.rules[:3]:
        body = f"[{hit.rule_id}] {hit.explanation}" if hit.explanation else f"[{hit.rule_id}]"
        parts.append(("", "\n" + _wrap(one_line(body), width, "  ", "    ")))
    parts.append(("", "\n"))
    return FormattedText(parts)


def _wrap(text: str, width: int, first: str, rest: str) -> str:
    """At word boundaries (prompt_toolkit's own wrap splits words); ids are never split."""
    import textwrap

    return textwrap.fill(text, max(width - 1, 20), initial_indent=first,
                         subsequent_indent=rest, break_on_hyphens=False)


_QUESTION = FormattedText([("bold", "[y]es"), ("", " / "), ("bold", "[t]rust"),
                           ("", " / cancel? ")])


def _answer_yes(event: KeyPressEvent) -> None:
    """y: run this line once."""
    event.app.exit(result="yes")


def _answer_trust(event: KeyPressEvent) -> None:
    """t: remember this line as trusted, then run it."""
    event.app.exit(result="trust")


def _answer_cancel(event: KeyPressEvent) -> None:
    """Any other key: do not run; the line goes back to the prompt."""
    event.app.exit(result="cancel")


_SHOWN = {"yes": "yes", "trust": "trust", "cancel": "cancelled"}


def confirm_bindings() -> KeyBindings:
    kb = KeyBindings()
    kb.add("y")(_answer_yes)
    kb.add("Y")(_answer_yes)
    kb.add("t")(_answer_trust)
    kb.add("T")(_answer_trust)
    kb.add(Keys.Any)(_answer_cancel)
    kb.add("c-c")(_answer_cancel)
    kb.add("c-d")(_answer_cancel)
    kb.add("enter")(_answer_cancel)
    kb.add("escape", eager=True)(_answer_cancel)
    return kb


def ask_warn(input: Input | None = None, output: Output | None = None,
             on_shown: Callable[[], None] | None = None) -> str:
    """Ask `[y]es / [t]rust / cancel` and return "yes", "trust" or "cancel".

    A key that arrived before the question was on screen is never an answer
    (typed ahead after Enter, meant for what comes next): such keys are
    dropped once the question has been drawn, and the question line says so.
    `on_shown` runs right after that (tests send their answer there).
    """
    dropped: list[str] = []

    def question() -> FormattedText:
        # Once answered, the final frame (left in scrollback) says what was chosen.
        answer = None
        future = app.future
        if future is not None and future.done() and not future.cancelled() \
                and future.exception() is None:
            answer = _SHOWN.get(future.result())
        note: list[tuple[str, str]] = []
        if dropped:
            n = len(dropped)
            # (typed before the question was on screen: never an answer)
            note = [("", f"  ({n} early key{'s' if n > 1 else ''} ignored)")]
        return FormattedText([*_QUESTION, ("bold", answer or ""), *note])

    app: Application[str] = Application(
        layout=Layout(Window(FormattedTextControl(question), height=1,
                             dont_extend_height=True)),
        key_bindings=confirm_bindings(),
        input=input,
        output=output,
        erase_when_done=False,
    )
    def pre_run() -> None:
        # Keys an earlier prompt read ahead would be fed before the first draw.
        dropped.extend(press.data for press in get_typeahead(app.input))

    def shown(_app: object) -> None:
        app.after_render -= shown
        # The question is on the terminal now (the render flushed it): whatever
        # is still queued on the input was typed before it could be seen.
        dropped.extend(_queued_keys(app))
        if dropped:
            app.invalidate()  # (the question now says so)
        if on_shown is not None:
            on_shown()

    app.after_render += shown
    try:
        result = app.run(pre_run=pre_run)
    except (KeyboardInterrupt, EOFError):
        result = "cancel"
    return result if result in ("yes", "trust") else "cancel"


def _queued_keys(app: Application[str]) -> list[str]:
    """Every key waiting on the input right now, read and dropped (returned).

    The terminal's answer to the cursor-position request the question just
    made is not a key: it goes on to prompt_toolkit as usual.
    """
    keys: list[str] = []
    kept: list[KeyPress] = []
    for _ in range(1000):  # (bounded: a flood of input must not hold the question forever)
        got = app.input.read_keys()
        if not got:
            break
        for press in got:
            if press.key == Keys.CPRResponse:
                kept.append(press)
            else:
                keys.append(press.data)
    for press in app.input.flush_keys():
        if press.key == Keys.CPRResponse:
            kept.append(press)
        else:
            keys.append(press.data)
    if kept:
        app.key_processor.feed_multiple(kept)
        app.key_processor.process_keys()
    return keys
