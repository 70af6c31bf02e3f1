"""End-to-end: lines typed before the shell is back at its prompt run after, in order, judged.

The next prompt is drawn as soon as bash reports that a command finished (its
D mark), while bash still drains the keys typed during the command and draws
its own (hidden) prompt (mark B); keys typed then wait (shell/bash.py
`settling`, ptk_patches `KeyHold`). These drive the real binary in tmux with
keys typed while output streams and lines queued faster than they run.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.e2e

# Decoded text run by a shell: a block rule. (If it ran, the file would exist.)
BLOCKED = "printf %s ZGF0ZQ== | base64 -d | bash; touch ~/ran-blocked"


def _in_order(screen: str, *texts: str) -> bool:
    at = 0
    for text in texts:
        found = screen.find(text, at)
        if found < 0:
            return False
        at = found + len(text)
    return True


def test_lines_typed_while_output_streams_run_after_it_in_order_and_judged(shell, ag_home):
    t = shell()
    t.send_line("for i in 1 2 3 4 5 6; do echo stream-$i; sleep 0.15; done; echo stream-end")
    t.wait_for(r"^stream-2$")
    # Typed while the command still writes: each line is judged at its own prompt.
    t.send_line("echo ahead-$((1+0))")
    t.send_line(BLOCKED)
    t.send_line("echo ahead-$((1+1))")
    t.wait_for(r"^ahead-2\n\[~\]\$$", timeout=15)
    screen = t.screen(history=True)
    assert _in_order(screen, "\nstream-end\n", "\nahead-1\n", "REFUSED — ", "\nahead-2\n"), screen
    assert screen.count("REFUSED — ") == 1, screen
    assert not (ag_home / "ran-blocked").exists()


def test_many_lines_queued_at_once_each_run_once_in_order(shell, ag_home):
    # One burst of keys: the first line is accepted, the rest arrive while it
    # runs and while bash is between its D mark and its prompt, again and
    # again; none may be lost, doubled, reordered or run unjudged.
    t = shell()
    lines = [f"echo q-$((100+{i}))" for i in range(12)]
    lines.insert(6, BLOCKED)
    t.send_text("".join(line + "\r" for line in lines))
    t.wait_for(r"^q-111\n\[~\]\$$", timeout=20)
    screen = t.screen(history=True)
    outputs = [f"\nq-{100 + i}\n" for i in range(12)]
    assert _in_order(screen, *outputs[:6], "REFUSED — ", *outputs[6:]), screen
    for text in outputs:
        assert screen.count(text) == 1, screen
    assert not (ag_home / "ran-blocked").exists()
    t.send_line("echo after-$((2*21))")
    t.wait_for(r"^after-42\n\[~\]\$$")


def test_a_key_typed_the_moment_a_command_ends_joins_the_keys_typed_during_it(shell):
    # Keys typed during the command come back from bash (drained); keys typed
    # right after it ended go to the prompt directly: in the buffer, in the
    # order typed.
    t = shell()
    t.send_line("sleep 0.4; echo slept")
    t.wait_for(r"\$ sleep 0.4; echo slept$")
    t.send_text("echo ab")
    t.wait_for(r"slept$")
    t.send_text("cd")
    t.wait_for(r"^\[~\]\$ echo abcd$")
    t.send_keys("Enter")
    t.wait_for(r"^abcd\n\[~\]\$$")
