"""Rule examples are our own: none may be a line of the development split.

The dev split (`<repo>/../shared/eval/dev/*.jsonl`, beside the clone in CI)
measures the engine; an example copied from it makes the rule pass its own
test on exactly the line it is measured on, so the figures stop meaning
anything. Lines are compared exactly and after whitespace is normalised
(runs collapsed, and removed altogether), so re-spaced copies are caught too.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from attyguard.engine.rules import load_rules

REPO = Path(__file__).resolve().parent.parent


def _dev_dir() -> Path | None:
    # CI: shared/ beside the clone; a worktree under wt/ has it one level further up.
    for base in (REPO.parent, REPO.parent.parent):
        candidate = base / "shared" / "eval" / "dev"
        if any(candidate.glob("*.jsonl")):
            return candidate
    return None


def _keys(text: str) -> tuple[str, str]:
    return re.sub(r"\s+", " ", text).strip(), re.sub(r"\s+", "", text)


def _dev_lines(directory: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for file in sorted(directory.glob("*.jsonl")):
        for n, line in enumerate(file.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            cmd = json.loads(line).get("cmd")
            if isinstance(cmd, str):
                for key in _keys(cmd):
                    out.setdefault(key, f"{file.name}:{n}")
    return out


def copied_examples(dev: dict[str, str]) -> list[str]:
    found: list[str] = []
    for rule in load_rules().rules:
        for example in (*rule.examples_match, *rule.examples_nomatch):
            where = next((dev[k] for k in _keys(example) if k in dev), None)
            if where is not None:
                found.append(f"{rule.source}: rule {rule.id!r}: {example!r} is {where}")
    return found


def test_no_rule_example_is_a_dev_split_line() -> None:
    directory = _dev_dir()
    if directory is None:
        pytest.skip(f"no dev split at {REPO.parent / 'shared' / 'eval' / 'dev'} "
                    "(it lives beside the clone in CI)")
    copied = copied_examples(_dev_lines(directory))
    assert not copied, "rule examples copied from the dev split:\n" + "\n".join(copied)


def test_the_check_catches_a_respaced_copy(tmp_path: Path) -> None:
    rule = load_rules().rules[0]
    example = rule.examples_match[0]
    (tmp_path / "x.jsonl").write_text(
        json.dumps({"cmd": "  " + example.replace(" ", "   ") + " "}) + "\n", encoding="utf-8")
    found = copied_examples(_dev_lines(tmp_path))
    assert any(rule.id in f for f in found)
