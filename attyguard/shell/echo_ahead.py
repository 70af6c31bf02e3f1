"""Keys typed at the instant prompt, echoed before the front end is up.

The instant prompt (instant.py) is on screen ≈70 ms before prompt_toolkit
has been imported and drawn its first frame; the terminal is already in
prompt_toolkit's mode (no echo), so what the user types there used to
appear only then. `EchoAhead` reads those keys on a thread and shows them
at once after the PS1, like a terminal's own echo at a shell that is still
starting. It only shows text: what it read is handed back (`stop`) and
replayed into the first prompt as keystrokes, so every line still reaches
bash through the session's enforcement point, exactly as before.

Echoed are plain printable ASCII characters only, and only while they fit
on the PS1's last row (the instant prompt's hand-over moves the cursor
back by rows). At the first other byte (Enter, Backspace, Ctrl-anything,
an escape sequence or paste, a non-ASCII character) it stops echoing but
goes on reading: everything typed before the front end is up is replayed
into it in order, through one parser, and its first render redraws the
line over what was shown.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import sys
import threading
import time

from attyguard.shell.instant import _HIDDEN_OSC, _SGR

__all__ = ["EchoAhead", "complete_input", "echo_room", "echoable_prefix"]

_SWITCH_S = 0.001
# How long `stop` waits for the rest of a paste or escape sequence cut short.
_FINISH_S = 0.5


def echo_room(ps1: str, columns: int) -> int:
    """How many characters fit after `ps1`'s last line without reaching the last column.

    An upper bound on the width is used (every non-ASCII character counted
    as two cells), so what is echoed never wraps.
    """
    last = _SGR.sub("", _HIDDEN_OSC.sub("", ps1)).split("\n")[-1]
    last = last.replace("\x01", "").replace("\x02", "")
    width = sum(1 if c < "\x80" else 2 for c in last)
    return max(0, columns - 1 - width)


def echoable_prefix(data: bytes, room: int) -> int:
    """How many leading bytes of `data` are printable ASCII within `room` (the echo's end)."""
    n = 0
    for byte in data[:room]:
        if not 0x20 <= byte <= 0x7E:
            break
        n += 1
    return n


class EchoAhead:
    """Echo printable keys from `in_fd` to `out_fd` on a thread until `stop`."""

    def __init__(self, in_fd: int, out_fd: int, room: int) -> None:
        self.in_fd = in_fd
        self.out_fd = out_fd
        self.room = room
        self.read = bytearray()  # every byte taken from the tty, echoed or not
        self._wake_r, self._wake_w = os.pipe()
        # The main thread imports the front end meanwhile, holding the GIL but
        # for switches: every 1 ms instead of 5, so an echo waits ≤ ~1 ms.
        self._interval = sys.getswitchinterval()
        sys.setswitchinterval(_SWITCH_S)
        self._thread = threading.Thread(target=self._run, name="attyguard-echo", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        echoing = True
        with contextlib.suppress(OSError, ValueError):
            while True:
                ready = select.select([self.in_fd, self._wake_r], [], [])[0]
                if self._wake_r in ready:
                    return
                data = os.read(self.in_fd, 4096)
                if not data:
                    return
                self.read += data
                if not echoing:
                    continue  # (still read: one parser must see all of a paste or sequence)
                n = echoable_prefix(data, self.room)
                if n:
                    os.write(self.out_fd, data[:n])
                    self.room -= n
                echoing = n == len(data)

    def stop(self) -> str:
        """Stop echoing; the keys read so far, to replay into the first prompt (idempotent).

        What is waiting in the tty is taken too, and a paste or escape sequence
        cut short is read to its end (within `_FINISH_S`): the first prompt's
        parser must see it whole, not half of it here and half in the tty.
        """
        if self._thread.is_alive():
            with contextlib.suppress(OSError):
                os.write(self._wake_w, b"x")
            self._thread.join()
            deadline = time.monotonic() + _FINISH_S
            with contextlib.suppress(OSError, ValueError):
                while True:
                    wait = 0.0 if complete_input(bytes(self.read)) else \
                        max(0.0, deadline - time.monotonic())
                    if not select.select([self.in_fd], [], [], wait)[0]:
                        break
                    data = os.read(self.in_fd, 4096)
                    if not data:
                        break
                    self.read += data
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._wake_r = self._wake_w = -1
        if self._interval > _SWITCH_S:  # (else the front-end preload restores it)
            sys.setswitchinterval(self._interval)
        keys, self.read = bytes(self.read).decode("utf-8", "replace"), bytearray()
        return keys


# A whole escape sequence: CSI, SS3 (ESC O x) or ESC with one more character.
_WHOLE_ESCAPE = re.compile(rb"\x1b(?:\[[0-?]*[ -/]*[@-~]|O.|[^\[O])", re.DOTALL)


def complete_input(data: bytes) -> bool:
    """False while `data` ends inside a bracketed paste or an escape sequence."""
    start = data.rfind(b"\x1b[200~")
    if start >= 0 and data.find(b"\x1b[201~", start) < 0:
        return False
    esc = data.rfind(b"\x1b", max(0, len(data) - 32))
    return esc < 0 or _WHOLE_ESCAPE.match(data, esc) is not None
