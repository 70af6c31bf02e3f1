"""`attyguard rules …` through the real console script, on the shipped rules and
on small rule directories written here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ATTYGUARD = str(Path(sys.executable).parent / "attyguard")

GOOD_RULE = """\
family: testing
rules:
  - id: t-shred-disk
    title: Shred a whole disk
    severity: CRITICAL
    action: block
    p: 0.9
    explanation: Overwrites every block of a disk.
    remediation: Name a file, not a device.
    atoms: [shred]
    match:
      type: command
      names: [shred]
      args_any: ['^/dev/sd[a-z]$']
    examples:
      match:
        - shred -n 1 /dev/sdb
      nomatch:
        - shred notes.txt
"""


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200"}
    proc = subprocess.run([ATTYGUARD, "rules", *args], env=env, capture_output=True, text=True,
                          timeout=120)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


class Result:
    def __init__(self, returncode: int, stdout: str, stderr: str) -> None:
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


@pytest.fixture
def call(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Any:
    """The same command in-process (the console script costs a second per start here)."""
    from attyguard.commands import rules

    monkeypatch.setenv("COLUMNS", "200")

    def invoke(*args: str) -> Result:
        code = rules.main(list(args))
        captured = capsys.readouterr()
        assert "Traceback" not in captured.err
        return Result(code, captured.out, captured.err)

    return invoke


def test_shipped_rules_list_and_pass_their_examples() -> None:
    listed = run("list", "--json")
    assert listed.returncode == 0
    rules = json.loads(listed.stdout)
    assert rules and {"id", "title", "family", "severity", "action", "source"} <= set(rules[0])
    assert len({r["id"] for r in rules}) == len(rules)
    tested = run("test", "--json")
    report = json.loads(tested.stdout)
    assert tested.returncode == 0, report["failures"]
    assert report["rules"] == len(rules) and report["examples"] > 0


def test_explain_a_shipped_rule_and_an_unknown_one(call: Any) -> None:
    first = json.loads(call("list", "--json").stdout)[0]
    explained = call("explain", first["id"])
    assert explained.returncode == 0
    assert first["title"] in explained.stdout and first["source"] in explained.stdout
    as_json = json.loads(call("explain", "--json", first["id"]).stdout)
    assert as_json == first
    unknown = call("explain", first["id"] + "x")
    assert unknown.returncode == 3 and first["id"] in unknown.stderr  # suggested
    assert unknown.stderr.count("\n") == 1


def test_own_rule_directory(tmp_path: Path, call: Any) -> None:
    (tmp_path / "testing.yaml").write_text(GOOD_RULE)
    listed = json.loads(call("list", "--json", "--path", str(tmp_path)).stdout)
    assert [r["id"] for r in listed] == ["t-shred-disk"]
    assert listed[0]["severity"] == "CRITICAL" and listed[0]["action"] == "block"
    human = call("list", "--path", str(tmp_path))
    assert "t-shred-disk" in human.stdout
    assert call("test", "--path", str(tmp_path)).returncode == 0


def test_failing_example_exits_1_and_names_it(tmp_path: Path) -> None:
    # through the console script: the exit status is what a CI job sees
    (tmp_path / "testing.yaml").write_text(
        GOOD_RULE.replace("        - shred notes.txt", "        - shred /dev/sdc"))
    proc = run("test", "--path", str(tmp_path))
    assert proc.returncode == 1
    assert "t-shred-disk" in proc.stdout and "/dev/sdc" in proc.stdout
    report = json.loads(run("test", "--json", "--path", str(tmp_path)).stdout)
    [failure] = report["failures"]
    assert failure["rule_id"] == "t-shred-disk" and failure["expected_match"] is False


@pytest.mark.parametrize(
    ("content", "where"),
    [
        (GOOD_RULE.replace("severity: CRITICAL", "severity: APOCALYPTIC"), "testing.yaml:"),
        (GOOD_RULE.replace("    atoms: [shred]\n", "    atoms: [shred\n"), "testing.yaml:"),
        (GOOD_RULE + GOOD_RULE.split("rules:\n", 1)[1], "testing.yaml:"),  # duplicate id
        ("\xff\xfe not yaml", "testing.yaml:"),
    ],
)
def test_rule_file_errors_are_one_located_line(tmp_path: Path, content: str, where: str,
                                                call: Any) -> None:
    (tmp_path / "testing.yaml").write_bytes(content.encode("utf-8", "surrogateescape")
                                            if "\xff" not in content else b"\xff\xfe not yaml")
    for action in ("list", "test"):
        proc = call(action, "--path", str(tmp_path))
        assert proc.returncode == 3, proc.stdout
        assert proc.stderr.count("\n") == 1 and where in proc.stderr, proc.stderr
        assert proc.stderr.startswith("attyguard rules: ")


@pytest.mark.parametrize("args", [(), ("explain",), ("list", "--path", "/nonexistent/dir"),
                                  ("bogus",)])
def test_bad_usage(args: tuple[str, ...], call: Any) -> None:
    proc = call(*args)
    assert proc.returncode == 3
    assert proc.stderr.count("\n") == 1


def test_list_piped_prints_one_plain_line_per_rule() -> None:
    listed = run("list")  # stdout is a pipe here
    assert listed.returncode == 0
    rules = json.loads(run("list", "--json").stdout)
    lines = listed.stdout.splitlines()
    assert len(lines) == len(rules)
    assert lines[0].split("\t")[:4] == [rules[0]["id"], rules[0]["family"],
                                         rules[0]["severity"], rules[0]["action"]]
    assert not any(ch in listed.stdout for ch in "┏━┃│")
