"""Strip chosen OSC sequences from programs' output on its way to the terminal (pure, streaming).

Programs run by the shell write straight to the user's terminal. Some
operating-system commands in that stream act beyond the program's own
output: OSC 52 writes the clipboard (a later paste runs what a program
chose), OSC 4/104 and 10-19/110-119 recolour the palette and the default
colours (hiding text, or faking attyguard's own REFUSED line), OSC 133
marks tell the terminal where prompts and commands are. `[terminal]` in the
config picks which are removed (README: "What reaches your terminal");
everything else passes byte-exact.

The hot path is one `bytes.find` per chunk; only a sequence cut at a chunk
boundary before its number is known is held back (a few bytes). A stripped
sequence is dropped up to its terminator (BEL or ESC \\) however long it is
(an OSC 52 payload can be megabytes), without holding it.
"""

from __future__ import annotations

__all__ = ["OscFilter", "osc_numbers"]

_OSC = b"\x1b]"
_MAX_NUMBER = 8  # digits: a longer "number" is not a sequence we strip


def osc_numbers(*, clipboard: bool, palette: bool, shell_marks: bool) -> frozenset[int]:
    """The OSC numbers removed for these `[terminal]` settings."""
    numbers: set[int] = set()
    if clipboard:
        numbers.add(52)
    if palette:
        numbers.update({4, 104, 5, 105, *range(10, 20), *range(110, 120)})
    if shell_marks:
        numbers.add(133)
    return frozenset(numbers)


class OscFilter:
    def __init__(self, strip: frozenset[int]) -> None:
        self.strip = strip
        self._held = b""  # the start of a sequence whose number is not complete yet
        self._dropping = False  # inside a stripped sequence, up to its terminator
        self._esc = False  # (dropping) the chunk ended in ESC: maybe the start of ST

    def feed(self, data: bytes) -> bytes:
        if self._held:
            data, self._held = self._held + data, b""
        out: list[bytes] = []
        i = 0
        n = len(data)
        while i < n:
            if self._dropping:
                i = self._skip(data, i)
                continue
            j = data.find(_OSC, i)
            if j < 0:
                # A lone trailing ESC may start an OSC in the next chunk.
                if data.endswith(b"\x1b"):
                    out.append(data[i:-1])
                    self._held = b"\x1b"
                else:
                    out.append(data[i:])
                break
            out.append(data[i:j])
            k = j + 2
            while k < n and k - j - 2 < _MAX_NUMBER and 48 <= data[k] <= 57:
                k += 1
            if k == n and k - j - 2 < _MAX_NUMBER:
                self._held = data[j:]  # the number may go on in the next chunk
                break
            number = int(data[j + 2:k]) if k > j + 2 else -1
            if number in self.strip and k < n and data[k] in b";\x07\x1b":
                self._dropping = True
                i = k
            else:
                out.append(data[j:k])
                i = k
        return b"".join(out)

    def _skip(self, data: bytes, i: int) -> int:
        """Drop up to and including the terminator; the index after it (or len)."""
        if self._esc:
            self._esc = False
            if data[i:i + 1] == b"\\":
                self._dropping = False
                return i + 1
        bel = data.find(b"\x07", i)
        st = data.find(b"\x1b\\", i)
        ends = [e for e in (bel, st) if e >= 0]
        if not ends:
            self._esc = data.endswith(b"\x1b")
            return len(data)
        end = min(ends)
        self._dropping = False
        return end + (1 if end == bel else 2)

    def flush(self) -> bytes:
        held, self._held = self._held, b""
        return b"" if self._dropping else held
