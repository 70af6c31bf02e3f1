"""End-to-end in a real pty (tmux): the rc files bash reads at start-up are judged
(issue 9, "Files"): a file with a line that would be refused is reported with file:line
and not sourced, with a hint how to trust it; ordinary rc files stay silent."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.harness import run

pytestmark = pytest.mark.e2e

ANY_PROMPT = r"[#$\]] ?$"


def payload(marker: Path) -> str:
    return f"touch {marker}; bash -i >& /dev/tcp/127.0.0.1/9 0>&1"


def test_refused_bashrc_is_reported_and_not_sourced(shell, ag_home, tmp_path):
    marker = tmp_path / "marker"
    (ag_home / ".bashrc").write_text(
        f"PS1='[\\w]$ '\nalias ll='ls -l'\n{payload(marker)}\n")
    t = shell(cols=300, wait_prompt=False)
    screen = t.wait_for(ANY_PROMPT, timeout=15)
    assert f"attyguard: {ag_home}/.bashrc:3: " in screen, screen
    assert f"attyguard trust add --file {ag_home}/.bashrc" in screen
    assert "[~]$" not in screen  # nothing of it ran: not even its PS1
    t.send_line("type ll || echo no-alias")
    t.wait_for(r"^no-alias$")
    assert not marker.exists()


def test_refused_profile_of_a_login_shell(shell, ag_home, tmp_path):
    marker = tmp_path / "marker"
    (ag_home / ".profile").write_text(f"{payload(marker)}\n")
    t = shell("-l", cols=300, wait_prompt=False)
    screen = t.wait_for(ANY_PROMPT, timeout=15)
    assert f"attyguard: {ag_home}/.profile:1: " in screen, screen
    assert not marker.exists()


def test_file_sourced_by_the_bashrc_is_judged_too(shell, ag_home, tmp_path):
    marker = tmp_path / "marker"
    (ag_home / ".bash_aliases").write_text(f"alias ll='ls -l'\n{payload(marker)}\n")
    (ag_home / ".bashrc").write_text(
        "PS1='[\\w]$ '\n[ -f ~/.bash_aliases ] && . ~/.bash_aliases\n")
    t = shell(cols=300, wait_prompt=False)
    screen = t.wait_for(ANY_PROMPT, timeout=15)
    assert f"{ag_home}/.bashrc:2: " in screen and ".bash_aliases:2" in screen, screen
    assert not marker.exists()


def test_trusted_rc_file_is_sourced(shell, attyguard_bin, ag_env, ag_home):
    # Refused by the rules, harmless when run: the branch is never taken.
    rc = ag_home / ".bashrc"
    rc.write_text("PS1='[\\w]$ '\nif false; then bash -i >& /dev/tcp/127.0.0.1/9 0>&1; fi\n")
    t = shell(cols=300, wait_prompt=False)
    t.wait_for(ANY_PROMPT, timeout=15)
    assert f"{rc}:2" in t.screen()
    p = run([attyguard_bin, "trust", "add", "--file", str(rc)], env=ag_env)
    assert p.returncode == 0 and b"[file]" in p.stdout, p
    t = shell()  # waits for the rc file's own PS1
    assert "attyguard:" not in t.screen()


QUIET_RC = r"""
PS1='[\w]$ '
HISTCONTROL=ignoreboth
shopt -s histappend checkwinsize
alias ll='ls -alF'
alias gs='git status -sb'
export PATH="$HOME/.local/bin:$PATH"
export EDITOR=vim
# a virtualenv's activate, as venv writes it (shape only)
deactivate () { PATH="${_OLD_VIRTUAL_PATH:-$PATH}"; export PATH; unset -f deactivate; }
VIRTUAL_ENV="$HOME/.venvs/demo"; _OLD_VIRTUAL_PATH="$PATH"; PATH="$VIRTUAL_ENV/bin:$PATH"
# nvm-, direnv- and starship-style hooks
export NVM_DIR="$HOME/.nvm"
[ -s "$NVM_DIR/nvm.sh" ] && \. "$NVM_DIR/nvm.sh"
_direnv_hook() {
  local previous_exit_status=$?; trap -- '' SIGINT; trap - SIGINT
  return $previous_exit_status
}
PROMPT_COMMAND="_direnv_hook${PROMPT_COMMAND:+;$PROMPT_COMMAND}"
starship_precmd() { STARSHIP_CMD_STATUS=$?; }
trap 'STARSHIP_START_TIME=$SECONDS' DEBUG
[ -f ~/.bash_aliases ] && . ~/.bash_aliases
if [ -f /etc/bash_completion ] && ! shopt -oq posix; then . /etc/bash_completion; fi
"""


@pytest.mark.parametrize("kind", ["debian-skel", "everyday"])
def test_ordinary_rc_files_stay_silent(shell, ag_home, kind):
    if kind == "debian-skel":
        skel = Path("/etc/skel/.bashrc")
        if not skel.exists():
            pytest.skip("no /etc/skel/.bashrc on this machine")
        text = skel.read_text() + "\nPS1='[\\w]$ '\nalias ll='ls -l'\n"
    else:
        text = QUIET_RC
        (ag_home / ".bash_aliases").write_text("alias la='ls -A'\n")
    (ag_home / ".bashrc").write_text(text)
    t = shell()
    t.send_line("alias ll >/dev/null && echo has-ll")
    t.wait_for(r"^has-ll$")
    assert "attyguard:" not in t.screen(history=True), t.screen(history=True)
