"""Streaming parsers for the bash child's two channels (pure, no I/O).

`MarkParser` splits pty output into passthrough bytes and attyguard's own
nonce-tagged OSC 133 marks (ESC ] 133 ; ag-<nonce> ; <letter>[;args] BEL).
Only our marks are removed; everything else, including other programs'
OSC 133 marks, passes byte-exact. A chunk tail that could be the start of
our mark is held back until the next chunk decides it; nothing else is.
The hot path is `bytes.find` on whole chunks: no per-byte Python work.

`RecordParser` reassembles side-channel records (NUL-terminated fields
`@<nonce> TYPE fields… @end`); fields that do not belong to a record of this
nonce are dropped.

`MarkKind` and `RecordKind` name the letters shellrc/hooks.bash prints; they
are `StrEnum`s, so the letters on the wire stay what bash writes. A mark or
record of our nonce with a letter neither names is dropped: only our hooks
know the nonce, and nothing here would act on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["Mark", "MarkKind", "MarkParser", "Record", "RecordKind", "RecordParser",
           "mark_prefix"]


class MarkKind(StrEnum):
    """A mark on the pty (ESC ] 133 ; ag-<nonce> ; LETTER [; args] BEL)."""

    PROMPT = "B"  # PS1 was drawn (bash is back at readline)
    COMMAND = "C"  # PS0: the command starts; what came before was readline's echo
    DONE = "D"  # __ag_report: the command finished (args: its status); record D came first
    MORE = "P"  # PS2: bash's parser wants a continuation line


class RecordKind(StrEnum):
    """A record on the side channel (@<nonce> LETTER fields… @end)."""

    DONE = "D"  # at every prompt: status, cwd, expanded PS1/PS2, rescue flag, mode, history
    TYPEAHEAD = "T"  # keys drained after D, split where the tty queued an end-of-file
    NAMES = "N"  # aliases, hash entries, function names, traps (shell/state.py)
    FOREIGN = "F"  # a line that did not come from the front end, emptied by __ag_accept
    REPAIRED = "R"  # __ag_repair reinstalled the hooks
    COMPLETIONS = "K"  # __ag_complete's answer: the word, then the candidates
    STATE = "S"  # __ag_state's answer (shell/state.py)
    HISTORY = "Y"  # __ag_hist's answer: status, expanded line, bash's error


_MARK_KINDS = {k.value: k for k in MarkKind}
_RECORD_KINDS = {k.value: k for k in RecordKind}


@dataclass(frozen=True, slots=True)
class Mark:
    kind: MarkKind
    args: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Record:
    kind: RecordKind
    fields: tuple[str, ...]


def mark_prefix(nonce: str) -> bytes:
    return b"\x1b]133;ag-" + nonce.encode("ascii") + b";"


_MAX_MARK = 256  # a mark longer than this is not ours: pass it through


class MarkParser:
    def __init__(self, nonce: str) -> None:
        self.prefix = mark_prefix(nonce)
        self._held = b""

    def plain(self, data: bytes) -> bool:
        """True if `data` is output only and nothing is held: `feed` would
        return it unchanged, so the caller may pass it on without feeding."""
        if self._held or self.prefix in data:
            return False
        # A tail that could start our mark must go through `feed` (held back).
        return data.find(b"\x1b", max(0, len(data) - len(self.prefix) + 1)) < 0

    def feed(self, data: bytes) -> list[bytes | Mark]:
        """Split `data` into output bytes and marks, in order."""
        if self._held:
            data = self._held + data
            self._held = b""
        out: list[bytes | Mark] = []
        prefix = self.prefix
        start = 0
        while True:
            i = data.find(prefix, start)
            if i < 0:
                break
            end = data.find(b"\x07", i + len(prefix))
            if end < 0:
                if len(data) - i > _MAX_MARK:
                    # Not terminated within bounds: not ours after all.
                    out.append(data[start : i + 1])
                    start = i + 1
                    continue
                if i > start:
                    out.append(data[start:i])
                self._held = data[i:]
                return out
            if i > start:
                out.append(data[start:i])
            body = data[i + len(prefix) : end].decode("utf-8", "replace")
            letter, _, rest = body.partition(";")
            kind = _MARK_KINDS.get(letter)
            if kind is not None:
                out.append(Mark(kind, tuple(rest.split(";")) if rest else ()))
            start = end + 1
        tail = data[start:]
        # Hold back only a tail that is a proper prefix of our mark.
        j = tail.rfind(b"\x1b", max(0, len(tail) - len(prefix) + 1))
        if j >= 0 and prefix.startswith(tail[j:]):
            self._held = tail[j:]
            tail = tail[:j]
        if tail:
            out.append(tail)
        return out

    def flush(self) -> bytes:
        held, self._held = self._held, b""
        return held


class RecordParser:
    def __init__(self, nonce: str) -> None:
        self.start = ("@" + nonce).encode("ascii")
        self._buf = b""
        self._fields: list[bytes] | None = None

    def feed(self, data: bytes) -> list[Record]:
        self._buf += data
        records: list[Record] = []
        *complete, self._buf = self._buf.split(b"\0")
        for field in complete:
            if field == self.start:
                self._fields = []
            elif self._fields is not None:
                if field == b"@end":
                    kind = _RECORD_KINDS.get(self._fields[0].decode("ascii", "replace")
                                             if self._fields else "")
                    if kind is not None:
                        decoded = [f.decode("utf-8", "surrogateescape") for f in self._fields]
                        records.append(Record(kind, tuple(decoded[1:])))
                    self._fields = None
                else:
                    self._fields.append(field)
        return records
