from __future__ import annotations

import multiprocessing
from pathlib import Path

from attyguard.shell.history import SharedFileHistory, encode_entry, parse_entries


def test_round_trip_multiline():
    data = b"".join(encode_entry(e) for e in ["ls", "for i in 1; do\n  echo $i\ndone", "+plus"])
    assert parse_entries(data.decode()) == ["ls", "for i in 1; do\n  echo $i\ndone", "+plus"]


def test_newest_first_and_deduplicated(tmp_path):
    h = SharedFileHistory(tmp_path / "h")
    for line in ["a", "b", "a", "c"]:
        h.store_string(line)
    assert list(SharedFileHistory(tmp_path / "h").load_history_strings()) == ["c", "a", "b"]


def _writer(path: str, tag: int) -> None:
    h = SharedFileHistory(Path(path))
    for i in range(100):
        h.store_string(f"shell{tag} line {i}")


def test_concurrent_shells_lose_nothing(tmp_path):
    path = tmp_path / "state" / "history"
    procs = [multiprocessing.Process(target=_writer, args=(str(path), n)) for n in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    entries = parse_entries(path.read_text())
    assert len(entries) == 400
    assert set(entries) == {f"shell{n} line {i}" for n in range(4) for i in range(100)}
    assert (path.stat().st_mode & 0o777) == 0o600


def test_trim_keeps_newest(tmp_path):
    path = tmp_path / "h"
    path.write_bytes(b"".join(encode_entry(f"e{i}") for i in range(30)))
    h = SharedFileHistory(path, max_entries=10)
    loaded = list(h.load_history_strings())
    assert loaded[0] == "e29" and len(loaded) == 10
    assert parse_entries(path.read_text()) == [f"e{i}" for i in range(20, 30)]
