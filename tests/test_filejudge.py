"""filejudge: bounded reads, judging a line's files with the real engine, pinning copies."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from attyguard.engine.classify import classify
from attyguard.engine.verdict import Action
from attyguard.filejudge import (
    FILES_RULE_ID,
    MAX_FILE,
    DirSnapshots,
    MemfdSnapshots,
    judge_files,
    read_bounded,
)


def _payload(marker: Path) -> str:
    # Touches a marker, then a reverse shell to a closed local port: safe to run by mistake.
    return f"touch {marker}; bash -i >& /dev/tcp/127.0.0.1/9 0>&1\n"


def _judge(line: str, tmp_path: Path, snapshots: object = None) -> object:
    return judge_files(line, classify, snapshots=snapshots,  # type: ignore[arg-type]
                       cwd=str(tmp_path), home=str(tmp_path), search_path="")


def test_read_bounded_regular(tmp_path: Path) -> None:
    f = tmp_path / "a"
    f.write_bytes(b"echo hi\n")
    assert read_bounded(str(f)) == (b"echo hi\n", None)
    assert read_bounded(str(tmp_path / "missing")) == (None, None)


def test_read_bounded_refuses_large_and_fifo(tmp_path: Path) -> None:
    big = tmp_path / "big"
    big.write_bytes(b"#" * (MAX_FILE + 1))
    data, problem = read_bounded(str(big))
    assert data is None and problem is not None and "larger than" in problem
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    data, problem = read_bounded(str(fifo))  # must not block (no writer)
    assert data is None and problem is not None and "not a regular file" in problem


def test_sourced_file_is_judged_with_file_and_line(tmp_path: Path) -> None:
    evil = tmp_path / "evil.sh"
    evil.write_text("echo one\necho two\n" + _payload(tmp_path / "m"))
    judgement = _judge(f"source {evil}", tmp_path)
    assert judgement.verdict is not None and judgement.verdict.action is Action.BLOCK
    assert f"{evil}:3" in judgement.verdict.reason


def test_nested_source_is_followed(tmp_path: Path) -> None:
    (tmp_path / "inner.sh").write_text(_payload(tmp_path / "m"))
    (tmp_path / "outer.sh").write_text(f". {tmp_path}/inner.sh\n")
    judgement = _judge("bash ./outer.sh", tmp_path)
    assert judgement.verdict.action is Action.BLOCK


def test_quiet_file_allows_and_line_is_pinned(tmp_path: Path) -> None:
    good = tmp_path / "env.sh"
    good.write_text("export PATH=$HOME/bin:$PATH\nalias ll='ls -l'\n")
    snaps = DirSnapshots(str(tmp_path))
    judgement = _judge("source ~/env.sh && ls", tmp_path, snaps)
    assert judgement.verdict.action is Action.ALLOW
    assert judgement.line == f"source {tmp_path}/src1 && ls"
    assert (tmp_path / "src1").read_bytes() == good.read_bytes()


def test_pinned_copy_cannot_change_after_judging(tmp_path: Path) -> None:
    good = tmp_path / "env.sh"
    good.write_text("echo fine\n")
    snaps = MemfdSnapshots()
    try:
        judgement = _judge(f"bash -c '. {good}'", tmp_path, snaps)
        assert judgement.verdict.action is Action.ALLOW
        (fd,) = snaps.fds
        assert judgement.line == f"bash -c '. /dev/fd/{fd}'"
        good.write_text(_payload(tmp_path / "m"))  # the file changes after judging
        assert os.pread(fd, 100, 0) == b"echo fine\n"
        # Sealed: even a writable reopen through /proc cannot alter it.
        try:
            w = os.open(f"/proc/self/fd/{fd}", os.O_WRONLY)
        except OSError:
            pass
        else:
            try:
                try:
                    os.write(w, b"x")
                    changed = True
                except OSError:
                    changed = False
                assert not changed
            finally:
                os.close(w)
    finally:
        for fd in snaps.fds:
            os.close(fd)


def test_unjudgeable_file_is_a_warn(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    judgement = _judge(f"source {fifo}", tmp_path)
    assert judgement.verdict.action is Action.WARN
    assert judgement.verdict.rules[0].rule_id == FILES_RULE_ID


def test_trusted_file_is_not_judged(tmp_path: Path) -> None:
    evil = tmp_path / "evil.sh"
    evil.write_text(_payload(tmp_path / "m"))
    content = evil.read_text()
    judgement = judge_files(f". {evil}", classify, snapshots=None, cwd=str(tmp_path),
                            home=str(tmp_path), trusted=lambda text: text == content)
    assert judgement.verdict.action is Action.ALLOW
    assert judgement.files[0].trusted


def test_line_without_files_is_untouched(tmp_path: Path) -> None:
    judgement = _judge("ls -la | grep x", tmp_path, DirSnapshots(str(tmp_path)))
    assert judgement.verdict is None and judgement.line == "ls -la | grep x"


def test_read_does_not_hang_on_fifo_with_writer(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    done = threading.Event()

    def writer() -> None:
        try:
            fd = os.open(fifo, os.O_WRONLY)
            os.write(fd, b"echo hi\n")
            os.close(fd)
        finally:
            done.set()

    t = threading.Thread(target=writer, daemon=True)
    t.start()
    data, problem = read_bounded(str(fifo))
    assert data is None and problem is not None
    # Release the writer whatever happened.
    fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    assert done.wait(5)
    os.close(fd)


def test_cd_before_a_relative_file_is_followed(tmp_path: Path) -> None:
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "x.sh").write_text(_payload(tmp_path / "m"))
    (tmp_path / "x.sh").write_text("echo harmless\n")
    judgement = _judge("cd sub && . ./x.sh", tmp_path)
    assert judgement.verdict.action is Action.BLOCK


def test_cd_that_cannot_be_followed_makes_a_relative_file_unjudgeable(tmp_path: Path) -> None:
    (tmp_path / "x.sh").write_text("echo harmless\n")
    judgement = _judge('cd "$d" && . ./x.sh', tmp_path)
    assert judgement.verdict.action is Action.WARN
    assert judgement.verdict.rules[0].rule_id == FILES_RULE_ID


def test_sourcing_the_users_bashrc_only_refuses_blocks(tmp_path: Path) -> None:
    (tmp_path / ".bashrc").write_text("HISTCONTROL=ignoreboth\nHISTFILE=/dev/null\n")
    quiet = _judge("source ~/.bashrc", tmp_path)
    assert quiet.verdict.action is Action.ALLOW
    (tmp_path / ".bashrc").write_text(_payload(tmp_path / "m"))
    assert _judge("source ~/.bashrc", tmp_path).verdict.action is Action.BLOCK
    # Elsewhere, the same warning is asked about.
    (tmp_path / "other.sh").write_text("HISTFILE=/dev/null\n")
    assert _judge("source ./other.sh", tmp_path).verdict.action is Action.WARN
