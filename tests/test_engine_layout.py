"""The engine's module layout: no import cycles, one matcher table, atoms naming sets."""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import pytest

from attyguard.engine.matchers import MATCHERS
from attyguard.engine.matchers.base import Build, LazyPattern, MatcherError
from attyguard.engine.rules import RuleError, load_rules, load_rules_text

ENGINE = Path(__file__).resolve().parent.parent / "attyguard" / "engine"


def _module_name(path: Path) -> str:
    rel = path.relative_to(ENGINE.parent.parent).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def _imports() -> dict[str, set[str]]:
    """Engine module -> engine modules it imports anywhere (function-level imports too)."""
    graph: dict[str, set[str]] = {}
    for path in ENGINE.rglob("*.py"):
        name = _module_name(path)
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                if node.module.startswith("attyguard.engine"):
                    deps.add(node.module)
            elif isinstance(node, ast.Import):
                deps.update(a.name for a in node.names if a.name.startswith("attyguard.engine"))
        graph[name] = deps
    # Importing `a.b.c` runs the package `a.b` first: that is an edge too.
    for name, deps in graph.items():
        for dep in list(deps):
            parent = dep.rsplit(".", 1)[0]
            if parent in graph and parent != name and not name.startswith(parent + "."):
                deps.add(parent)
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph.get(node, ())):
            if dep not in graph:
                continue
            if state.get(dep) == 1:
                return [*stack[stack.index(dep):], dep]
            if dep not in state:
                found = visit(dep)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_engine_has_no_import_cycle() -> None:
    graph = _imports()
    assert "attyguard.engine.matchers.base" in graph
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])


def test_cycle_finder_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_one_table_names_every_type() -> None:
    assert set(MATCHERS) == {"command", "pipeline", "redirect", "sequence", "url", "decoded",
                             "regex", "writes", "package", "all", "any", "none"}
    for kind, cls in MATCHERS.items():
        assert cls.type_name == kind


def test_eager_is_an_argument() -> None:
    lazy = Build({}, eager=False)
    assert lazy.pattern("a(b").pattern == "a(b"  # not compiled, so not checked
    with pytest.raises(MatcherError, match="bad regex"):
        Build({}).pattern("a(b")
    timed = LazyPattern("x+", timeout=0.05)
    assert timed.search("axx") is not None


RULE = textwrap.dedent("""\
    family: demo
    sets:
      tools: [frob, "grob*", "^zz"]
    rules:
      - id: demo-atoms
        title: t
        severity: HIGH
        action: warn
        p: 0.5
        explanation: e
        remediation: r
        atoms: [{atoms}]
        match: {{type: command, names: [frob, grobber, zz]}}
        examples:
          match: ["frob x", "grobber y", "zz q"]
          nomatch: ["ls"]
""")


def test_atoms_name_a_set() -> None:
    (rule,) = load_rules_text(RULE.format(atoms='"@tools"'), "demo.yaml").rules
    assert set(rule.atoms) == {"frob", "grob", "^zz"}
    (rule,) = load_rules_text(RULE.format(atoms='"^@tools"'), "demo.yaml").rules
    assert set(rule.atoms) == {"^frob", "^grob", "^zz"}


def test_atoms_naming_an_unknown_set_is_located() -> None:
    with pytest.raises(RuleError, match=r"demo\.yaml:\d+: rule 'demo-atoms': atoms: unknown set"):
        load_rules_text(RULE.format(atoms='"@nosuch"'), "demo.yaml")


def test_shipped_download_rules_use_the_shared_atom_set() -> None:
    rules = [r for r in load_rules().rules if r.family == "download-exec"]
    shared = [r for r in rules if "^xh" in r.atoms and "invoke-webrequest" in r.atoms]
    assert len(shared) >= 5
    text = (ENGINE.parent.parent / "patterns" / "download-exec.yaml").read_text()
    assert text.count("invoke-webrequest") == 0  # the list lives once, in _sets.yaml
