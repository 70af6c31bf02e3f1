"""`attyguard trust …` through the real console script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ATTYGUARD = str(Path(sys.executable).parent / "attyguard")


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def run(home: Path, *args: str | bytes, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "ATTYGUARD_HOME": str(home), "NO_COLOR": "1", "COLUMNS": "200"}
    proc = subprocess.run([ATTYGUARD, "trust", *args], input=stdin, env=env,
                          capture_output=True, timeout=60)
    assert b"Traceback" not in proc.stderr, proc.stderr.decode(errors="replace")
    return proc


class Result:
    def __init__(self, returncode: int, stdout: bytes, stderr: bytes) -> None:
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


@pytest.fixture
def call(capsysbinary: pytest.CaptureFixture[bytes], monkeypatch: pytest.MonkeyPatch) -> Any:
    """`attyguard trust ARGS…` in-process under ATTYGUARD_HOME=home: the code path
    after argv, without an interpreter start per call (slow on a busy 2-core CI)."""
    from attyguard.cli import main

    monkeypatch.setenv("COLUMNS", "200")

    def invoke(home: Path, *args: str | bytes) -> Result:
        monkeypatch.setenv("ATTYGUARD_HOME", str(home))
        argv = [a if isinstance(a, str) else a.decode("utf-8", "surrogateescape") for a in args]
        code = main(["trust", *argv])
        captured = capsysbinary.readouterr()
        assert b"Traceback" not in captured.err
        return Result(code, captured.out, captured.err)

    return invoke


def listed(home: Path) -> list[dict[str, object]]:
    proc = run(home, "list", "--json")
    assert proc.returncode == 0, proc.stderr
    rows: list[dict[str, object]] = json.loads(proc.stdout)
    return rows


def test_add_list_remove(home: Path) -> None:
    proc = run(home, "add", "--json", "--rule", "fs.rm", "--", "rm", "-rf", "dist")
    assert proc.returncode == 0
    added = json.loads(proc.stdout)
    assert added["preview"] == "rm -rf dist" and added["rule_ids"] == ["fs.rm"]
    [row] = listed(home)
    assert row["sha256"] == added["sha256"]
    human = run(home, "list")
    assert b"rm -rf dist" in human.stdout and b"fs.rm" in human.stdout
    assert run(home, "remove", "--", "rm -rf dist").returncode == 0
    missing = run(home, "remove", "--json", "--", "rm -rf dist")
    assert missing.returncode == 1 and json.loads(missing.stdout) == {"removed": False}
    assert listed(home) == []


def test_add_without_rule_records_what_the_engine_matches(home: Path) -> None:
    proc = run(home, "add", "--json", "--", "echo plain")
    assert proc.returncode == 0
    assert isinstance(json.loads(proc.stdout)["rule_ids"], list)


def test_list_never_shows_a_secret(home: Path, call: Any) -> None:
    call(home, "add", "--rule", "r", "--", "curl -u ops:Tr0ub4dor https://internal")
    for args in (("list",), ("list", "--json"), ("export",)):
        out = call(home, *args).stdout
        assert b"Tr0ub4dor" not in out and b"ops:***" in out


def test_remove_by_hash_prefix(home: Path, call: Any) -> None:
    call(home, "add", "--rule", "r", "--", "sudo reboot")
    [row] = listed(home)
    too_short = call(home, "remove", "--sha256", str(row["sha256"])[:4])
    assert too_short.returncode == 3
    proc = call(home, "remove", "--sha256", str(row["sha256"])[:10])
    assert proc.returncode == 0 and b"sudo reboot" in proc.stdout
    assert listed(home) == []


def test_clear_needs_yes_without_a_tty(home: Path) -> None:
    run(home, "add", "--rule", "r", "--", "a")
    run(home, "add", "--rule", "r", "--", "b")
    refused = run(home, "clear")
    assert refused.returncode == 3 and b"--yes" in refused.stderr
    assert len(listed(home)) == 2  # nothing lost
    proc = run(home, "clear", "--yes", "--json")
    assert proc.returncode == 0 and json.loads(proc.stdout) == {"removed": 2}
    assert listed(home) == []


def test_export_then_import_into_another_home(home: Path, tmp_path: Path) -> None:
    run(home, "add", "--rule", "r1", "--", "systemctl restart nginx")
    run(home, "add", "--rule", "r", "--", "docker system prune -f")
    exported = run(home, "export")
    assert exported.returncode == 0
    doc = json.loads(exported.stdout)
    assert doc["format"] == "attyguard-trust" and len(doc["entries"]) == 2
    dump = tmp_path / "trust.json"
    dump.write_bytes(exported.stdout)
    other = tmp_path / "other"
    proc = run(other, "import", "--json", str(dump))
    assert proc.returncode == 0 and json.loads(proc.stdout) == {"imported": 2}
    assert {r["sha256"] for r in listed(other)} == {r["sha256"] for r in doc["entries"]}
    # and from stdin; importing again merges instead of duplicating
    assert run(other, "import", "-", stdin=exported.stdout).returncode == 0
    assert len(listed(other)) == 2
    check = subprocess.run(
        [ATTYGUARD, "check", "--json", "--no-daemon", "--", "systemctl restart nginx"],
        env={**os.environ, "ATTYGUARD_HOME": str(other)}, capture_output=True, timeout=60)
    assert json.loads(check.stdout)["source"] == "trust"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\xff\xfe garbage", b"not valid UTF-8"),
        (b"{ nope", b"not JSON"),
        (b'{"something": 1}', b"trust export"),
        (b'[{"sha256": "zz"}]', b"entry 0"),
        (b'[{"cmd": "ok"}, {"cmd": "x\\u0000y"}]', b"entry 1"),
    ],
)
def test_bad_import_is_one_line_and_changes_nothing(home: Path, tmp_path: Path, call: Any,
                                                     content: bytes, message: bytes) -> None:
    call(home, "add", "--rule", "r", "--", "keep me")
    bad = tmp_path / "bad.json"
    bad.write_bytes(content)
    proc = call(home, "import", str(bad))
    assert proc.returncode == 3
    assert proc.stderr.count(b"\n") == 1 and message in proc.stderr, proc.stderr
    assert [r["preview"] for r in listed(home)] == ["keep me"]


@pytest.mark.parametrize(
    ("args", "status"),
    [
        ((), 3),
        (("frobnicate",), 3),
        (("add",), 3),
        (("add", "--", ""), 3),
        (("remove",), 3),
        (("remove", "--sha256", "abcdef12", "--", "ls"), 3),
        (("add", "--", b"\xc3\x28"), 3),
        (("import", "/nonexistent/file.json"), 3),
    ],
)
def test_bad_usage(home: Path, call: Any, args: tuple[str | bytes, ...], status: int) -> None:
    proc = call(home, *args)
    assert proc.returncode == status
    assert proc.stderr.count(b"\n") == 1 and proc.stderr.startswith(b"attyguard trust: ")


def test_loose_store_is_moved_aside_and_list_goes_on(home: Path) -> None:
    run(home, "add", "--rule", "r", "--", "echo before")
    store = home / "data" / "trust.sqlite3"
    os.chmod(store, 0o666)
    proc = run(home, "list", "--json")
    assert proc.returncode == 0 and json.loads(proc.stdout) == []
    assert b"writable" in proc.stderr and proc.stderr.count(b"\n") == 1
    aside = [p for p in store.parent.iterdir() if p.name.startswith("trust.sqlite3.unsafe-")
             and not p.name.endswith(("-wal", "-shm"))]
    assert len(aside) == 1


def test_help_exits_0(home: Path) -> None:
    proc = run(home, "--help")
    assert proc.returncode == 0 and b"export" in proc.stdout


def test_import_json_lines_of_full_commands(home: Path, call: Any, tmp_path: Path) -> None:
    lines = tmp_path / "lines.jsonl"
    lines.write_text('{"cmd": "make install", "rule_ids": ["r"]}\n\n{"cmd": "make -C x clean"}\n')
    proc = call(home, "import", "--json", str(lines))
    assert proc.returncode == 0 and json.loads(proc.stdout) == {"imported": 2}
    rows = json.loads(call(home, "list", "--json").stdout)
    assert sorted(r["preview"] for r in rows) == ["make -C x clean", "make install"]
