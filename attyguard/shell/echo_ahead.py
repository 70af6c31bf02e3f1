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
an escape sequence or paste, a non-ASCII character) it stops reading: that
byte and what it read are replayed, and the rest waits in the tty for
prompt_toolkit, whose first render redraws the line over what was shown.
"""

from __future__ import annotations

import contextlib
import os
import select
import sys
import threading

from attyguard.shell.instant import _HIDDEN_OSC, _SGR

__all__ = ["EchoAhead", "echo_room", "echoable_prefix"]

_SWITCH_S = 0.001


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
        with contextlib.suppress(OSError, ValueError):
            while True:
                ready = select.select([self.in_fd, self._wake_r], [], [])[0]
                if self._wake_r in ready:
                    return
                data = os.read(self.in_fd, 4096)
                if not data:
                    return
                self.read += data
                n = echoable_prefix(data, self.room)
                if n:
                    os.write(self.out_fd, data[:n])
                    self.room -= n
                if n < len(data):
                    return  # (the rest is prompt_toolkit's to read and draw)

    def stop(self) -> str:
        """Stop echoing; the keys read so far, to replay into the first prompt (idempotent)."""
        if self._thread.is_alive():
            with contextlib.suppress(OSError):
                os.write(self._wake_w, b"x")
            self._thread.join()
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._wake_r = self._wake_w = -1
        if self._interval > _SWITCH_S:  # (else the front-end preload restores it)
            sys.setswitchinterval(self._interval)
        keys, self.read = bytes(self.read).decode("utf-8", "replace"), bytearray()
        return keys
