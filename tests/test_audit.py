"""The hash-chained audit log: writing, rotation, and every tamper case `verify` must name."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from attyguard.audit import GENESIS, AuditError, AuditLog, log_files, verify
from tests.daemon_harness import ATTYGUARD, RunningDaemon, remove_tmpdirs, short_tmpdir


@pytest.fixture(autouse=True)
def _clean_tmpdirs() -> Iterator[None]:
    yield
    remove_tmpdirs()


def _write(path: Path, n: int, **kw: int) -> None:
    with AuditLog(path, **kw) as log:
        for i in range(n):
            log.write({"type": "verdict", "pid": 100 + i, "line": f"echo {i}", "action": "allow"})


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def test_intact_chain_verifies(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    _write(log, 20)
    report = verify(log_files(log))
    assert report.ok, report.problem
    first = json.loads(_lines(log)[0])
    assert first["seq"] == 1 and first["prev"] == GENESIS and first["kind"] == "anchor"
    # open anchor + 20 events + close anchor
    assert report.records == 22 and report.last_seq == 22


def test_reopening_continues_the_chain(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    _write(log, 3)
    _write(log, 3)
    report = verify(log_files(log))
    assert report.ok, report.problem
    assert report.records == 10


def test_file_is_private_even_when_it_existed_loose(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    log.touch(mode=0o644)
    log.chmod(0o644)
    _write(log, 1)
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "audit.jsonl.head").stat().st_mode) == 0o600


def test_a_symlink_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.touch()
    link = tmp_path / "audit.jsonl"
    link.symlink_to(target)
    with pytest.raises(AuditError, match="cannot open audit log"):
        AuditLog(link)


def test_secrets_are_redacted(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    with AuditLog(log) as audit:
        audit.write({"type": "verdict", "line": "mysql -uroot -pHunter2secret db"})
        audit.write({"type": "exec", "argv": ["sshpass", "-p", "Sup3rSecret", "ssh", "h"]})
    text = log.read_text()
    assert "Hunter2secret" not in text and "Sup3rSecret" not in text
    assert "***" in text
    assert verify(log_files(log)).ok


def test_edit_is_named_with_file_and_line(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    _write(log, 10)
    lines = _lines(log)
    lines[4] = lines[4].replace(b"echo 3", b"echo X")
    log.write_bytes(b"".join(lines))
    problem = verify(log_files(log)).problem
    assert problem is not None
    assert (problem.file, problem.line) == (str(log), 5)
    assert "altered" in problem.message


def test_deleted_record_is_named(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    _write(log, 10)
    lines = _lines(log)
    del lines[3]
    log.write_bytes(b"".join(lines))
    problem = verify(log_files(log)).problem
    assert problem is not None and problem.line == 4
    assert "missing" in problem.message


def test_reordered_records_are_named(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    _write(log, 10)
    lines = _lines(log)
    lines[3], lines[4] = lines[4], lines[3]
    log.write_bytes(b"".join(lines))
    problem = verify(log_files(log)).problem
    assert problem is not None and problem.line == 4


def test_rehashed_edit_still_breaks_the_chain(tmp_path: Path) -> None:
    # An attacker who recomputes the edited record's own hash breaks its successor's `prev`.
    from attyguard.audit import _canonical, _digest

    log = tmp_path / "audit.jsonl"
    _write(log, 5)
    lines = _lines(log)
    record = json.loads(lines[2])
    record["event"]["line"] = "echo forged"
    record["hash"] = _digest(record)
    lines[2] = _canonical(record) + b"\n"
    log.write_bytes(b"".join(lines))
    problem = verify(log_files(log)).problem
    assert problem is not None and problem.line == 4
    assert "does not follow" in problem.message


def test_cut_last_record_is_truncation(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    _write(log, 5)
    data = log.read_bytes()
    log.write_bytes(data[:-20])
    problem = verify(log_files(log)).problem
    assert problem is not None and "truncated" in problem.message


def test_tail_removed_past_an_anchor_is_truncation(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    _write(log, 30, anchor_every=10)
    lines = _lines(log)
    log.write_bytes(b"".join(lines[:15]))  # whole records, so the file itself looks fine
    problem = verify(log_files(log)).problem
    assert problem is not None
    assert "missing at the end" in problem.message


def test_rotation_keeps_one_chain_across_files(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    _write(log, 400, max_bytes=8192, keep=50)
    files = log_files(log)
    assert len(files) > 3
    assert files[-1] == log and files[0].name.startswith("audit.jsonl.")
    report = verify(files)
    assert report.ok, report.problem
    assert report.first_seq == 1


def test_rotation_dropping_old_files_is_a_note_not_a_break(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    _write(log, 400, max_bytes=8192, keep=2)
    files = log_files(log)
    assert len(files) == 3
    report = verify(files)
    assert report.ok, report.problem
    assert report.first_seq > 1 and "rotated away" in report.notes[0]


def test_a_removed_middle_file_is_named(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    _write(log, 400, max_bytes=8192, keep=50)
    files = log_files(log)
    files[1].unlink()
    problem = verify(log_files(log)).problem
    assert problem is not None and problem.line == 1
    assert problem.file == str(files[2]) and "missing" in problem.message


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "attyguard", "audit", *args],
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


def test_cli_exit_statuses(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    _write(log, 5)
    ok = _cli("verify", str(log))
    assert ok.returncode == 0 and ok.stdout.startswith("ok: 7 records"), ok
    lines = _lines(log)
    del lines[2]
    log.write_bytes(b"".join(lines))
    broken = _cli("verify", "--json", str(log))
    assert broken.returncode == 1, broken
    data = json.loads(broken.stdout)
    assert data["ok"] is False and data["problem"]["line"] == 3
    missing = _cli("verify", str(tmp_path / "nope.jsonl"))
    assert missing.returncode == 3 and "no such audit log" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_cli_without_file_reads_the_daemon_config(tmp_path: Path) -> None:
    config = tmp_path / "attyguard.toml"
    config.write_text("[daemon]\n")
    no_log = _cli("verify", "--config", str(config))
    assert no_log.returncode == 3 and "sets no audit_log" in no_log.stderr
    log = tmp_path / "a.jsonl"
    _write(log, 2)
    config.write_text(f'[daemon]\naudit_log = "{log}"\n')
    assert _cli("verify", "--config", str(config)).returncode == 0


def test_daemon_writes_its_decisions(tmp_path: Path) -> None:
    directory = short_tmpdir()
    log = directory / "audit" / "audit.jsonl"
    daemon = RunningDaemon(directory, ["--audit-log", str(log)])
    try:
        daemon.start()
        reply = daemon.call("classify", line="rm -rf --no-preserve-root /")
        assert reply["ok"]
        daemon.call("mark", pid=os.getpid(), level="low", reason="test")
    finally:
        assert daemon.stop() == 0, daemon.log()
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    assert stat.S_IMODE(log.parent.stat().st_mode) == 0o700
    events = [json.loads(raw)["event"] for raw in _lines(log)
              if json.loads(raw)["kind"] == "event"]
    verdicts = [e for e in events if e["record"] == "verdict"]
    assert verdicts and verdicts[0]["action"] == "block" and verdicts[0]["rules"]
    assert any(e["record"] == "mark" and e["pid"] == os.getpid() for e in events)
    assert subprocess.run([str(ATTYGUARD), "audit", "verify", str(log)],
                          capture_output=True, timeout=60).returncode == 0
