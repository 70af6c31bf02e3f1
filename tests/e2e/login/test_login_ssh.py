"""The shell under test as a real account's login shell, reached through a real sshd.

sshd runs `SHELL -c 'CMD'` for `ssh host CMD`, for scp's and rsync's remote
halves and for the sftp subsystem, and `-SHELL` (a login shell) for an
interactive login: the paths that break when a login shell is not exactly
bash-compatible (exit statuses, binary stdin/stdout passthrough, no prompt
noise on a pipe).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from login_fixtures import PROFILE_MARK, PROMPT, Sshd, Tmux, engine_verdict

pytestmark = [pytest.mark.e2e, pytest.mark.root]

# Bytes no line-oriented or text-mangling layer would pass through unchanged:
# every byte value, CR/LF pairs, NULs, an escape sequence, no final newline.
PAYLOAD = bytes(range(256)) * 64 + b"\r\n\x00\x1b[31mred\x1b[0m\r" + os.urandom(200_000)


def test_ssh_command_output(sshd: Sshd) -> None:
    done = sshd.ssh("echo $((6*7))")
    assert (done.returncode, done.stdout, done.stderr) == (0, b"42\n", b""), sshd.explain(done)


def test_ssh_command_exit_status(sshd: Sshd) -> None:
    done = sshd.ssh("exit 7")
    assert done.returncode == 7, sshd.explain(done)


def test_ssh_command_stdin_passthrough(sshd: Sshd) -> None:
    done = sshd.ssh("sha256sum", input=PAYLOAD)
    want = hashlib.sha256(PAYLOAD).hexdigest().encode()
    assert done.returncode == 0 and done.stdout.startswith(want), sshd.explain(done)


def test_ssh_commands_on_stdin_without_a_tty(sshd: Sshd) -> None:
    # `ssh host < script`: sshd starts the login shell with no command and a pipe
    # for stdin; the shell must read and run the commands, not show a prompt.
    done = sshd.ssh_stdin(b"echo $((6*7))\nexit 5\n")
    assert (done.returncode, done.stdout) == (5, b"42\n"), sshd.explain(done)


def test_ssh_command_with_a_forced_tty(sshd: Sshd) -> None:
    # `ssh -tt host CMD`: a command with a terminal is still not interactive.
    done = subprocess.run(
        [*sshd.ssh_argv("-tt"), "echo $((6*7)); exit 3"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=30,
    )
    assert (done.returncode, done.stdout) == (3, b"42\r\n"), sshd.explain(done)


def test_git_clone_and_push_over_ssh(sshd: Sshd, tmp_path: Path) -> None:
    # git runs `git-upload-pack '<path>'` / `git-receive-pack '<path>'` through `SHELL -c`.
    if shutil.which("git") is None:
        pytest.skip("git is not installed; contrib/dev.sh installs it")
    init = sshd.ssh("git init -q --bare -b main repo.git")
    assert init.returncode == 0, sshd.explain(init)
    env = {
        **os.environ,
        "GIT_SSH_COMMAND": sshd.ssh_command_for_rsync(),
        "GIT_CONFIG_NOSYSTEM": "1",
        "HOME": str(tmp_path),
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.invalid",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.invalid",
    }
    url = f"ssh://{sshd.target}:{sshd.port}/~/repo.git"

    def git(*args: str, cwd: Path = tmp_path) -> None:
        done = subprocess.run(
            ["git", *args], cwd=cwd, env=env, capture_output=True, stdin=subprocess.DEVNULL,
            timeout=60,
        )  # fmt: skip
        assert done.returncode == 0, sshd.explain(done)

    git("clone", "-q", url, "work")
    work = tmp_path / "work"
    (work / "f.bin").write_bytes(PAYLOAD)
    git("add", "f.bin", cwd=work)
    git("commit", "-qm", "payload", cwd=work)
    git("push", "-q", "origin", "HEAD:main", cwd=work)
    git("clone", "-q", url, "again")
    assert (tmp_path / "again" / "f.bin").read_bytes() == PAYLOAD


# Decodes to `echo decoded-ran`: harmless, and visible on stdout if it ever runs.
DECODED_TO_SHELL = "echo ZWNobyBkZWNvZGVkLXJhbgo= | base64 -d | sh"
# A reverse shell to a closed local port: refused by the engine, harmless if it ever ran.
REVERSE_SHELL = "bash -i >& /dev/tcp/127.0.0.1/9 0>&1"


def _need_verdict(sshd: Sshd, probe: str, action: str) -> None:
    """Skip for the control shell; for attyguard, the engine must say `action` for `probe`.

    The rules ship with the product, so a different verdict is a failure, not a skip.
    """
    if sshd.user.shell.name != "attyguard":
        pytest.skip("the control shell (bash) guards nothing")
    said = engine_verdict(probe)
    assert said.action == action, f"attyguard check `{probe}`: {said.text}"


@pytest.mark.parametrize(
    ("line", "probe"),
    [(REVERSE_SHELL, REVERSE_SHELL), (DECODED_TO_SHELL, DECODED_TO_SHELL)],
    ids=["reverse-shell", "decoded-into-sh"],
)
def test_ssh_blocked_command_is_refused_without_running(sshd: Sshd, line: str, probe: str) -> None:
    _need_verdict(sshd, probe, "block")
    marker = sshd.user.home / "ran-before-block"
    done = sshd.ssh(f"touch {marker}; {line}")
    assert done.returncode == 126, sshd.explain(done)
    assert not marker.exists(), "the blocked line ran (its first command left its marker)"
    assert done.stdout == b"", sshd.explain(done)
    assert len(done.stderr.decode(errors="replace").strip().splitlines()) == 1, sshd.explain(done)


def test_ssh_warned_command_runs_after_one_line(sshd: Sshd) -> None:
    # Non-interactive default (shell.noninteractive_warn = "run"): say it once, then run.
    line = "curl -s file:///dev/null | sh"  # a download piped to a shell, with no network
    _need_verdict(sshd, line, "warn")
    marker = sshd.user.home / "ran-after-warn"
    done = sshd.ssh(f"touch {marker}; {line}; echo done")
    assert (done.returncode, done.stdout) == (0, b"done\n"), sshd.explain(done)
    assert marker.exists(), "the warned line did not run"
    assert len(done.stderr.decode(errors="replace").strip().splitlines()) == 1, sshd.explain(done)


def _run(argv: list[str], sshd: Sshd) -> None:
    done = subprocess.run(argv, capture_output=True, stdin=subprocess.DEVNULL, timeout=60)
    assert done.returncode == 0, sshd.explain(done)


@pytest.mark.parametrize("protocol", ["sftp", "scp"], ids=["scp-sftp", "scp-legacy"])
def test_scp_both_ways(sshd: Sshd, tmp_path: Path, protocol: str) -> None:
    # Since OpenSSH 9 scp speaks SFTP (the sftp-server subsystem, run through
    # `SHELL -c`); -O selects the legacy protocol (`SHELL -c 'scp -t …'`).
    mode = ["-O"] if protocol == "scp" else []
    scp = ["scp", *sshd.client_opts, "-P", str(sshd.port), *mode]
    local = tmp_path / "up.bin"
    local.write_bytes(PAYLOAD)
    remote = f"{sshd.target}:up-{protocol}.bin"
    _run([*scp, str(local), remote], sshd)
    assert (sshd.user.home / f"up-{protocol}.bin").read_bytes() == PAYLOAD

    back = tmp_path / "down.bin"
    _run([*scp, remote, str(back)], sshd)
    assert back.read_bytes() == PAYLOAD


def test_rsync_both_ways(sshd: Sshd, tmp_path: Path) -> None:
    if shutil.which("rsync") is None:
        pytest.skip("rsync is not installed; contrib/dev.sh installs it")
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "a.bin").write_bytes(PAYLOAD)
    (tree / "sub" / "b.txt").write_text("second file\n")
    rsync = ["rsync", "-a", "-e", sshd.ssh_command_for_rsync()]
    _run([*rsync, f"{tree}/", f"{sshd.target}:tree/"], sshd)
    remote_tree = sshd.user.home / "tree"
    assert (remote_tree / "a.bin").read_bytes() == PAYLOAD
    assert (remote_tree / "sub" / "b.txt").read_text() == "second file\n"

    back = tmp_path / "back"
    _run([*rsync, f"{sshd.target}:tree/", f"{back}/"], sshd)
    assert (back / "a.bin").read_bytes() == PAYLOAD
    assert (back / "sub" / "b.txt").read_text() == "second file\n"


def test_ssh_interactive_login(sshd: Sshd, tmux: Tmux) -> None:
    tmux.start(sshd.ssh_argv("-tt"))
    tmux.wait_screen(lambda s: PROMPT.rstrip() in s, "the login prompt over ssh")
    tmux.send('echo hi; echo "$AGTEST_PROFILE"')
    lines = tmux.wait_screen(lambda s: "hi" in s.splitlines(), "the output of `echo hi`")
    assert PROFILE_MARK in lines.splitlines(), "not a login shell: no ~/.profile\n" + tmux.explain()
    tmux.send("exit")
    status = tmux.wait_exit("the ssh session to end after `exit`")
    assert status == "0", tmux.screen() + "\n" + sshd.log()[-3000:]


def test_ssh_interactive_login_refuses_a_blocked_line(sshd: Sshd, tmux: Tmux) -> None:
    _need_verdict(sshd, DECODED_TO_SHELL, "block")
    marker = sshd.user.home / "ran-interactive"
    tmux.start(sshd.ssh_argv("-tt"))
    tmux.wait_screen(lambda s: PROMPT.rstrip() in s, "the login prompt over ssh")
    tmux.send(f"touch {marker}; {DECODED_TO_SHELL}")
    tmux.wait_screen(lambda s: "REFUSED" in s, "the REFUSED line")
    assert not marker.exists(), "the refused line ran\n" + tmux.explain()
    tmux.send("echo still-$((1+1))")
    tmux.wait_screen(lambda s: "still-2" in s.splitlines(), "the shell to go on after a refusal")
    tmux.send("exit")
    status = tmux.wait_exit("the ssh session to end after `exit`")
    assert status == "0", tmux.explain()
