"""Interactive shells started from the prompt (issue 9, family 8)."""

from __future__ import annotations

import pytest

from attyguard.shell.nested import Nested, nested_shell

AG = "/opt/ag/bin/attyguard"


@pytest.mark.parametrize("line,rewritten", [
    ("bash", AG),
    ("  bash  ", AG),
    ("/bin/bash -l", f"{AG} -l"),
    ("bash --norc -i", f"{AG} --norc -i"),
    ("sh", f"{AG} --posix"),
    ("/usr/bin/sh -", f"{AG} --posix"),
])
def test_bare_bash_and_sh_become_a_nested_attyguard(line, rewritten):
    assert nested_shell(line, AG) == Nested(line=rewritten)


@pytest.mark.parametrize("line", [
    "su", "su -", "su - bob", "sudo -i", "sudo -s", "sudo -iu bob", "sudo -u bob bash",
    "sudo su -", "zsh", "dash", "doas -s",
])
def test_shells_that_cannot_be_guarded_are_named(line):
    got = nested_shell(line, AG)
    assert got is not None and got.line is None and "not judged" in got.notice


def test_without_a_known_attyguard_path_bash_is_only_named():
    got = nested_shell("bash", None)
    assert got is not None and got.line is None and "`bash`" in got.notice


@pytest.mark.parametrize("line", [
    "bash script.sh", "bash -c 'echo hi'", "sh -c true", "su -c id root", "sudo ls",
    "sudo -u bob ls", "zsh -c 'echo'", "echo bash", "bash; ls", "ls | bash",
    "bash <<< 'echo'", "sudo -u bob bash -c id", "script -c ls", "bash 'unterminated",
])
def test_other_lines_are_left_alone(line):
    assert nested_shell(line, AG) is None
