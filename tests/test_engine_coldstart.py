"""The engine's start-up shortcuts change no verdict: lazy regexes, deferred imports."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from attyguard.engine import classify as classify_module
from attyguard.engine.classify import Engine
from attyguard.engine.matchers import LazyPattern
from attyguard.engine.rules import RuleError, load_rules, load_rules_text
from attyguard.engine.verdict import Action

RULES = textwrap.dedent("""\
    family: demo
    rules:
      - id: demo-args
        title: t
        severity: HIGH
        action: block
        p: 0.5
        explanation: e
        remediation: r
        atoms: [frob]
        match:
          type: command
          names: [frob]
          args_any: ['{arg}']
        examples:
          match: ["frob --now"]
          nomatch: ["frob"]
      - id: demo-raw
        title: t
        severity: LOW
        action: warn
        p: 0.5
        explanation: e
        remediation: r
        atoms: [frob]
        match: {{type: regex, on: raw, pattern: '{raw}'}}
        examples:
          match: ["frob x"]
          nomatch: ["ls"]
""")


def test_lazy_rules_equal_eager_ones() -> None:
    lazy = load_rules(eager=False)
    eager = load_rules()
    assert lazy.rules == eager.rules
    assert len(lazy.rules) > 10


def test_lazy_patterns_compile_on_first_use() -> None:
    pattern = LazyPattern("a(b", eager=False)  # invalid, yet not compiled: no error
    assert pattern.pattern == "a(b"
    good = LazyPattern("x+")  # eager (the default): compiled (and checked) at once
    assert good.search("axxb") is not None


def test_lazy_load_compiles_nothing_until_a_rule_runs() -> None:
    rules = load_rules_text(RULES.format(arg="^--now$", raw="frob"), "demo.yaml", eager=False)
    spec = rules.rules[0].matcher.spec  # type: ignore[attr-defined]
    assert spec.args_any[0]._compiled is None
    engine = Engine(rules)
    assert engine.classify("ls -l").action is Action.ALLOW
    assert spec.args_any[0]._compiled is None  # prefiltered out: never compiled
    verdict = engine.classify("frob --now")
    assert verdict.action is Action.BLOCK
    assert {h.rule_id for h in verdict.rules} == {"demo-args", "demo-raw"}


@pytest.mark.parametrize(("arg", "raw", "message"), [
    ("(", "frob", r"demo\.yaml:12: rule 'demo-args': 'args_any': bad regex"),
    ("x", "frob(", r"demo\.yaml:\d+: rule 'demo-raw': 'pattern': bad regex"),
])
def test_bad_regex_eager_is_located_lazy_is_never_an_allow(arg: str, raw: str,
                                                           message: str) -> None:
    text = RULES.format(arg=arg, raw=raw)
    with pytest.raises(RuleError, match=message):
        load_rules_text(text, "demo.yaml")
    rules = load_rules_text(text, "demo.yaml", eager=False)
    # An unchecked broken pattern (edited shipped rules) fails when its rule runs:
    # the line is reported as not fully analysed, never allowed in silence.
    assert Engine(rules).classify("frob --now").action is not Action.ALLOW


def test_default_engine_is_lazy() -> None:
    classify_module.reset_default_engine()
    try:
        engine = classify_module.default_engine()
        patterns = [p for r in engine.rules
                    for p in getattr(getattr(r.matcher, "spec", None), "args_any", ())]
        assert patterns and all(p._compiled is None for p in patterns)
    finally:
        classify_module.reset_default_engine()


def test_a_clean_line_imports_no_regex_engine() -> None:
    code = ("import sys, attyguard.engine.classify as c; v = c.classify('ls');"
            "print(v.action.value, 'regex' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60).stdout.split()
    assert out == ["allow", "False"]


@pytest.mark.parametrize(("text", "message"), [
    ("family: demo\nrules: []\nrules: []\n", r"demo\.yaml:3: invalid YAML: duplicate key 'rules'"),
    ("family: demo\n1: x\n", r"demo\.yaml:2: invalid YAML: keys must be strings"),
    ("family: demo\nrules: [\n", r"demo\.yaml:\d: invalid YAML"),
])
def test_yaml_errors_stay_located(text: str, message: str) -> None:
    with pytest.raises(RuleError, match=message):
        load_rules_text(text, "demo.yaml")


def test_yaml_scalars_keep_their_types() -> None:
    from attyguard.engine.rules import _Loader, _parse_yaml

    doc = _parse_yaml("a: [on, yes, true, 'true', 1, 1.5, ~, x]\nb: &x {k: v}\nc: *x\n"
                      "d: {<<: *x, z: 2}\n", "demo.yaml")
    assert doc == {"a": ["on", "yes", True, "true", 1, 1.5, None, "x"], "b": {"k": "v"},
                   "c": {"k": "v"}, "d": {"k": "v", "z": 2}}
    assert doc["a"].lines == [1] * 8 and doc["d"].line == 4
    assert _Loader.__mro__[1].__name__ in ("CSafeLoader", "SafeLoader")
