"""End-to-end: what a person who uses attyguard as their login shell meets on day one (issue 12).

Output without a final newline, prompts rewritten by tools (venv, conda…),
a bad style in the config, bash dying under a background job, the way out
of a Critical lock, signals that end the shell, a history file that cannot
be written, a config path that is not a regular file. Real binary, real
tmux, real bash; every wait polls until a deadline.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.daemon_harness import RunningDaemon, remove_tmpdirs, short_tmpdir
from tests.e2e.conftest import PROMPT_RE
from tests.e2e.harness import Tmux, run

pytestmark = pytest.mark.e2e

DEBIAN_PS1 = (r"'\[\e]0;\u@\h: \w\a\]${debian_chroot:+($debian_chroot)}"
              r"\[\033[01;32m\]\u@\h\[\033[00m\]:\[\033[01;34m\]\w\[\033[00m\]\$ '")


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.02)
    return False


# --- 1. output without a final newline -------------------------------------------------


@pytest.mark.parametrize("command, shown", [
    ("printf 'no-newline-builtin'", "no-newline-builtin"),
    ("cat ~/partial.json", '{"a": 1}'),
    ("printf '日本語の行'", "日本語の行"),
])
def test_output_without_final_newline_is_kept(shell, ag_home, command, shown):
    (ag_home / "partial.json").write_text('{"a": 1}')
    t = shell()
    t.send_line(command)
    # The partial line stays, the prompt is on a line of its own below it.
    screen = t.wait_for(rf"^{re.escape(shown)}.*\n\[~\]\$$")
    # ... and typing at that prompt does not draw over it.
    t.send_text("echo x")
    screen = t.wait_for(r"^\[~\]\$ echo x$")
    assert re.search(rf"^{re.escape(shown)}", screen, re.MULTILINE), screen
    t.send_keys("Enter")
    t.wait_for(r"^x\n\[~\]\$$")
    assert re.search(rf"^{re.escape(shown)}", t.screen(), re.MULTILINE), t.screen()


def test_partial_output_with_debian_colour_prompt(shell, ag_home, ag_env):
    (ag_home / ".bashrc").write_text(f"PS1={DEBIAN_PS1}\n")
    (ag_home / "partial.json").write_text('{"a": 1}')
    t = shell(wait_prompt=False)
    t.wait_for(r":~[#$]$")
    t.send_line("cat partial.json")
    t.wait_for(r'^\{"a": 1\}.*\n\S+@\S+:~[#$]$')
    t.send_text("true")
    screen = t.wait_for(r"^\S+@\S+:~[#$] true$")
    assert re.search(r'^\{"a": 1\}', screen, re.MULTILINE), screen


def test_partial_line_exactly_at_the_right_margin(shell):
    t = shell(cols=60)
    t.send_line("printf '%060d' 7")
    screen = t.wait_for(r"^0{59}7\n\[~\]\$$")
    assert "0" * 59 + "7" in screen


# --- 2. a PS1 rewritten by a tool ----------------------------------------------------


def test_venv_style_prompt_prefix_save_and_restore(shell, ag_home):
    venv = ag_home / "venv" / "bin"
    venv.mkdir(parents=True)
    # The shape of virtualenv's activate (and conda's, nvm's…): save, prefix, restore.
    (venv / "activate").write_text(
        '_OLD_PS1="${PS1:-}"\nPS1="(venv) ${PS1:-}"\n'
        'deactivate() { PS1="$_OLD_PS1"; unset _OLD_PS1; unset -f deactivate; }\n')
    t = shell()
    t.send_line(". venv/bin/activate")
    t.wait_for(r"^\(venv\) \[~\]\$$")
    t.send_line("cd /tmp")
    t.wait_for(r"^\(venv\) \[/tmp\]\$$")
    t.send_line("deactivate")
    t.wait_for(r"^\[/tmp\]\$$")
    t.send_line("PS1=\"$PS1-x \"")  # a suffix, typed at the prompt
    t.wait_for(r"^\[/tmp\]\$ -x$")


def _plain_bash_shows(ps1_lines: str) -> list[str]:
    """What plain bash prints for `echo "<$PS1>"; declare -p PS1` after `ps1_lines`."""
    p = run(["/bin/bash", "--norc", "--noprofile", "-c",
             ps1_lines + '\necho "<$PS1>"; declare -p PS1'])
    assert p.returncode == 0, p
    return p.stdout.decode().splitlines()


def test_echo_ps1_shows_the_users_prompt_around_a_venv(shell, ag_home):
    """`$PS1` is what the user (or the tool) set, byte for byte as plain bash
    shows it, before, inside and after a venv-style activate/deactivate."""
    venv = ag_home / "venv" / "bin"
    venv.mkdir(parents=True)
    (venv / "activate").write_text(
        '_OLD_PS1="${PS1:-}"\nPS1="(venv) ${PS1:-}"\n'
        'deactivate() { PS1="$_OLD_PS1"; unset _OLD_PS1; unset -f deactivate; }\n')
    user = "PS1='[\\w]$ '"  # as tests/e2e/conftest.py's ~/.bashrc sets it
    t = shell()
    ask = 'echo "<$PS1>"; declare -p PS1'

    def shows(expected: list[str], prompt: str) -> None:
        t.send_line("clear")
        t.wait_for(rf"^{re.escape(prompt)}$")
        t.send_line(ask)
        t.wait_for("^" + "\n".join(map(re.escape, [*expected, prompt])) + "$")

    shows(_plain_bash_shows(user), "[~]$")
    t.send_line(". venv/bin/activate")
    t.wait_for(r"^\(venv\) \[~\]\$$")
    shows(_plain_bash_shows(user + '\nPS1="(venv) ${PS1:-}"'), "(venv) [~]$")
    t.send_line("deactivate")
    t.wait_for(r"^\[~\]\$$")
    shows(_plain_bash_shows(user), "[~]$")
    # A prompt set at the prompt, and an exported one keeps its attribute.
    t.send_line("export PS1='ag> '")
    t.wait_for(r"^ag>$")
    shows(_plain_bash_shows("export PS1='ag> '"), "ag>")


# --- 3. a style the terminal library does not know ---------------------------------------


def test_bad_style_in_config_is_reported_and_the_default_used(shell, ag_env):
    config = Path(ag_env["ATTYGUARD_HOME"]) / "config" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text('[ui]\nrefused_style = "bold notacolor"\n')
    t = shell(wait_prompt=False, cols=250)
    t.wait_for(r"config\.toml:2: ui\.refused_style: .*notacolor.*using 'bold red'")
    t.wait_for(PROMPT_RE)
    t.send_line("echo aGVsbG8= | base64 -d | sh")
    t.wait_for(r"^REFUSED — .+\n\[~\]\$$")
    t.send_line("echo still-here")
    t.wait_for(r"^still-here\n\[~\]\$$")
    assert "Traceback" not in t.screen(history=True)


# --- 4. bash gone while a background job holds the terminal --------------------------------


def test_bash_killed_with_background_job_holding_the_terminal(shell, ag_home):
    t = shell()
    t.send_line("sleep 300 & echo $! > ~/job.pid; echo job-started")
    t.wait_for(r"^job-started\n\[~\]\$$")
    job = int((ag_home / "job.pid").read_text())
    try:
        t.send_line("kill -9 $$")
        status = t.wait_exit(10)
        assert status == 137, t.screen()
        assert re.search(r"attyguard: bash .*killed", t.screen()), t.screen()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(job, signal.SIGKILL)


# --- 5. the way out of a Critical lock ---------------------------------------------------


@pytest.fixture
def daemon_shell(shell: Callable[..., Tmux], ag_env: dict[str, str]
                 ) -> Iterator[Callable[[], tuple[Tmux, RunningDaemon]]]:
    daemons: list[RunningDaemon] = []

    def make(*args: str) -> tuple[Tmux, RunningDaemon]:
        daemon = RunningDaemon(short_tmpdir()).start()
        daemons.append(daemon)
        config = Path(ag_env["ATTYGUARD_HOME"]) / "config" / "config.toml"
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_text(f'[guard]\ndaemon_socket_path = "{daemon.socket}"\n'
                          "daemon_timeout_ms = 500\n")
        return shell(*args, cols=200), daemon

    yield make
    for daemon in daemons:
        daemon.stop()
    remove_tmpdirs()


def _shell_pid(t: Tmux) -> int:
    t.send_line("echo shell-pid=$PPID")
    match = re.search(r"^shell-pid=(\d+)$", t.wait_for(r"^shell-pid=\d+\n"), re.MULTILINE)
    assert match is not None
    return int(match.group(1))


def _mark_critical(t: Tmux, daemon: RunningDaemon) -> int:
    pid = _shell_pid(t)
    reply = daemon.call("mark", pid=pid, level="critical", reason="marked by the test")
    assert reply.get("ok"), reply
    return pid


def test_exit_works_after_critical_and_the_message_says_how_to_clear(daemon_shell):
    t, daemon = daemon_shell()
    pid = _mark_critical(t, daemon)
    t.send_line("echo refused-now")
    screen = t.wait_for(r"^REFUSED — this process tree is marked Critical.*\n(.*\n)*\[~\]\$$")
    assert f"attyguard daemon clear --pid {pid}" in screen, screen
    t.send_line("exit 4")
    assert t.wait_exit(10) == 4, t.screen()


def test_logout_works_after_critical(daemon_shell, ag_home):
    # (bash's `logout` is for login shells; elsewhere it says so and stays, as bash does.)
    (ag_home / ".bash_profile").write_text(". ~/.bashrc\n")
    t, daemon = daemon_shell("-l")
    _mark_critical(t, daemon)
    t.send_line("logout")
    assert t.wait_exit(10) == 0, t.screen()


def test_daemon_clear_command_lifts_the_mark(daemon_shell, attyguard_bin, ag_env):
    if os.geteuid() != 0:
        pytest.skip("only root may clear a mark")
    t, daemon = daemon_shell()
    pid = _mark_critical(t, daemon)
    t.send_line("echo refused-now")
    t.wait_for(r"^REFUSED — this process tree is marked Critical")
    done = run([attyguard_bin, "daemon", "clear", "--socket", daemon.socket, "--pid", str(pid)],
               env=ag_env)
    assert done.returncode == 0, done
    assert f"pid {pid}: cleared".encode() in done.stdout, done
    t.send_line("echo after-clear")
    t.wait_for(r"^after-clear\n\[~\]\$$")
    again = run([attyguard_bin, "daemon", "clear", "--socket", daemon.socket, "--pid", str(pid)],
                env=ag_env)
    assert again.returncode == 0 and b"not marked" in again.stdout, again


# --- 11. signals, history, config paths ---------------------------------------------------


def _session_dirs(base: Path) -> set[str]:
    return {p.name for p in base.glob("attyguard-*")}


@pytest.mark.parametrize("signum", [signal.SIGHUP, signal.SIGTERM])
def test_session_dir_removed_after_signal(shell, ag_env, tmp_path, signum):
    base = tmp_path / "rt"
    base.mkdir(mode=0o700)
    env = dict(ag_env, XDG_RUNTIME_DIR=str(base))
    t = shell(env=env)
    assert len(_session_dirs(base)) == 1
    pid = _shell_pid(t)
    t.send_line("echo $$ > ~/bash.pid; echo pid-saved")
    t.wait_for(r"^pid-saved\n\[~\]\$$")
    bash_pid = int((Path(ag_env["HOME"]) / "bash.pid").read_text())
    os.kill(pid, signum)
    assert _wait_gone(pid, 10), t.screen()
    assert _wait_gone(bash_pid, 10), "bash outlived attyguard"
    assert _session_dirs(base) == set(), os.listdir(base)


def test_history_write_failure_is_said_once(shell, ag_env):
    state = Path(ag_env["ATTYGUARD_HOME"]) / "state"
    state.mkdir(parents=True)
    # A full disk: every write fails with ENOSPC.
    (state / "history").symlink_to("/dev/full")
    t = shell()
    t.send_line("echo one")
    t.wait_for(r"^one\n")
    t.send_line("echo two")
    screen = t.wait_for(r"^two\n\[~\]\$$")
    found = re.findall(r"attyguard: history: cannot save", t.screen(history=True))
    assert len(found) == 1, t.screen(history=True)
    assert screen


@pytest.mark.parametrize("kind", ["fifo", "zero"])
def test_config_path_not_a_regular_file(attyguard_bin, ag_env, kind):
    config = Path(ag_env["ATTYGUARD_HOME"]) / "config" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    if kind == "fifo":
        os.mkfifo(config)
    else:
        config.symlink_to("/dev/zero")
    try:
        done = run([attyguard_bin, "-c", "echo ran"], env=ag_env, timeout=20)
    except subprocess.TimeoutExpired:
        pytest.fail("attyguard blocked on a config path that is not a regular file")
    assert done.stdout == b"ran\n", done
    assert b"not a regular file" in done.stderr, done
    assert b"Traceback" not in done.stderr, done


# --- 7. Ctrl-C on a typed line ------------------------------------------------------------


def test_ctrl_c_on_a_typed_line_shows_caret_c_and_sets_status_130(shell):
    t = shell()
    t.send_line("echo before")
    t.wait_for(r"^before\n\[~\]\$$")
    t.send_text("echo never-ran")
    t.wait_for(r"\$ echo never-ran$")
    t.send_keys("C-c")
    t.wait_for(r"^\[~\]\$ echo never-ran\^C\n\[~\]\$$")
    t.send_line("echo status=$?")
    t.wait_for(r"^status=130\n\[~\]\$$")
    t.send_line("history 3")
    screen = t.wait_for(r"^\s+\d+\s+history 3\n\[~\]\$$")
    assert "__ag_" not in screen and "never-ran" not in screen.split("status=130")[-1], screen


# --- 10. a login shell is bash's own login shell --------------------------------------------


def test_login_shell_is_a_real_bash_login_shell(shell, ag_home):
    (ag_home / ".bash_profile").write_text(
        "PROMPT_COMMAND='history -a'\n. ~/.bashrc\necho profile-read\n")
    t = shell("-l")
    t.wait_for(r"^profile-read$")
    t.send_line('echo "zero=$0"; shopt login_shell; echo "pc=${PROMPT_COMMAND[*]}"')
    screen = t.wait_for(r"^pc=.*\n\[~\]\$$")
    assert re.search(r"^zero=-bash$", screen, re.MULTILINE), screen
    assert re.search(r"^login_shell\s+on$", screen, re.MULTILINE), screen
    # The profile's own PROMPT_COMMAND is kept, attyguard's start-up command is not.
    assert re.search(r"^pc=__ag_pre history -a __ag_post$", screen, re.MULTILINE), screen
    t.send_line("logout")
    assert t.wait_exit(10) == 0, t.screen()


def test_ctrl_r_movement_accepts_for_editing_and_ctrl_g_restores(shell):
    t = shell()
    t.send_line("echo searched-entry-1")
    t.wait_for(r"^searched-entry-1\n\[~\]\$$")
    # Right (like End, Ctrl-A, Ctrl-E): the match is taken into the line to edit, not run.
    t.send_keys("C-r")
    t.send_text("searched-en")
    t.wait_for(r"echo searched-entry-1")
    t.send_keys("End")
    t.send_text(" more")
    t.wait_for(r"^\[~\]\$ echo searched-entry-1 more$")
    t.send_keys("Enter")
    t.wait_for(r"^searched-entry-1 more\n\[~\]\$$")
    # Ctrl-G: the search is abandoned and the line typed before it comes back.
    t.send_text("echo typed-before")
    t.send_keys("C-r")
    t.send_text("searched-en")
    t.wait_for(r"searched-entry-1 more")
    t.send_keys("C-g")
    t.wait_for(r"^\[~\]\$ echo typed-before$")
    t.send_keys("Enter")
    t.wait_for(r"^typed-before\n\[~\]\$$")


def test_ctrl_x_ctrl_e_edits_the_line_and_what_was_written_is_classified(shell, ag_home, ag_env):
    editor = ag_home / "fake-editor"
    # An "editor" that replaces the line with the text in ~/next-edit.
    editor.write_text('#!/bin/sh\ncat "$HOME/next-edit" > "$1"\n')
    editor.chmod(0o755)
    env = dict(ag_env, VISUAL=str(editor))
    t = shell(env=env)
    (ag_home / "next-edit").write_text("echo from-editor-$((40+2))\n")
    t.send_text("echo typed")
    t.send_keys("C-x", "C-e")
    t.wait_for(r"^from-editor-42\n(.*\n)*\[~\]\$$")
    (ag_home / "next-edit").write_text("echo aGVsbG8= | base64 -d | sh\n")
    t.send_text("echo typed-again")
    t.send_keys("C-x", "C-e")
    t.wait_for(r"^REFUSED — .+\n\[~\]\$$")
    assert not re.search(r"^hello$", t.screen(), re.MULTILINE), t.screen()


def test_tab_prefix_then_sorted_listing_without_a_status_bar_copy_above(shell, ag_home):
    for name in ("zz-beta-two", "zz-beta-one", "zz-beta-three"):
        (ag_home / name).write_text("")
    t = shell()
    t.send_text("ls zz-b")
    t.send_keys("Tab")
    t.wait_for(r"^\[~\]\$ ls zz-beta-$")
    t.send_keys("Tab")
    # Sorted as readline sorts; the frame left above the listing has no status bar.
    t.wait_for(r"^\[~\]\$ ls zz-beta-\nzz-beta-one\s+zz-beta-three\s+zz-beta-two\n"
               r"\[~\]\$ ls zz-beta-$", history=True)


def test_a_listing_longer_than_the_screen_leaves_no_status_bar_copy(shell, ag_home):
    # 60 names in columns of 4 (80 columns) make 15 rows: more than a 10-row
    # screen, so the listing scrolls (a page at a time; asked first only from
    # 100 names on, as readline asks).
    names = [f"zz-long-{i:02d}-name" for i in range(60)]
    for name in names:
        (ag_home / name).write_text("")
    t = shell(cols=80, rows=10)
    t.send_text("ls zz-l")
    t.send_keys("Tab")
    t.wait_for(r"^\[~\]\$ ls zz-long-$")
    t.send_keys("Tab")
    # Two pages on this screen: one --More-- (Space: the next page).
    t.wait_for(r"^--(More|MORE)--")
    t.send_keys("Space")
    t.wait_for(r"zz-long-59-name\s*\n(.*\n)*\[~\]\$ ls zz-long-$")
    history = t.screen(history=True)
    # Every name listed once; the status bar only on the last line. (The
    # prompt started on the top row, where tmux took prompt_toolkit's erase
    # below for a clear screen and pushed each frame into the scrollback.)
    assert sorted(re.findall(r"zz-long-\d\d-name", history)) == names, history
    lines = history.splitlines()
    assert [i for i, line in enumerate(lines) if line.strip() == "attyguard"] \
        == [len(lines) - 1], history


def _listing(t: Tmux, prefix: str, paged: bool) -> list[str]:
    """Type `ls <prefix>`, Tab twice, page through; the listing's rows as shown."""
    t.send_text(f"ls {prefix}")
    t.send_keys("Tab")
    t.wait_for(rf"ls {re.escape(prefix)}\S*$")
    t.send_keys("Tab")
    if paged:
        t.wait_for(r"^--More--")
        t.send_keys("Space")
    t.wait_for(rf"^{re.escape(prefix)}.*\n\[~\]\$ ls {re.escape(prefix)}\S*$")
    return [line.rstrip() for line in t.screen(history=True).splitlines()
            if line.startswith(prefix)]


@pytest.mark.parametrize("names, cols, rows, paged", [
    ([f"zz-c-{i:02d}-name" for i in range(60)], 80, 10, True),  # 15 rows: a --More--
    (["zz-c-a", "zz-c-bb", "zz-c-longest-of-all", "zz-c-ccc", "zz-c-d", "zz-c-eeeee",
      "zz-c-f"], 50, 24, False),  # two columns of a 19-wide name, then the rest
    ([f"zz-c-{i}" for i in range(11)], 72, 24, False),  # 72 = 8 × 9: one column fewer
])
def test_the_listing_is_laid_out_as_bash_lays_it_out(shell, ag_home, ag_env, names, cols, rows,
                                                       paged):
    for name in names:
        (ag_home / name).write_text("")
    t = shell(cols=cols, rows=rows)
    ours = _listing(t, "zz-c-", paged)
    env = dict(ag_env, INPUTRC="/dev/null")
    with Tmux(["/bin/bash", "--norc", "--noprofile"], env=env, cols=cols, rows=rows,
              cwd=str(ag_home)) as plain:
        plain.send_line("PS1='[\\w]$ '; clear")
        plain.wait_for(r"\A\[~\]\$$", timeout=15)
        theirs = _listing(plain, "zz-c-", paged)
    assert ours == theirs, "\n".join(["attyguard:", *ours, "bash:", *theirs])
    assert sorted(" ".join(ours).split()) == sorted(names)


def test_a_multi_line_command_is_one_history_entry(shell):
    t = shell()
    t.send_line("for i in a b; do")
    t.wait_for(r"^>$")
    t.send_line("echo item-$i")
    t.send_line("done")
    t.wait_for(r"^item-a\nitem-b\n\[~\]\$$")
    t.send_keys("Up")
    # The whole loop comes back, not just its last line.
    t.wait_for(r"^\[~\]\$ for i in a b; do\n.*echo item-\$i\n.*done$")
    t.send_keys("Enter")
    t.wait_for(r"^item-a\nitem-b\n(.*\n)*item-a\nitem-b\n\[~\]\$$")
    t.send_line("history 3")
    screen = t.wait_for(r"^\s+\d+\s+history 3\n\[~\]\$$")
    assert re.search(r"^\s+\d+\s+for i in a b; do echo item-\$i; done$", screen, re.MULTILINE), \
        screen


def test_a_long_running_command_is_in_history_while_it_runs(shell, ag_env):
    t = shell()
    t.send_line("echo started-long; sleep 30")
    t.wait_for(r"^started-long$")
    history = Path(ag_env["ATTYGUARD_HOME"]) / "state" / "history"
    deadline = time.monotonic() + 10
    while "+echo started-long; sleep 30" not in (history.read_text() if history.exists() else ""):
        assert time.monotonic() < deadline, "not stored while it runs"
        time.sleep(0.02)
    t.send_keys("C-c")
    t.wait_for(r"^\[~\]\$$")
