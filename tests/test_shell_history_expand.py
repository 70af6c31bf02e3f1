"""History expansion and fc: the pure decisions, and bash's own expansion through the channel."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from attyguard.shell.bash import BashChild
from attyguard.shell.history_expand import (
    FcCall,
    event_designator,
    fc_substitute,
    might_expand,
    parse_fc,
    print_only,
    rewrite_fc_edit,
)
from tests.bash_child import bash_child, run


@pytest.mark.parametrize("text,chars,expected", [
    ("ls -la", "!^#", False),
    ("sudo !!", "!^#", True),
    ("^old^new", "!^#", True),
    ("  ^old^new", "!^#", True),
    ("echo a^b", "!^#", False),
    ("sudo !!", "", False),  # set +H
    ("echo %%", "%^#", True),  # the user's own history character
])
def test_might_expand(text, chars, expected):
    assert might_expand(text, chars) is expected


def test_print_only():
    assert print_only("!!:p", "!^#") and print_only("echo !-2:p", "!^#")
    assert not print_only("!!:s/a/b/", "!^#") and not print_only("!!:p", "")


@pytest.mark.parametrize("line,call", [
    ("fc -s", FcCall("reexec", ())),
    ("fc -s ls", FcCall("reexec", ("ls",))),
    ("fc -s old=new -2", FcCall("reexec", ("-2",), "old", "new")),
    ("fc -e - a=b", FcCall("reexec", (), "a", "b", "-")),
    ("fc -l", FcCall("list", ())),
    ("fc -ln -5", FcCall("list", ("-5",), options=("-n",))),
    ("fc", FcCall("edit", ())),
    ("fc -e nano 10 12", FcCall("edit", ("10", "12"), editor="nano")),
    ("fc -r -3", FcCall("edit", ("-3",), options=("-r",))),
])
def test_parse_fc(line, call):
    assert parse_fc(line) == call


@pytest.mark.parametrize("line", ["fc -s; ls", "echo fc", "fcat x", "fc -x", "fc -s 'open"])
def test_parse_fc_other_lines(line):
    assert parse_fc(line) is None


def test_event_and_substitution():
    assert event_designator(FcCall("reexec", ())) == "!-1"
    assert event_designator(FcCall("reexec", ("-3",))) == "!-3"
    assert event_designator(FcCall("reexec", ("git",))) == "!git"
    assert event_designator(FcCall("reexec", ("a b",))) is None
    assert fc_substitute("cp a a.bak a", FcCall("reexec", (), "a", "b")) == "cp b b.bbk b"
    assert rewrite_fc_edit(FcCall("edit", ("-2",), editor="vim -u NONE", options=("-r",))) \
        == "__ag_fced_ed='vim -u NONE' fc -e __ag_fced -r -2"


# --- bash's own expansion, through the channel ------------------------------------------

@pytest.fixture
def child(tmp_path) -> Iterator[BashChild]:
    yield from bash_child(tmp_path, "PS1='$ '\nHISTFILE=\n")


def test_bash_expands_with_its_own_history(child):
    assert child.state.histchars == "!^#"
    run(child, "echo one two")
    assert child.expand_history("!! x !$") == (0, "echo one two x two", "")
    assert child.expand_history("^one^three") == (0, "echo three two", "")
    assert child.expand_history("echo '!!'") == (0, "echo '!!'", "")
    run(child, "history -s 'echo stored by history -s'")
    assert child.expand_history("!!") == (0, "echo stored by history -s", "")
    status, _, error = child.expand_history("!no-such-event")
    assert status != 0 and "no-such-event" in error
    # Asking stored nothing and lost nothing (history -p would delete the last
    # entry from a bind -x handler), and bash no longer expands what it is sent.
    for _ in range(3):
        assert child.expand_history("!-2")[0] == 0
    listing = run(child, "history")
    assert b"x two" not in listing and b"echo one two" in listing
    assert b"stored by history -s" in listing
    assert run(child, "echo !!") == b"!!\r\n"
    assert run(child, "echo $_") == b"!!\r\n"


def test_set_plus_h_and_histverify_are_the_users(child):
    run(child, "set +H")
    assert child.state.histchars == ""
    run(child, "set -H; histchars='%^#'; shopt -s histverify")
    assert child.state.histchars == "%^#" and child.state.histverify
    run(child, "echo first")
    assert child.expand_history("%-1 x") == (0, "echo first x", "")


def test_editing_fc_brings_the_text_back_instead_of_running_it(child, tmp_path):
    marker = tmp_path / "marker"
    editor = tmp_path / "ed.sh"
    editor.write_text(f"#!/bin/sh\nprintf 'touch {marker}\\n' > \"$1\"\n")
    editor.chmod(0o755)
    run(child, "echo before")
    run(child, rewrite_fc_edit(FcCall("edit", (), editor=str(editor))))
    assert not marker.exists()
    assert (child.dir / "fced").read_text() == f"touch {marker}\n"


@pytest.mark.parametrize("line,inside", [
    ("history -s 'x'; fc -s", True),
    ("ls && fc", True),
    ("if true; then fc -s; fi", True),
    ("x=$(fc -s)", True),
    ("ls; builtin fc -s", True),
    ("fc -s", False),  # on its own: resolved before it runs
    ("ls; fc -l", False),  # lists only
    ("x=$(fc -ln -1)", False),
    ("echo fc", False),
])
def test_fc_in_compound(line, inside):
    from attyguard.shell.history_expand import fc_in_compound

    assert fc_in_compound(line) is inside
