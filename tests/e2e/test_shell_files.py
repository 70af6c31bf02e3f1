"""End-to-end in a real pty (tmux): the interactive shell judges the files a line hands
to a shell (issue 9, family 3), and an unverified trust import is asked about, never run
silently (family 10). Payloads only touch a marker, then dial a closed local port."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from attyguard.trust import line_key
from tests.e2e.harness import run

pytestmark = pytest.mark.e2e


def payload(marker: Path) -> str:
    return f"touch {marker}; bash -i >& /dev/tcp/127.0.0.1/9 0>&1"


@pytest.mark.parametrize("line", ["source ./evil.sh", ". ~/evil.sh", "bash evil.sh",
                                  'bash -c "$(cat evil.sh)"', "cat evil.sh | sh"])
def test_file_handed_to_a_shell_is_refused(shell, ag_home, tmp_path, line):
    marker = tmp_path / "marker"
    (ag_home / "evil.sh").write_text(f"echo setting up\n{payload(marker)}\n")
    t = shell(cols=300)  # (the REFUSED line names the file by its full path)
    t.send_line(line)
    t.wait_for(r"^REFUSED — .*evil\.sh:2\)$")
    t.send_line("echo still-here")
    t.wait_for(r"^still-here$")
    assert not marker.exists()


def test_quiet_file_is_sourced_from_the_judged_copy(shell, ag_home):
    (ag_home / "env.sh").write_text("export FROM_FILE=yes-1\nalias hello='echo hi'\n")
    t = shell()
    t.send_line('. ./env.sh && echo "from=$FROM_FILE"')
    t.wait_for(r"^from=yes-1\n\[~\]\$$")
    t.send_line("hello")
    t.wait_for(r"^hi\n\[~\]\$$")
    assert "REFUSED" not in t.screen() and "[y]es" not in t.screen()


def test_unverified_import_asks_instead_of_running(shell, attyguard_bin, ag_env, tmp_path):
    marker = tmp_path / "marker"
    line = payload(marker)
    exported = tmp_path / "export.json"
    exported.write_text(json.dumps({"format": "attyguard-trust", "version": 1, "entries": [
        {"sha256": line_key(line), "preview": "ls -la ***"}]}))
    p = run([attyguard_bin, "trust", "import", str(exported)], env=ag_env)
    assert p.returncode == 0, p
    listed = run([attyguard_bin, "trust", "list"], env=ag_env)
    assert b"unverified" in listed.stdout, listed
    t = shell()
    t.send_line(line)
    t.wait_for(r"\[y\]es / \[t\]rust / cancel\?")
    t.send_keys("n")
    t.wait_for(r"^\[~\]\$ touch ")
    assert not marker.exists()


def test_file_too_large_to_judge_is_asked_about(shell, ag_home, tmp_path):
    marker = tmp_path / "marker"
    big = ag_home / "big.sh"
    big.write_text("# filler line\n" * 80_000 + f"touch {marker}\n")  # > 1 MiB
    t = shell()
    t.send_line("source ./big.sh")
    t.wait_for(r"\[y\]es / \[t\]rust / cancel\?")
    t.send_keys("n")
    t.wait_for(r"^\[~\]\$ source \./big\.sh$")
    assert not marker.exists()


def test_sourcing_bashrc_again_is_quiet(shell, ag_home):
    rc = ag_home / ".bashrc"
    rc.write_text(rc.read_text() + "HISTCONTROL=ignoreboth\nalias again='echo again-ok'\n")
    t = shell()
    t.send_line("source ~/.bashrc && again")
    t.wait_for(r"^again-ok\n\[~\]\$$")
    assert "[y]es" not in t.screen() and "REFUSED" not in t.screen()
