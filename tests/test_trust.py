"""The trust store on real SQLite files: behaviour, safety checks, concurrency."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from attyguard.trust import (
    STORE_NAME,
    TrustError,
    TrustStore,
    line_key,
    open_trust_store,
)

IS_ROOT = os.geteuid() == 0
OTHER_UID = 54321


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ATTYGUARD_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def _store_path(home: Path) -> Path:
    return home / "data" / STORE_NAME


def _open(path: Path | None = None) -> TrustStore:
    store, warning = open_trust_store(path)
    assert warning is None
    assert store is not None
    return store


def _aside(home: Path) -> list[Path]:
    """Files moved aside next to the store (store name + a reason suffix)."""
    return sorted(p for p in (home / "data").iterdir()
                  if p.name.startswith(STORE_NAME + ".") and not p.name.endswith(("-wal", "-shm")))


def test_add_lookup_remove_round_trip(home: Path) -> None:
    store = _open()
    assert not store.lookup("rm -rf build")
    store.add("rm -rf build", ("fs.rm-recursive",))
    assert store.lookup("rm -rf build")
    assert not store.lookup("rm -rf build ")  # exact line only
    assert store.remove("rm -rf build")
    assert not store.remove("rm -rf build")
    assert not store.lookup("rm -rf build")
    store.close()


def test_rows_keep_dates_counts_rules_and_only_a_hash(home: Path) -> None:
    store = _open()
    before = time.time()
    store.add("curl https://x | sh", ("net.pipe-to-shell",))
    store.add("curl https://x | sh", ("other.rule",))  # re-trust merges rule ids
    for _ in range(3):
        assert store.lookup("curl https://x | sh")
    peek = store.get("curl https://x | sh")
    assert peek is not None and peek.use_count == 3  # get() does not count
    [entry] = store.entries()
    assert entry.sha256 == line_key("curl https://x | sh")
    assert entry.rule_ids == ("net.pipe-to-shell", "other.rule")
    assert entry.use_count == 3
    assert before - 1 <= entry.created <= entry.last_used <= time.time() + 1
    store.close()
    conn = sqlite3.connect(_store_path(home))
    columns = [r[1] for r in conn.execute("PRAGMA table_info(trust)")]
    conn.close()
    assert "line" not in columns and "cmd" not in columns


def test_preview_is_redacted(home: Path) -> None:
    store = _open()
    store.add("mysql -u app -pS3cr3tPass appdb", ())
    store.add("curl -H 'Authorization: Bearer abc.def.ghi123' https://api", ())
    previews = " ".join(e.preview for e in store.entries())
    assert "S3cr3tPass" not in previews
    assert "abc.def.ghi123" not in previews
    assert "mysql -u app -p*** appdb" in previews
    store.close()


def test_files_are_private(home: Path) -> None:
    store = _open()
    store.add("x", ())
    data = home / "data"
    assert stat.S_IMODE(os.stat(data).st_mode) == 0o700
    for name in (STORE_NAME, STORE_NAME + "-wal", STORE_NAME + "-shm"):
        path = data / name
        if path.exists():
            assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, name
    store.close()


def test_loose_own_directory_is_tightened(home: Path) -> None:
    (home / "data").mkdir(parents=True)
    os.chmod(home / "data", 0o755)
    _open().close()
    assert stat.S_IMODE(os.stat(home / "data").st_mode) == 0o700


def test_lookup_is_wal_and_connection_stays_open(home: Path) -> None:
    store = _open()
    conn = sqlite3.connect(_store_path(home))
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()
    plan = " ".join(str(r) for r in store._conn.execute(
        "EXPLAIN QUERY PLAN SELECT 1 FROM trust WHERE sha256 = ?", ("0" * 64,)))
    assert "PRIMARY KEY" in plan or "USING" in plan
    store.close()


def _fill(home: Path) -> bytes:
    store = _open()
    store.add("make deploy", ("a",))
    store.close()
    # Fold the WAL into the main file so the file holds everything the user stored.
    conn = sqlite3.connect(_store_path(home))
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return _store_path(home).read_bytes()


@pytest.mark.parametrize("mode", [0o666, 0o620, 0o602])
def test_group_or_world_writable_store_is_moved_aside(home: Path, mode: int) -> None:
    original = _fill(home)
    os.chmod(_store_path(home), mode)
    store, warning = open_trust_store()
    assert store is None
    assert warning is not None and "writable" in warning and "moved aside" in warning
    assert "\n" not in warning
    [moved] = _aside(home)
    assert moved.read_bytes() == original  # never deleted, never changed
    fresh = _open()
    assert not fresh.lookup("make deploy")  # as if untrusted
    fresh.close()


@pytest.mark.skipif(not IS_ROOT, reason="chown to another uid needs root")
def test_store_owned_by_someone_else_is_moved_aside(home: Path) -> None:
    original = _fill(home)
    os.chown(_store_path(home), OTHER_UID, OTHER_UID)
    store, warning = open_trust_store()
    assert store is None
    assert warning is not None and f"uid {OTHER_UID}" in warning
    [moved] = _aside(home)
    assert moved.read_bytes() == original
    assert os.stat(moved).st_uid == OTHER_UID


@pytest.mark.skipif(not IS_ROOT, reason="chown to another uid needs root")
def test_foreign_wal_file_is_not_trusted(home: Path) -> None:
    _fill(home)
    wal = _store_path(home).with_name(STORE_NAME + "-wal")
    wal.write_bytes(b"")
    os.chmod(wal, 0o600)
    os.chown(wal, OTHER_UID, OTHER_UID)
    store, warning = open_trust_store()
    assert store is None and warning is not None and "-wal" in warning
    assert not wal.exists()  # moved with its database


@pytest.mark.skipif(not IS_ROOT, reason="chown to another uid needs root")
def test_directory_owned_by_someone_else_is_not_used(home: Path) -> None:
    (home / "data").mkdir(parents=True)
    os.chown(home / "data", OTHER_UID, OTHER_UID)
    store, warning = open_trust_store()
    assert store is None
    assert warning is not None and "owned by uid" in warning


def test_symlinked_store_is_moved_aside(home: Path, tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.sqlite3"
    target.write_bytes(b"")
    (home / "data").mkdir(parents=True, mode=0o700)
    _store_path(home).symlink_to(target)
    store, warning = open_trust_store()
    assert store is None and warning is not None and "symbolic link" in warning
    assert target.exists()
    assert not _store_path(home).is_symlink()


def test_garbage_store_is_moved_aside_with_one_warning(home: Path) -> None:
    _store_path(home).parent.mkdir(parents=True, mode=0o700)
    garbage = os.urandom(3000)
    _store_path(home).write_bytes(garbage)
    os.chmod(_store_path(home), 0o600)
    store, warning = open_trust_store()
    assert store is None
    assert warning is not None and "unreadable" in warning and "moved aside" in warning
    assert "\n" not in warning
    [moved] = _aside(home)
    assert moved.read_bytes() == garbage
    _open().close()  # a fresh store takes its place


def test_damaged_pages_are_detected(home: Path) -> None:
    store = _open()
    for i in range(400):
        store.add(f"echo {i} " + "x" * 200, ())
    store.close()
    _fill(home)
    data = bytearray(_store_path(home).read_bytes())
    page = 4096
    assert len(data) > 6 * page
    data[2 * page: 5 * page] = os.urandom(3 * page)  # garbage over B-tree pages
    _store_path(home).write_bytes(bytes(data))
    store2, warning = open_trust_store()
    assert store2 is None
    assert warning is not None and "moved aside" in warning


def test_other_sqlite_database_is_not_taken_for_a_store(home: Path) -> None:
    _store_path(home).parent.mkdir(parents=True, mode=0o700)
    conn = sqlite3.connect(_store_path(home))
    conn.execute("CREATE TABLE notes (x)")
    conn.commit()
    conn.close()
    os.chmod(_store_path(home), 0o600)
    store, warning = open_trust_store()
    assert store is None and warning is not None and "not an attyguard trust store" in warning
    assert len(_aside(home)) == 1


def test_newer_schema_is_left_in_place(home: Path) -> None:
    _fill(home)
    conn = sqlite3.connect(_store_path(home))
    conn.execute("PRAGMA user_version = 99")
    conn.commit()
    conn.close()
    store, warning = open_trust_store()
    assert store is None and warning is not None and "newer" in warning
    assert _aside(home) == [] and _store_path(home).exists()


def test_lookup_never_raises_when_the_file_breaks_underneath(home: Path) -> None:
    store = _open()
    store.add("ls", ())
    store._conn.close()  # the worst case: the connection is gone
    assert store.lookup("ls") is False
    with pytest.raises(TrustError):
        store.add("pwd", ())


def test_export_import_round_trip_and_merge(home: Path, tmp_path: Path) -> None:
    store = _open()
    store.add("terraform destroy", ("cloud.destroy",))
    for _ in range(2):
        store.lookup("terraform destroy")
    rows = store.export_json()
    json.dumps(rows)  # plain JSON
    assert "terraform destroy" in rows[0]["preview"]
    store.clear()
    assert store.import_json(rows) == 1
    assert store.import_json(rows) == 1  # twice: merged, counts not doubled
    [entry] = store.entries()
    assert entry.use_count == 2 and entry.rule_ids == ("cloud.destroy",)
    assert store.lookup("terraform destroy")
    assert store.import_json([{"cmd": "kubectl delete ns dev", "rule_ids": ["k8s"]}]) == 1
    assert store.lookup("kubectl delete ns dev")
    store.close()


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("text", "JSON object"),
        ({"sha256": "abc"}, "64 hex"),
        ({"cmd": ""}, "non-empty"),
        ({"cmd": "a\x00b"}, "NUL"),
        ({"cmd": "ls", "rule_ids": "x"}, "rule_ids"),
        ({"cmd": "ls", "use_count": -1}, "use_count"),
        ({"cmd": "ls", "created": "yesterday"}, "ISO 8601"),
        ({"cmd": "ls", "sha256": "0" * 64}, "does not match"),
    ],
)
def test_import_rejects_bad_rows_and_writes_nothing(home: Path, row: object,
                                                    message: str) -> None:
    store = _open()
    good = {"cmd": "echo fine"}
    with pytest.raises(TrustError, match=message) as info:
        store.import_json([good, row])
    assert "entry 1" in str(info.value)
    assert store.entries() == []
    store.close()


# -- concurrency with real processes ----------------------------------------

_WORKER = """
import os, sys, time
from pathlib import Path
from attyguard.trust import open_trust_store
worker, count, go = int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
deadline = time.monotonic() + 30
while not go.exists():  # start together, so the writers really overlap
    if time.monotonic() > deadline:
        sys.exit("no go signal")
    time.sleep(0.001)
store, warning = open_trust_store()
if store is None:
    sys.exit(warning)
for i in range(count):
    line = f"worker {worker} line {i}"
    store.add(line, (f"r{worker}",))
    if not store.lookup(line):
        sys.exit(f"lost {line}")
    store.lookup("shared line")
store.close()
"""


def test_many_processes_write_at_once(home: Path, tmp_path: Path) -> None:
    # No store exists yet: the processes also race to create the schema.
    go = tmp_path / "go"
    workers, count = 4, 60
    env = {**os.environ, "ATTYGUARD_HOME": str(home)}
    procs = [
        subprocess.Popen([sys.executable, "-c", _WORKER, str(w), str(count), str(go)],
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for w in range(workers)
    ]
    go.touch()
    results = [p.communicate(timeout=120) for p in procs]
    for proc, (_out, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, err
    store = _open()
    entries = store.entries()
    assert len(entries) == workers * count
    assert all(e.use_count == 1 for e in entries)
    store.close()


def test_shared_line_counts_every_concurrent_use(home: Path, tmp_path: Path) -> None:
    seed = _open()
    seed.add("shared line", ())
    seed.close()
    go = tmp_path / "go"
    workers, count = 3, 40
    env = {**os.environ, "ATTYGUARD_HOME": str(home)}
    procs = [
        subprocess.Popen([sys.executable, "-c", _WORKER, str(w), str(count), str(go)],
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for w in range(workers)
    ]
    go.touch()
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    store = _open()
    entry = store.get("shared line")
    assert entry is not None and entry.use_count == workers * count
    store.close()


def test_open_without_create_leaves_no_files(home: Path) -> None:
    assert open_trust_store(create=False) == (None, None)
    assert not (home / "data" / STORE_NAME).exists()
    _open().close()
    store, warning = open_trust_store(create=False)
    assert store is not None and warning is None
    store.close()


_OPENER = """
import sys, time
from pathlib import Path
from attyguard.trust import open_trust_store
go = Path(sys.argv[1])
deadline = time.monotonic() + 30
while not go.exists():
    if time.monotonic() > deadline:
        sys.exit("no go signal")
    time.sleep(0.001)
store, warning = open_trust_store()
print("store" if store else "warning:" + str(warning))
"""


def test_shells_meeting_a_corrupt_store_at_once(home: Path, tmp_path: Path) -> None:
    path = _store_path(home)
    path.parent.mkdir(parents=True, mode=0o700)
    garbage = b"\x00garbage\xff" * 500
    path.write_bytes(garbage)
    os.chmod(path, 0o600)
    go = tmp_path / "go"
    env = {**os.environ, "ATTYGUARD_HOME": str(home)}
    procs = [subprocess.Popen([sys.executable, "-c", _OPENER, str(go)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(4)]
    go.touch()
    outputs = [p.communicate(timeout=120) for p in procs]
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0 and err == "", err
        assert out.startswith(("store", "warning:")), out
    kept = [p for p in _aside(home) if p.read_bytes() == garbage]
    assert len(kept) == 1  # the user's bytes are kept, once
