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
    t.send_line("trap 'echo bye > ~/trap-ran' EXIT; false")
    t.wait_for(r"^\[~\]\$$")
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
    t.send_line("zzagfunc_hello() { echo completed-func; }")
    t.wait_for(r"^\[~\]\$$")
    t.send_text("zzagfunc_h")
    t.send_keys("Tab")
    t.wait_for(r"\$ zzagfunc_hello$")
    t.send_keys("Enter")
    t.wait_for(r"^completed-func$")


def test_tab_completes_programmable_spec(shell):
    t = shell()
    t.send_line("complete -W 'alpha-one beta-two' zzcmd; zzcmd() { echo got-$1; }")
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
    t.wait_for(r"^\[~\]\$$")
    t.send_line("echo after-exec; false")
    t.wait_for(r"^after-exec\n\[~\]\$$")
    t.send_line("exit 4")
    assert t.wait_exit() == 4


def test_less_and_vim_with_resize(shell, ag_home):
    (ag_home / "f.txt").write_text("".join(f"line {i}\n" for i in range(200)))
    t = shell()
    t.send_line("less f.txt")
    t.wait_for(r"^line 0\n")
    t.send_keys("q")
    t.wait_for(r"^\[~\]\$$")
    t.send_line("vim -u NONE -N f.txt")
    t.wait_for(r"^line 0\n")
    t.resize(60, 20)
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
