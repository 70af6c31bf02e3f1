"""Headless prompt_toolkit tests of the warn choice and the REFUSED line."""

from __future__ import annotations

import io

import pytest
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput, create_output

from attyguard.engine.verdict import Action, RuleHit, Severity, Verdict
from attyguard.shell.confirm import ask_warn, pt_style, refused_text, warn_text


@pytest.mark.parametrize(
    ("keys", "expected"),
    [("y", "yes"), ("Y", "yes"), ("t", "trust"), ("n", "cancel"), ("\r", "cancel"),
     ("\x03", "cancel"), ("\x1b", "cancel"), ("q", "cancel")],
)
def test_ask_warn_answers(keys, expected):
    with create_pipe_input() as inp:
        assert ask_warn(input=inp, output=DummyOutput(),
                        on_shown=lambda: inp.send_text(keys)) == expected


@pytest.mark.parametrize("early", ["y", "t", "yyy", "Y\r"])
def test_keys_before_the_question_are_never_the_answer(early):
    """Typed ahead with Enter (before the question is drawn): dropped, and said so."""
    out = io.StringIO()
    with create_pipe_input() as inp:
        inp.send_text(early)
        answer = ask_warn(input=inp, output=create_output(stdout=out),
                          on_shown=lambda: inp.send_text("n"))
    assert answer == "cancel"
    assert f"({len(early)} early key" in out.getvalue()


def test_keys_typed_ahead_by_an_earlier_prompt_are_never_the_answer():
    from prompt_toolkit.input.typeahead import store_typeahead
    from prompt_toolkit.key_binding import KeyPress

    with create_pipe_input() as inp:
        store_typeahead(inp, [KeyPress("y", "y")])
        assert ask_warn(input=inp, output=DummyOutput(),
                        on_shown=lambda: inp.send_text("q")) == "cancel"


def hit(title: str, explanation: str = "") -> RuleHit:
    return RuleHit("r1", title, Severity.HIGH, Action.BLOCK, 0.9, explanation=explanation)


def test_refused_text_escapes_controls_and_uses_style():
    verdict = Verdict(Action.BLOCK, rules=(hit("bad\x1b[2Jthing"),))
    (style, text), _ = list(refused_text(verdict, "bold red on white"))
    assert style == "bold red bg:white"
    assert text == "REFUSED — bad\\x1b[2Jthing"


def test_warn_text_lists_explanations_escaped():
    verdict = Verdict(Action.WARN, rules=(hit("risky", "why\x07 it is"),))
    text = "".join(part for _, part in warn_text(verdict, "bold yellow"))
    assert "⚠ risky" in text and "why\\x07 it is" in text


def test_pt_style():
    assert pt_style("bold red") == "bold red"
    assert pt_style("italic blue on black") == "italic blue bg:black"


def test_warn_text_names_the_rule_and_wraps_at_words():
    long_why = "it fetches a script from the network and runs it without anyone reading it " * 2
    verdict = Verdict(Action.WARN, rules=(hit("risky download", long_why.strip()),))
    text = "".join(part for _, part in warn_text(verdict, "bold yellow", width=40))
    lines = text.rstrip("\n").split("\n")
    assert lines[1].startswith("  [r1] it fetches"), lines
    assert all(len(line) <= 39 for line in lines), lines
    # Every word is whole on one line: the lines joined give the text back.
    assert " ".join(" ".join(lines[1:]).split()) == f"[r1] {long_why.strip()}"
