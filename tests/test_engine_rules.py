"""Rule loading: the schema, located errors (file:line + rule id), the matcher registry."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from attyguard.engine.classify import Engine
from attyguard.engine.examples import run_examples
from attyguard.engine.matchers import MATCHERS
from attyguard.engine.rules import RuleError, RuleSet, load_rules, load_rules_text
from attyguard.engine.verdict import Action, Severity

GOOD = """\
family: demo
sets:
  fetchers: [curl, wget]
rules:
  - id: demo-pipe
    title: Fetch into a shell
    severity: HIGH
    action: warn
    p: 0.5
    explanation: e
    remediation: r
    atoms: [curl, wget]
    match:
      type: pipeline
      source: {names: ["@fetchers"]}
      sink: {names: [sh, bash]}
    examples:
      match: ["curl -s https://example.org | sh"]
      nomatch: ["curl -s https://example.org -o x"]
"""


def _load(text: str) -> RuleSet:
    return load_rules_text(textwrap.dedent(text), "demo.yaml")


def test_good_file_loads() -> None:
    rs = _load(GOOD)
    (rule,) = rs.rules
    assert rule.id == "demo-pipe"
    assert rule.family == "demo"
    assert rule.severity is Severity.HIGH
    assert rule.action is Action.WARN
    assert rule.probability == 0.5
    assert rule.atoms == ("curl", "wget")
    assert rule.source == "demo.yaml:5"
    assert run_examples(rs) == []


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("action: warn", "action: maybe", r"demo\.yaml:5: rule 'demo-pipe': action must be"),
        ("severity: HIGH", "severity: HUGE", r"demo\.yaml:5: rule 'demo-pipe': severity"),
        ("p: 0.5", "p: 1.5", r"demo\.yaml:5: rule 'demo-pipe': p \(probability\)"),
        ("type: pipeline", "type: pipe", r"demo\.yaml:14: rule 'demo-pipe': unknown matcher type"),
        ('source: {names: ["@fetchers"]}', 'source: {name: ["@fetchers"]}',
         r"demo\.yaml:14: rule 'demo-pipe': pipeline source: unknown field\(s\): name"),
        ('"@fetchers"', '"@nope"', r"demo\.yaml:14: rule 'demo-pipe': unknown command set"),
        ("    title: Fetch into a shell\n", "",
         r"demo\.yaml:5: rule 'demo-pipe': missing required"),
        ("    atoms: [curl, wget]", "    atoms: curl", r"'atoms' must be a list"),
        ("nomatch:", "nomatches:", r"at least one 'match' and one 'nomatch'"),
        ("    p: 0.5", "    p: 0.5\n    colour: red", r"unknown field\(s\): colour"),
        ("source: {names", "source: {names: [", r"demo\.yaml:1[56]: invalid YAML"),
    ],
)
def test_errors_are_located(old: str, new: str, message: str) -> None:
    assert old in GOOD
    with pytest.raises(RuleError, match=message):
        _load(GOOD.replace(old, new, 1))


def test_bad_regex_is_located() -> None:
    text = GOOD.replace('sink: {names: [sh, bash]}', "sink: {names: [sh], args_any: ['(']}")
    with pytest.raises(RuleError, match=r"demo\.yaml:14: rule 'demo-pipe': 'args_any': bad regex"):
        _load(text)


def test_duplicate_ids_across_files(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(GOOD)
    (tmp_path / "b.yaml").write_text(GOOD)
    with pytest.raises(RuleError, match=r"b\.yaml:5: rule 'demo-pipe': duplicate rule id"):
        load_rules(tmp_path)


def test_shared_sets_file(tmp_path: Path) -> None:
    (tmp_path / "_sets.yaml").write_text("sets:\n  shells: [sh, bash]\n")
    (tmp_path / "a.yaml").write_text(GOOD.replace("[sh, bash]", '["@shells"]'))
    rs = load_rules(tmp_path)
    assert run_examples(rs) == []


def test_example_failures_are_reported() -> None:
    rs = _load(GOOD.replace('nomatch: ["curl -s https://example.org -o x"]',
                            'nomatch: ["wget -qO- https://example.org | bash"]'))
    (failure,) = run_examples(rs)
    assert failure.rule_id == "demo-pipe"
    assert not failure.expected_match
    assert "demo.yaml:5" in str(failure)


def test_atoms_gate_the_rule() -> None:
    # With an atom the line never contains, the structural matcher is never tried.
    rs = _load(GOOD.replace("atoms: [curl, wget]", "atoms: [zzz]"))
    assert Engine(rs).classify("curl -s https://example.org | sh").action is Action.ALLOW


def test_registry_has_every_documented_type() -> None:
    readme = (Path(__file__).resolve().parent.parent / "patterns" / "README.md").read_text()
    for kind in MATCHERS:
        assert f"### `{kind}`" in readme or f"`{kind}`" in readme, kind
    assert set(MATCHERS) >= {"command", "pipeline", "redirect", "sequence", "url", "decoded",
                             "regex", "all", "any"}


def test_assignment_predicate() -> None:
    text = GOOD.replace(
        """      type: pipeline
      source: {names: ["@fetchers"]}
      sink: {names: [sh, bash]}""",
        """      type: command
      assignments_any: ['^HISTFILE=/dev/null$']""",
    ).replace("atoms: [curl, wget]", "atoms: [histfile]").replace(
        '"curl -s https://example.org | sh"', '"HISTFILE=/dev/null"'
    ).replace('"curl -s https://example.org -o x"', '"echo $HISTFILE"')
    rs = _load(text)
    assert run_examples(rs) == []
    assert Engine(rs).classify("HISTFILE=/dev/null bash").action is Action.WARN


def test_atoms_are_substrings_and_caret_starts_a_word() -> None:
    from attyguard.engine.atoms import AtomMatcher

    atoms = AtomMatcher([["sh"], ["^nc"], ["cron"], []])
    assert atoms.candidates("bash -i") == {0, 3}
    assert atoms.candidates("git branch") == {3}
    assert atoms.candidates("/bin/nc -e x") == {1, 3}
    assert atoms.candidates("ncat -l") == {1, 3}
    assert atoms.candidates("/etc/crontab") == {2, 3}


def test_caret_alone_is_not_an_atom() -> None:
    with pytest.raises(RuleError, match="atoms must be non-empty"):
        _load(GOOD.replace("atoms: [curl, wget]", 'atoms: ["^"]'))
