from __future__ import annotations

import pytest

from attyguard.shell.args import parse_args
from attyguard.shell.main import is_interactive


@pytest.mark.parametrize(
    ("argv", "command", "file", "operands", "login"),
    [
        ([], None, None, [], False),
        (["-l"], None, None, [], True),
        (["--login"], None, None, [], True),
        (["-c", "echo hi"], "echo hi", None, [], False),
        (["-c", "echo $0", "name", "a"], "echo $0", None, ["name", "a"], False),
        (["-lc", "rsync --server ."], "rsync --server .", None, [], True),
        (["-l", "-i", "-c", "vim"], "vim", None, [], True),
        (["-e", "-o", "pipefail", "-c", "x"], "x", None, [], False),
        (["-c", "-e", "x"], None, None, [], False),  # -c takes the first operand: "x"? see below
        (["script.sh", "a", "-c"], None, "script.sh", ["a", "-c"], False),
        (["--", "script.sh"], None, "script.sh", [], False),
        (["-s", "a", "b"], None, None, ["a", "b"], False),
        (["--norc", "--rcfile", "f"], None, None, [], False),
    ],
)
def test_parse(argv, command, file, operands, login):
    args = parse_args(argv)
    if argv == ["-c", "-e", "x"]:
        # like bash, options may follow -c; the command is the first operand
        assert (args.command, args.operands) == ("x", [])
        return
    assert args.error is None
    assert (args.command, args.file, args.operands, args.login) == (
        command, file, operands, login)


@pytest.mark.parametrize("argv", [["-c"], ["-o"], ["--bogus"]])
def test_errors(argv):
    assert parse_args(argv).error


@pytest.mark.parametrize(
    ("argv", "stdin_tty", "stderr_tty", "expected"),
    [
        ([], True, True, True),
        ([], False, True, False),
        ([], True, False, False),
        (["-i"], False, False, True),
        (["-c", "x"], True, True, False),
        (["-i", "-c", "x"], True, True, False),
        (["file"], True, True, False),
        (["-s"], True, True, True),
    ],
)
def test_interactive_rule(argv, stdin_tty, stderr_tty, expected):
    assert is_interactive(parse_args(argv), stdin_tty, stderr_tty) is expected


@pytest.mark.parametrize(
    ("argv0", "parent", "env", "login"),
    [
        ("-attyguard", "tmux: server", {"SHLVL": "1"}, True),
        ("attyguard", "sshd", {}, True),
        ("attyguard", "sshd-session", {}, True),
        ("attyguard", "su", {}, True),  # su - : environment cleared
        ("attyguard", "su", {"SHLVL": "2"}, False),  # plain su keeps it
        ("attyguard", "sudo", {}, True),  # sudo -i
        ("attyguard", "bash", {}, False),
        ("attyguard", "tmux: server", {"SHLVL": "1"}, False),
    ],
)
def test_login_from_context(argv0, parent, env, login):
    from attyguard.shell.main import _login_from_context

    assert _login_from_context(argv0, parent, env) is login
