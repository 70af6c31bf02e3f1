"""The shell under test as a real account's login shell, reached through `su - USER`.

`su -` starts the account's /etc/passwd shell as a login shell (argv[0] "-NAME"),
with `-c CMD` for a command: exactly what happens on a machine where someone ran
`chsh -s $(which attyguard)`.
"""

from __future__ import annotations

import subprocess

import pytest
from login_fixtures import PROFILE_MARK, PROMPT, LoginUser, Tmux

pytestmark = [pytest.mark.e2e, pytest.mark.root]


def _su(user: LoginUser, command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["su", "-", user.name, "-c", command],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=30,
    )


def _explain(done: subprocess.CompletedProcess[str]) -> str:
    return (
        f"argv: {done.args!r}\nexit: {done.returncode}\n"
        f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    )


def test_su_dash_c_runs_the_command(login_user: LoginUser) -> None:
    done = _su(login_user, "echo $((6*7))")
    assert (done.returncode, done.stdout) == (0, "42\n"), _explain(done)


def test_su_dash_c_keeps_the_exit_status(login_user: LoginUser) -> None:
    done = _su(login_user, "exit 7")
    assert done.returncode == 7, _explain(done)


def test_su_dash_c_runs_in_the_users_home_as_the_user(login_user: LoginUser) -> None:
    done = _su(login_user, 'echo "$(id -un) $PWD $HOME"')
    want = f"{login_user.name} {login_user.home} {login_user.home}\n"
    assert (done.returncode, done.stdout) == (0, want), _explain(done)


def test_su_dash_c_is_a_login_shell(login_user: LoginUser, request: pytest.FixtureRequest) -> None:
    # `su -` starts the shell as "-SHELL": bash then reads ~/.profile even with -c.
    if "attyguard-script" in request.node.callspec.id:
        # Strict: fails loudly once fixed. Through the #! console script the "-" is
        # lost, and the su/sshd context guess is made only for interactive shells.
        request.applymarker(
            pytest.mark.xfail(
                strict=True,
                reason="`su - USER -c CMD` with the console script as login shell: "
                "not a login shell (~/.profile unread)",
            )
        )
    done = _su(login_user, 'echo "$AGTEST_PROFILE"')
    assert (done.returncode, done.stdout) == (0, PROFILE_MARK + "\n"), _explain(done)


def _su_session(user: LoginUser, tmux: Tmux) -> None:
    tmux.start(["su", "-", user.name])
    tmux.wait_screen(lambda s: PROMPT.rstrip() in s, "the login prompt")


def _end_session(tmux: Tmux) -> None:
    tmux.send("exit")
    status = tmux.wait_exit("the login shell to end after `exit`")
    assert status == "0", tmux.explain()


def test_su_dash_interactive_login(login_user: LoginUser, tmux: Tmux) -> None:
    _su_session(login_user, tmux)
    tmux.send("echo $((6*7)); id -un")
    tmux.wait_screen(
        lambda s: "42" in s.splitlines() and login_user.name in s.splitlines(),
        "the output of `echo $((6*7)); id -un`",
    )
    _end_session(tmux)


def test_su_dash_interactive_is_a_login_shell(login_user: LoginUser, tmux: Tmux) -> None:
    _su_session(login_user, tmux)
    tmux.send('echo "profile: $AGTEST_PROFILE."')
    lines = tmux.wait_screen(
        lambda s: any(line.startswith("profile: ") for line in s.splitlines()),
        "the output of the profile check",
    ).splitlines()
    assert f"profile: {PROFILE_MARK}." in lines, "~/.profile was not read\n" + tmux.explain()
    _end_session(tmux)


def test_su_dash_interactive_dollar_zero_and_login_shell_option(
        login_user: LoginUser, tmux: Tmux) -> None:
    # What scripts test to know they run in a login shell: $0 starts with "-",
    # `shopt login_shell` is on (bash's own answer, for every login shell here).
    _su_session(login_user, tmux)
    tmux.send('echo "zero=$0"; shopt login_shell')
    lines = tmux.wait_screen(
        lambda s: any(line.startswith("login_shell") for line in s.splitlines()),
        "the output of the login checks",
    ).splitlines()
    assert "zero=-bash" in lines, tmux.explain()
    assert any(line.split() == ["login_shell", "on"] for line in lines), tmux.explain()
    _end_session(tmux)
