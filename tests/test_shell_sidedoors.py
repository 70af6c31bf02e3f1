"""Side doors to bash (issue 9, family 7): only lines the front end handed over run."""

from __future__ import annotations

import os
import select
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from attyguard.shell.bash import BashChild
from attyguard.shell.state import Needs, encode_request
from tests.bash_child import bash_child, run


@pytest.fixture
def child(tmp_path) -> Iterator[BashChild]:
    yield from bash_child(tmp_path, "PS1='$ '\n")


def idle_until(c: BashChild, want: bytes, timeout: float = 10.0) -> bytes:
    """Read idle output (as the prompt does) until `want` shows up."""
    import select

    seen = b""
    deadline = time.monotonic() + timeout
    while want not in seen and time.monotonic() < deadline:
        if select.select([c.master], [], [], 0.1)[0]:
            got = c.read_idle()
            assert got is not None, "bash went away"
            seen += got
    return seen


def test_secrets_are_not_in_any_environment(child):
    environ = Path(f"/proc/{child.pid}/environ").read_bytes()
    assert child.nonce.encode() not in environ
    assert str(child.dir).encode() not in environ
    assert child._token.encode() not in environ
    out = run(child, "cat /proc/$$/environ /proc/self/environ | tr '\\0' '\\n'; echo end")
    assert child.nonce.encode() not in out and str(child.dir).encode() not in out
    assert b"end\r\n" in out
    # The inherited pipe (read end) is closed: neither bash nor its children hold it.
    # (bash keeps a write-only pipe of its own for job control.)
    fds = run(child, "ls -l /proc/$$/fd/ /proc/self/fd/ 2>/dev/null").splitlines()
    assert not [line for line in fds if line.startswith(b"lr-x") and b"pipe:" in line]


def _inject_at_the_idle_prompt(child, tmp_path, keys: bytes) -> None:
    """Push `keys` into the terminal with TIOCSTI from a background job, once bash
    sits idle at its prompt again: the injector waits on a FIFO until the test has
    seen the prompt come back after starting it."""
    injector = tmp_path / "inject.py"
    go = tmp_path / "go"
    os.mkfifo(go)
    injector.write_text(
        "import fcntl, termios\n"
        f"open({str(go)!r}, 'rb').read(1)\n"
        f"for c in {keys!r}:\n"
        "    fcntl.ioctl(0, termios.TIOCSTI, bytes([c]))\n")
    run(child, f"{sys.executable} {injector} &")
    deadline = time.monotonic() + 10
    while True:
        try:
            fd = os.open(go, os.O_WRONLY | os.O_NONBLOCK)
            break
        except OSError:  # ENXIO: the injector has not opened its end yet
            assert time.monotonic() < deadline, "the injector never started"
            select.select([], [], [], 0.02)
    os.write(fd, b"g")
    os.close(fd)


def test_keys_injected_with_tiocsti_at_the_idle_prompt_never_run(child, tmp_path):
    marker = tmp_path / "injected"
    _inject_at_the_idle_prompt(child, tmp_path, f"touch {marker}\r".encode())
    seen = idle_until(child, b"not run")
    assert b"input that did not come from attyguard reached bash and was not run" in seen
    assert not marker.exists()
    # The shell is still in step: the next line runs normally.
    assert b"still-fine\r\n" in run(child, "echo still-fine")
    assert not marker.exists()


def test_a_redefined_hook_cannot_run(child, tmp_path):
    marker = tmp_path / "hooked"
    out = run(child, f"__ag_state() {{ touch {marker}; }}; __ag_post() {{ touch {marker}; }}")
    assert b"readonly function" in out
    assert child.fetch_state(encode_request(Needs(frozenset({"HOME"})))) is not None
    assert b"next\r\n" in run(child, "echo next")
    assert not marker.exists()


def test_a_bind_on_our_private_keys_lasts_one_command_at_most(child, tmp_path):
    marker = tmp_path / "bound"
    run(child, f"bind -x '\"\\e[57703~\": touch {marker}'; "
               f"bind '\"\\C-m\": accept-line'")
    fields = child.fetch_state(encode_request(Needs(frozenset({"HOME"}))))
    assert fields is not None and "HOME" in fields
    assert b"after\r\n" in run(child, "echo after")
    assert not marker.exists()


def test_a_forged_record_on_the_channel_is_ignored(child):
    before = child.state.cwd
    fd = os.open(child.dir / "ch", os.O_WRONLY | os.O_NONBLOCK)
    try:
        os.write(fd, b"@0000000000000000\0D\x000\0/forged\0x\0y\0\0emacs\0@end\0")
    finally:
        os.close(fd)
    run(child, "true")
    assert child.state.cwd == before


def test_keys_injected_without_enter_never_become_part_of_our_line(child, tmp_path):
    # TIOCSTI keys with no Enter wait in readline's buffer; the front end's next
    # line lands after them. The tokens lead our line, so the whole buffer is
    # refused instead of running the injected prefix with our line's token.
    marker = tmp_path / "prefixed"
    _inject_at_the_idle_prompt(child, tmp_path, f"touch {marker}; #".encode())
    idle_until(child, b"; #")  # readline echoed the injected keys: they wait in its buffer
    out = run(child, "echo ours")
    assert b"ours\r\n" not in out
    assert not marker.exists()
    # The user is told, with the injected text and never the tokens.
    notes = [n for n in child.notices if "touch" in n]
    assert notes and all("\x1f" not in n and child._token not in n for n in notes)
    # In step again: the next line runs.
    assert b"again\r\n" in run(child, "echo again")
    assert not marker.exists()
