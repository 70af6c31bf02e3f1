"""The `writes` and `package` matcher types (engine/writes.py, engine/packages.py)."""

from __future__ import annotations

import textwrap

import pytest

from attyguard.engine.classify import Engine
from attyguard.engine.packages import skeleton, within_one_edit
from attyguard.engine.rules import RuleError, load_rules_text

RULES = """\
rules:
  - id: t-writes
    title: t
    severity: HIGH
    action: warn
    p: 0.5
    explanation: e
    remediation: r
    atoms: [cron]
    match: {type: writes, target_regex: '^/etc/cron'}
    examples: {match: ["echo x > /etc/cron.d/a"], nomatch: ["cat /etc/crontab"]}
  - id: t-append
    title: t
    severity: HIGH
    action: warn
    p: 0.5
    explanation: e
    remediation: r
    atoms: [bashrc]
    match: {type: writes, target_glob: ['*/.bashrc'], how: [append]}
    examples: {match: ["echo x >> ~/.bashrc"], nomatch: ["echo x > ~/.bashrc"]}
  - id: t-pkg
    title: t
    severity: HIGH
    action: block
    p: 0.9
    explanation: e
    remediation: r
    atoms: [npm, pip, yarn]
    match:
      type: package
      known: {npm: [crossenv, event-stream@3.3.6], pypi: [colourama]}
      typosquat_of: {pypi: [requests, jellyfish, python-dateutil], npm: [express, react, preact]}
    examples: {match: ["npm i crossenv"], nomatch: ["npm i cross-env"]}
"""

ENGINE = Engine(load_rules_text(RULES, "t.yaml"))


def _ids(line: str) -> set[str]:
    return {h.rule_id for h in ENGINE.classify(line).rules}


@pytest.mark.parametrize("line", [
    "echo '* * * * * root /tmp/x' > /etc/cron.d/job",
    "echo job | sudo tee -a /etc/crontab",
    "sudo cp ./job /etc/cron.daily/",
    "install -m 644 job /etc/cron.d/job",
    "sudo sed -i 's/a/b/' /etc/crontab",
    "sed -e 's/a/b/' -i /etc/crontab",
    "sudo sh -c 'cat job >> /etc/crontab'",
    "{ echo a; echo b; } > /etc/cron.d/x",
    "dd if=job of=/etc/cron.d/job",
    "curl -s https://example.org/j -o /etc/cron.d/j",
    "truncate -s 0 /etc/crontab",
])
def test_writes_matches_every_way_of_writing(line: str) -> None:
    assert "t-writes" in _ids(line)


@pytest.mark.parametrize("line", [
    "cat /etc/crontab",
    "less /etc/cron.d/job",
    "cp /etc/crontab /tmp/crontab.bak",
    "sed 's/a/b/' /etc/crontab",
    "grep -r cron /etc/cron.d",
    "tee /tmp/x < /etc/crontab",
    "ls /etc/cron.daily",
])
def test_writes_ignores_reading(line: str) -> None:
    assert "t-writes" not in _ids(line)


def test_writes_how_restricts() -> None:
    assert "t-append" in _ids("echo x >> ~/.bashrc")
    assert "t-append" in _ids("echo x | tee -a $HOME/.bashrc")
    assert "t-append" not in _ids("echo x > ~/.bashrc")


@pytest.mark.parametrize(("line", "hit"), [
    ("npm install crossenv", True),
    ("npm i -g crossenv@1.0.0", True),
    ("npm install event-stream@3.3.6", True),
    ("npm install event-stream", False),
    ("pip install colourama", True),
    ("python3 -m pip install --user Colourama==0.1", True),
    ("pip install jeIlyfish", True),  # capital I for l
    ("pip install python3-dateutil", True),
    ("pip install reqeusts", True),  # swapped letters
    ("uv pip install requestss", True),
    ("pip install requests jellyfish python_dateutil", False),
    ("pip install -r requirements.txt", False),
    ("pip install -e .", False),
    ("yarn add expres", True),
    ("npm install preact react express", False),
    ("npm install", False),
    ("pip show colourama", False),
])
def test_package_matcher(line: str, hit: bool) -> None:
    assert ("t-pkg" in _ids(line)) is hit


def test_edit_distance_and_skeleton() -> None:
    assert within_one_edit("reqeusts", "requests")
    assert within_one_edit("request", "requests")
    assert within_one_edit("requestz", "requests")
    assert not within_one_edit("requests", "requests")
    assert not within_one_edit("reqstsue", "requests")
    assert skeleton("jeIlyfish") == "jellyfish"
    assert skeleton("rеquests") == "requests"  # Cyrillic е


@pytest.mark.parametrize(("snippet", "message"), [
    ("match: {type: writes}", "needs 'target_glob' or 'target_regex'"),
    ("match: {type: writes, target_glob: x, how: [sideways]}", "'how' must be among"),
    ("match: {type: package}", "needs 'known' and/or 'typosquat_of'"),
    ("match: {type: package, known: {cpan: [x]}}", "unknown ecosystem 'cpan'"),
])
def test_bad_definitions_are_located(snippet: str, message: str) -> None:
    text = textwrap.dedent(f"""\
        rules:
          - id: bad
            title: t
            severity: LOW
            action: warn
            p: 0.1
            explanation: e
            remediation: r
            atoms: [x]
            {snippet}
            examples: {{match: [x], nomatch: [y]}}
        """)
    with pytest.raises(RuleError, match=r"t\.yaml:\d+: rule 'bad': .*" + message):
        load_rules_text(text, "t.yaml")


def test_regex_on_typed_ignores_decoded_layers() -> None:
    text = textwrap.dedent("""\
        rules:
          - id: esc
            title: t
            severity: LOW
            action: warn
            p: 0.1
            explanation: e
            remediation: r
            atoms: ["\\x1b", echo]
            match: {type: regex, on: typed, pattern: '\\x1b'}
            examples: {match: ["ls \\x1b[2K"], nomatch: ["ls"]}
        """)
    engine = Engine(load_rules_text(text, "t.yaml"))
    assert "esc" in {h.rule_id for h in engine.classify("ls \x1b[2Kx").rules}
    assert not engine.classify('echo -e "\\x1b[1mbold"').rules
