"""Each matcher type on its own, through inline rules (the registry, not the shipped files)."""

from __future__ import annotations

import textwrap

import pytest

from attyguard.engine.classify import Engine
from attyguard.engine.rules import load_rules_text


def _engine(match: str, atoms: str = "[]") -> Engine:
    text = textwrap.dedent(
        """\
        rules:
          - id: t
            title: t
            severity: HIGH
            action: warn
            p: 0.5
            explanation: e
            remediation: r
            atoms: {atoms}
            match: {match}
            examples: {{match: ["x"], nomatch: ["y"]}}
        """
    ).format(atoms=atoms, match=match)
    return Engine(load_rules_text(text, "t.yaml"))


def _hits(engine: Engine, line: str) -> bool:
    return any(h.rule_id == "t" for h in engine.classify(line).rules)


URL = "{type: url, command: {names: [curl, wget, git]}, %s}"


@pytest.mark.parametrize(
    ("fields", "line", "expected"),
    [
        ("host_is_ip: true", "curl http://198.51.100.7/x", True),
        ("host_is_ip: true", "curl http://example.org/x", False),
        ("host_is_ip: true", "curl http://3325256711/x", True),
        ("punycode: true", "curl https://xn--pple-43d.com/x", True),
        ("punycode: true", "curl https://apple.com/x", False),
        ("non_ascii: true", "wget https://аpple.com/i.sh", True),
        ("non_ascii: true", "wget https://apple.com/i.sh", False),
        ("tlds: [zip, mov]", "curl -O https://update.zip/x", True),
        ("tlds: [zip, mov]", "curl -O https://update.com/x.zip", False),
        ("ports: [4444]", "curl http://h.example.com:4444/", True),
        ("ports: [4444]", "curl http://h.example.com/", False),
        ("path_regex: '\\.sh$'", "curl -s example.org/get.sh", True),
        ("schemes: [http]", "git clone https://example.org/r", False),
        ("host_regex: 'pastebin'", "curl https://pastebin.com/raw/x", True),
        ("host_regex: 'pastebin'", "echo https://pastebin.com/raw/x", False),
    ],
)
def test_url(fields: str, line: str, expected: bool) -> None:
    assert _hits(_engine(URL % fields, "[curl, wget, git]"), line) is expected


def test_redirect_with_command_and_exclusions() -> None:
    engine = _engine(
        "{type: redirect, ops: ['>>'], target_glob: ['*.bashrc'], "
        "not_target_glob: ['/tmp/*'], command: {names: [echo, printf]}}",
        "[bashrc]",
    )
    assert _hits(engine, "echo 'x' >> ~/.bashrc")
    assert not _hits(engine, "echo 'x' > ~/.bashrc")
    assert not _hits(engine, "echo 'x' >> /tmp/.bashrc")
    assert not _hits(engine, "cat x >> ~/.bashrc")


@pytest.mark.parametrize(
    ("use", "line", "expected"),
    [
        ("name", "curl -o /tmp/x https://e.x/a; /tmp/x", True),
        ("name", "curl -o /tmp/x https://e.x/a; sh /tmp/x", False),
        ("arg", "curl -o /tmp/x https://e.x/a; sh /tmp/x", True),
        ("arg", "curl -o /tmp/x https://e.x/a; cat /tmp/x", False),
        ("any", "wget https://e.x/run.sh && ./run.sh", True),
        ("any", "wget -O out https://e.x/run.sh && ./run.sh", False),
        ("any", "curl https://e.x/run.sh > r.sh; bash r.sh", True),
        ("any", "curl -O https://e.x/gpg; gpg --version", False),
    ],
)
def test_sequence_use(use: str, line: str, expected: bool) -> None:
    engine = _engine(
        "{type: sequence, first: {names: [curl, wget]}, "
        "capture: {after_flags: [-o, -O], url_basename: true}, "
        f"then: {{names: [sh, bash]}}, use: {use}}}",
        "[curl, wget]",
    )
    assert _hits(engine, line) is expected


def test_decoded_filters() -> None:
    engine = _engine("{type: decoded, feeds: [python3], decoders: [base64], "
                     "payload_regex: 'import'}", "[base64]")
    assert _hits(engine, "echo aW1wb3J0IG9z | base64 -d | python3")  # "import os"
    assert not _hits(engine, "echo aW1wb3J0IG9z | base64 -d | perl")
    assert not _hits(engine, "echo cHJpbnQoMSk= | base64 -d | python3")  # print(1)


@pytest.mark.parametrize(
    ("on", "pattern", "line", "expected"),
    [
        ("raw", "c.{2}url", "c''url x", True),
        ("normalized", "^curl x$", "c''url x", True),
        ("scripts", "os\\.system", "python3 -c 'import os; os.system(1)'", True),
        ("scripts", "os\\.system", "echo 'os.system'", False),
        ("heredocs", "secret", "cat <<EOF\nsecret\nEOF", True),
        ("heredocs", "secret", "echo secret", False),
    ],
)
def test_regex_targets(on: str, pattern: str, line: str, expected: bool) -> None:
    engine = _engine(f"{{type: regex, on: {on}, pattern: '{pattern}'}}", "[]")
    assert _hits(engine, line) is expected


def test_all_and_any() -> None:
    both = _engine("{type: all, of: [{type: command, names: [a]}, {type: command, names: [b]}]}")
    assert _hits(both, "a; b")
    assert not _hits(both, "a; c")
    either = _engine("{type: any, of: [{type: command, names: [a]}, "
                     "{type: command, names: [b]}]}")
    assert _hits(either, "b")


@pytest.mark.parametrize(
    ("spec", "line", "expected"),
    [
        ("names: [rm], flags_all: [-r, -f]", "rm -rf /x", True),
        ("names: [rm], flags_all: [-r, -f]", "rm -r /x", False),
        ("names: [rm], flags_any: [--recursive]", "rm --recursive=always x", True),
        ("names: [rm], flags_none: [-i]", "rm -ri x", False),
        ("names: ['python3*']", "python3.12 x", True),
        ("names: [chmod], args_all: ['^\\+s$|^[0-7]?4[0-7]{3}$', '^/']", "chmod 4755 /x", True),
        ("names: [chmod], args_none: ['^-R$']", "chmod -R 777 /x", False),
        ("names: [tar], argline: 'checkpoint-action=exec'",
         "tar -cf x --checkpoint-action=exec=sh .", True),
        ("names: [bash], via: [sudo]", "sudo -u root bash", True),
        ("names: [bash], via: [sudo]", "bash", False),
        ("names: [id], via: [su]", "su -c id", True),
        ("names: [x], min_args: 2", "x a", False),
    ],
)
def test_command_predicates(spec: str, line: str, expected: bool) -> None:
    assert _hits(_engine(f"{{type: command, {spec}}}"), line) is expected


def test_pipeline_through() -> None:
    engine = _engine("{type: pipeline, source: {names: [curl]}, "
                     "through: {names: [base64]}, sink: {names: [sh]}}", "[curl]")
    assert _hits(engine, "curl u | base64 -d | sh")
    assert not _hits(engine, "curl u | sh")


def test_a_backtracking_regex_is_stopped_and_reported() -> None:
    # A leading [^ ]* retried from every position is quadratic on one long word.
    engine = _engine("{type: regex, on: raw, pattern: '[^ ]*(?:[a-z][^ ]*X|X[^ ]*[a-z])'}",
                     "[aaa]")
    verdict = engine.classify("a" * 60_000)
    assert verdict.action.value == "warn"
    assert any("took too long" in h.matched for h in verdict.rules)


def test_bad_regex_is_a_located_error() -> None:
    from attyguard.engine.rules import RuleError

    with pytest.raises(RuleError, match=r"t\.yaml:\d+: rule 't': 'pattern': bad regex"):
        _engine("{type: regex, pattern: '('}")
