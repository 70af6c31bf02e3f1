"""The live shell's state a line uses: what to ask for, decoding, and the real round trip."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from attyguard.engine.state import EMPTY_STATE
from attyguard.shell.bash import BashChild
from attyguard.shell.state import (
    Names,
    Needs,
    build_state,
    decode_answer,
    encode_request,
    needs_of,
    parse_names,
    parse_traps,
)
from tests.bash_child import bash_child, run

NAMES = Names(aliases={"ll": "ls -l", "go": 'eval "$cmd"', "gf": "helper x"},
              functions=frozenset({"helper", "deploy"}),
              hashed={"ls": "/tmp/not-ls"})


@pytest.mark.parametrize("line", [
    "ls -la /tmp",
    "git status",
    "echo 'hello world' > out.txt",
    "make -j4 && ./run-tests",
    "cd ..; pwd",
    "ll",  # an alias whose value uses nothing: known from the names file
])
def test_literal_lines_need_no_round_trip(line):
    assert not needs_of(line, NAMES)


@pytest.mark.parametrize("line,variables,functions,traps", [
    ('eval "$v"', {"v"}, set(), False),
    ("echo ${HOME} ${#list[@]} ${!ref}", {"HOME", "list", "ref"}, set(), False),
    ("echo $((a + b * 2))", {"a", "b"}, set(), False),
    ("(( count++ ))", {"count"}, set(), False),
    ("deploy prod", set(), {"deploy"}, False),
    ("go", {"cmd"}, set(), False),  # the alias's value uses $cmd
    ("gf", set(), {"helper"}, False),  # the alias calls a function
    ("kill -USR1 $$", set(), set(), False),  # (traps come with the names record)
    ("exit", set(), set(), False),
    ("echo $__ag_nonce $1 $?", set(), set(), False),  # ours and specials never leave
])
def test_needs_of(line, variables, functions, traps):
    needs = needs_of(line, NAMES)
    assert needs == Needs(frozenset(variables), frozenset(functions), traps)


def test_names_file_is_parsed_and_ours_are_hidden():
    data = ("a", "ll", "ls -l", "a", "__ag_x", "y", "h", "ls", "/tmp/evil",
            "F", "deploy\n__ag_post\nhelper\n")
    names = parse_names(data)
    assert dict(names.aliases) == {"ll": "ls -l"}
    assert names.functions == {"deploy", "helper"}
    assert dict(names.hashed) == {"ls": "/tmp/evil"}
    assert parse_names(("a", "trunc")) == Names()  # a torn record: nothing invented


def test_traps_come_with_the_names_record_and_go_where_they_can_run():
    names = parse_names(("f", "deploy", "T",
                         "trap -- 'echo dbg' DEBUG\ntrap -- 'echo ret' RETURN\n"
                         "trap -- 'echo bye' EXIT\ntrap -- 'echo usr' SIGUSR1\n"))
    never = lambda needs: None  # noqa: E731  (no round trip for any of these)
    assert dict(build_state("ls", names, never).traps) == {"DEBUG": "echo dbg"}
    assert dict(build_state("deploy", names, never).traps) == {
        "DEBUG": "echo dbg", "RETURN": "echo ret"}
    assert set(build_state("kill -USR1 $$", names, never).traps) == {
        "DEBUG", "RETURN", "EXIT", "USR1"}


def test_request_encoding_skips_invalid_names():
    req = encode_request(Needs(frozenset({"ok", "bad name"}), frozenset({"f"}), True))
    assert req == b"v:ok\0f:f\0t:\0"


@pytest.mark.parametrize("fields,variables,arrays", [
    (("V", "v", 'say "hi" \'there\' $x\nline2'), {"v": 'say "hi" \'there\' $x\nline2'}, {}),
    (("V", "e", ""), {"e": ""}, {}),
    (("V", "c", "tab\there\x1bescape"), {"c": "tab\there\x1bescape"}, {}),
    (("A", "a", "2", "0", "x", "5", "y z"), {}, {"a": {"0": "x", "5": "y z"}}),
    (("M", "m", "1", "k ]1", "$'v'"), {}, {"m": {"k ]1": "$'v'"}}),
    (("A", "a", "3", "0", "x"), {}, {}),  # truncated: dropped, nothing invented
    (("V", "v", "1", "Q", "junk", "V", "w", "2"), {"v": "1"}, {}),  # unknown group ends it
])
def test_decode_answer(fields, variables, arrays):
    got = decode_answer(fields)
    assert got.variables == variables
    assert got.arrays == arrays


def test_parse_traps():
    text = "trap -- 'echo '\\''bye'\\''' EXIT\ntrap -- 'curl x | sh' SIGUSR1\n"
    assert parse_traps(text) == {"EXIT": "echo 'bye'", "USR1": "curl x | sh"}
    assert parse_traps("trap -- 'unterminated") == {}


def test_build_state_one_round_trip_and_closure():
    asked: list[Needs] = []
    answers = {
        "v": ("V", "v", "payload"),
        "deploy": ("F", "deploy", 'deploy () \n{ \n    eval "$d"\n}\n'),
        "d": ("V", "d", "inner"),
    }

    def fetch(needs: Needs) -> tuple[str, ...]:
        asked.append(needs)
        out: list[str] = []
        for name in sorted(needs.variables | needs.functions):
            out += answers.get(name, ())
        return tuple(out)

    state = build_state('eval "$v"; deploy; ll; ls', NAMES, fetch)
    assert dict(state.variables) == {"v": "payload", "d": "inner"}
    assert "deploy" in state.functions
    assert dict(state.aliases) == {"ll": "ls -l"}
    assert dict(state.hashed) == {"ls": "/tmp/not-ls"}
    # The function body's $d needed a second round trip; nothing was asked twice.
    assert [sorted(n.variables | n.functions) for n in asked] == [["deploy", "v"], ["d"]]


def test_build_state_literal_line_never_fetches():
    def fetch(needs: Needs) -> tuple[str, ...]:
        raise AssertionError("no round trip expected")

    assert build_state("ls -la", Names(), fetch) is EMPTY_STATE
    assert dict(build_state("ls -la", NAMES, fetch).hashed) == {"ls": "/tmp/not-ls"}


def test_build_state_indirect_reference_is_followed():
    def fetch(needs: Needs) -> tuple[str, ...]:
        values = {"ref": "target", "target": "the value"}
        return tuple(x for n in sorted(needs.variables) if n in values
                     for x in ("V", n, values[n]))

    state = build_state("eval ${!ref}", Names(), fetch)
    assert dict(state.variables) == {"ref": "target", "target": "the value"}


def test_no_answer_keeps_what_is_known():
    state = build_state('ll; eval "$v"', NAMES, lambda needs: None)
    assert dict(state.aliases) == {"ll": "ls -l"} and not state.variables


# --- the real bash child ----------------------------------------------------------------

@pytest.fixture
def child(tmp_path) -> Iterator[BashChild]:
    yield from bash_child(tmp_path, "PS1='[\\w]$ '\nalias ll='echo alias-ll $D'\n")


def test_real_bash_round_trip(child):
    run(child, "v=$'say \"hi\" \\'q\\' $x\\nline2'; arr=(x 'y z'); "
               "declare -A m=([k1]=v1 ['k 2']=$'t\\tab'); D=/dev; out=shadow; "
               "f() { eval \"$v $D\"; }; hash -p /tmp/not-ls ls; trap 'echo bye' USR1; "
               "echo last-word")

    def fetch(needs: Needs) -> tuple[str, ...] | None:
        return child.fetch_state(encode_request(needs))

    names = parse_names(child.names())
    assert dict(names.aliases) == {"ll": "echo alias-ll $D"}
    assert "f" in names.functions and dict(names.hashed) == {"ls": "/tmp/not-ls"}
    state = build_state('eval "$v" ${arr[1]} ${m[k1]} $out $unset; f; ll; ls; kill -USR1 $$',
                        names, fetch)
    assert dict(state.variables) == {"v": "say \"hi\" 'q' $x\nline2", "D": "/dev",
                                     "out": "shadow"}
    assert {k: dict(v) for k, v in state.arrays.items()} == {
        "arr": {"0": "x", "1": "y z"}, "m": {"k1": "v1", "k 2": "t\tab"}}
    assert 'eval "$v $D"' in state.functions["f"]
    assert dict(state.traps) == {"USR1": "echo bye"}
    # Asking changed nothing the user can see: $_, $? and history are as they were.
    assert run(child, "echo $_ $?") == b"last-word 0\r\n"
    assert b"__ag" not in run(child, "history 3")


def test_real_bash_never_hands_out_our_own_names(child):
    fields = child.fetch_state(b"v:__ag_nonce\0v:__ag_dir\0f:__ag_post\0")
    assert fields == ()
