"""End-to-end: start-up to the first prompt (the instant prompt), in a real tmux.

The front end's import is made slow on purpose (a `sitecustomize` on
PYTHONPATH holds the first `import prompt_toolkit` for a few seconds), so
keys can be typed, and the screen read, while only the instant prompt is up.
Whether prompt_toolkit is up yet shows on screen: its status bar.
"""

from __future__ import annotations

import os
import re
import select
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import PROMPT_RE

pytestmark = pytest.mark.e2e

# Holds the front end's import for AG_TEST_DELAY seconds; AG_TEST_MARK names a
# file created when the hold starts (the instant prompt is drawn by then).
_SLOW_IMPORT = '''\
import os, sys, time


class _SlowFrontEnd:
    def find_spec(self, name, path=None, target=None):
        if name == "prompt_toolkit":
            sys.meta_path.remove(self)
            open(os.environ["AG_TEST_MARK"], "w").close()
            time.sleep(float(os.environ["AG_TEST_DELAY"]))
        return None


if os.environ.get("AG_TEST_DELAY"):
    sys.meta_path.insert(0, _SlowFrontEnd())
'''

STATUS_BAR = "attyguard"  # the status bar's text when nothing is to report
# A base64 line that decodes to `touch ran-marker` and pipes it into sh: blocked.
BLOCKED = "echo dG91Y2ggcmFuLW1hcmtlcg== | base64 -d | sh"


@pytest.fixture
def slow_env(ag_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(_SLOW_IMPORT)
    return {**ag_env, "PYTHONPATH": str(site), "AG_TEST_DELAY": "4",
            "AG_TEST_MARK": str(tmp_path / "front-end-importing")}


def _front_end_up(screen: str) -> bool:
    return screen.rstrip().endswith(STATUS_BAR)


def _wait_instant(t, slow_env: dict[str, str], pattern: str) -> str:
    """The instant prompt is on screen and prompt_toolkit is still being imported."""
    screen = t.wait_for(pattern, timeout=15)
    assert Path(slow_env["AG_TEST_MARK"]).exists(), screen
    assert not _front_end_up(screen), f"front end already up:\n{screen}"
    return screen


def test_keys_typed_before_front_end_are_classified(shell, slow_env, ag_home):
    t = shell(env=slow_env, wait_prompt=False)
    _wait_instant(t, slow_env, PROMPT_RE)
    t.send_line("echo typed-$((6*7))")
    t.send_line(BLOCKED)
    # The printable keys are echoed at once (echo_ahead.py), up to the first
    # Enter; nothing after it, and nothing runs until the front end is up.
    screen = t.wait_for(r"^\[~\]\$ echo typed-\$\(\(6\*7\)\)$", timeout=5)
    assert "typed-42" not in screen and not _front_end_up(screen), screen
    assert "dG91Y2g" not in screen, screen
    t.wait_for(r"^typed-42$", timeout=20)
    t.wait_for(r"^REFUSED — ", timeout=20)
    t.wait_for(PROMPT_RE)
    assert not (ag_home / "ran-marker").exists(), t.screen()
    t.send_line("echo still-here")
    t.wait_for(r"^still-here\n\[~\]\$$")
    assert not (ag_home / "ran-marker").exists(), t.screen()


def test_partial_line_typed_before_front_end_lands_in_buffer(shell, slow_env):
    t = shell(env=slow_env, wait_prompt=False)
    _wait_instant(t, slow_env, PROMPT_RE)
    t.send_text("echo half")
    t.wait_for(lambda s: _front_end_up(s), timeout=20)
    # The same prompt, once, with the keys after it; the line is not run yet.
    screen = t.wait_for(r"^\[~\]\$ echo half$")
    assert screen.count("[~]$") == 1, screen
    t.send_line(" and done")
    t.wait_for(r"^half and done\n\[~\]\$$")


def test_multiline_ps1_drawn_once(shell, slow_env, ag_home):
    (ag_home / ".bashrc").write_text("PS1='first-of-two \\u\\n[\\w]$ '\n")
    t = shell(env=slow_env, wait_prompt=False)
    screen = _wait_instant(t, slow_env, r"^first-of-two \w+\n\[~\]\$$")
    instant_rows = screen.splitlines()
    t.wait_for(lambda s: _front_end_up(s), timeout=20)
    screen = t.screen()
    assert screen.count("first-of-two") == 1, screen
    # Same place: the rows the instant prompt used hold the same prompt now.
    assert screen.splitlines()[: len(instant_rows)] == instant_rows, screen
    t.send_line("echo after-multi")
    t.wait_for(r"^after-multi\nfirst-of-two \w+\n\[~\]\$$")
    assert t.screen().count("first-of-two") == 2, t.screen()


def test_rc_output_before_prompt_and_prompt_stays_at_bottom(shell, slow_env, ag_home):
    # More rc output than the screen has rows: the prompt starts on the last
    # rows, where the status bar must not push it up when the front end comes.
    (ag_home / ".bashrc").write_text(
        "PS1='[\\w]$ '\nfor i in $(seq 1 15); do echo rc-line-$i; done\n")
    t = shell(env=slow_env, wait_prompt=False, rows=10)
    instant = _wait_instant(t, slow_env, r"^rc-line-15\n\[~\]\$$")
    t.wait_for(lambda s: _front_end_up(s), timeout=20)
    screen = t.screen()
    assert screen.count("[~]$") == 1, screen
    assert "rc-line-15\n[~]$" in screen, screen
    before = instant.splitlines().index("[~]$")
    assert screen.splitlines().index("[~]$") == before, f"{instant}\n---\n{screen}"


def test_rc_output_without_newline_falls_back(shell, ag_home):
    # The instant prompt would not know its column: the old start-up is used.
    (ag_home / ".bashrc").write_text("PS1='[\\w]$ '\nprintf 'rc-no-newline'\n")
    t = shell(wait_prompt=False)
    t.wait_for(r"rc-no-newline")
    t.wait_for(lambda s: _front_end_up(s), timeout=20)
    t.send_line("echo works")
    t.wait_for(r"^works\n\[~\]\$$")


def test_prompt_start_mark_emitted_once_before_prompt(attyguard_bin, ag_env):
    """OSC 133;A exactly once before the first prompt, instant or not (raw pty bytes)."""
    from ptyprocess import PtyProcess

    env = {**ag_env, "PROMPT_TOOLKIT_NO_CPR": "1", "TERM": "xterm-256color"}
    proc = PtyProcess.spawn([str(attyguard_bin)], env=env, cwd=env["HOME"], dimensions=(24, 80))
    out = b""
    try:
        deadline = time.monotonic() + 15
        # The instant prompt, then prompt_toolkit's first render of the same
        # prompt over it (no status bar without cursor position reports).
        while re.sub(rb"\x1b\[[0-?]*[ -/]*[@-~]", b"", out).count(b"[~]$") < 2:
            left = deadline - time.monotonic()
            assert left > 0, f"no first render; output: {out!r}"
            if select.select([proc.fd], [], [], left)[0]:
                out += os.read(proc.fd, 65536)
    finally:
        proc.terminate(force=True)
    assert out.count(b"\x1b]133;A\x07") == 1, out
    assert out.index(b"\x1b]133;A\x07") < out.index(b"]$ "), out


def test_keys_typed_while_rc_files_run_are_classified(shell, ag_home):
    # A slow rc: keys typed before any prompt reach bash's tty while it reads
    # its rc files; they come back as typeahead and are classified like the rest.
    (ag_home / ".bashrc").write_text("PS1='[\\w]$ '\necho rc-starting\nsleep 1\n")
    t = shell(wait_prompt=False)
    t.wait_for(r"^rc-starting$")
    t.send_line("echo early-$((1+1))")
    t.send_line(BLOCKED)
    t.wait_for(r"^early-2$", timeout=20)
    t.wait_for(r"^REFUSED — ", timeout=20)
    t.send_line("echo after-rc")
    t.wait_for(r"^after-rc\n\[~\]\$$")
    assert not (ag_home / "ran-marker").exists(), t.screen()


def test_window_title_in_ps1_is_set_not_shown(shell, slow_env, ag_home):
    # Debian's default PS1 in an xterm: \[\e]0;…\a\] sets the window title.
    (ag_home / ".bashrc").write_text("PS1='\\[\\e]0;ag-title-\\u\\a\\][\\w]$ '\n")
    t = shell(env=slow_env, wait_prompt=False)
    _wait_instant(t, slow_env, PROMPT_RE)
    t.wait_for(lambda s: _front_end_up(s), timeout=20)
    t.send_line("echo titled")
    screen = t.wait_for(r"^titled\n\[~\]\$$")
    assert "ag-title" not in screen and "0;" not in screen, screen
    assert t.tmux("display", "-p", "-t", "0", "#{pane_title}").startswith("ag-title-"), screen
