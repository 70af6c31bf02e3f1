"""The persistent bash child: spawn, send a line, passthrough, completion, exit.

Owns the pty and the side channel and nothing about the UI: every method
that touches the user's terminal takes its fds as parameters. The protocol
with shellrc/hooks.bash (marks on the pty, records on a FIFO) is described
there; `marks.py` parses both channels.

Imports only the standard library: this module is on the start-up path,
before prompt_toolkit is imported.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import select
import signal
import struct
import termios
import time
import tty
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from attyguard.shell.marks import Mark, MarkKind, MarkParser, Record, RecordKind, RecordParser
from attyguard.shell.oscfilter import OscFilter
from attyguard.shell.spawn import Started, line_token, remove_session_dir, set_size, start_bash

__all__ = ["BashChild", "Phase", "PromptState", "RunKind", "RunResult", "interactive_bash_argv",
           "raw_terminal", "sanitize_line"]

_READ = 65536
_PASTE_START = b"\x1b[200~"
_PASTE_END = b"\x1b[201~"
_KEY_COMPLETE = b"\x1b[57701~"
_KEY_REPAIR = b"\x1b[57702~"
_KEY_STATE = b"\x1b[57703~"
_KEY_HISTORY = b"\x1b[57704~"
_RL_LEAVE = b"\x1b[?2004l"  # readline leaves the line: its echo region ends here
# A wedged child (hooks gone, e.g. after `exec bash`) is looked at after this long.
_STALL_S = 0.8


class RunKind(StrEnum):
    """How a run ended."""

    DONE = "done"  # bash is back at its prompt
    MORE = "more"  # bash wants a continuation line (PS2)
    EXITED = "exited"  # bash has gone


class Phase(StrEnum):
    """Where a run is, which decides what its output and the user's keys are.

    ECHO -> PARSED -> RUN -> AFTER_D; RUN_QUIET throughout while cancelling.
    """

    ECHO = "echo"  # readline echoes our line: dropped, keys held back
    PARSED = "parsed"  # readline let go of it (PS2 may follow): output passes, keys wait
    RUN = "run"  # the command runs (mark C): output passes, keys go to it
    AFTER_D = "after_d"  # the D mark came: bash drains typeahead up to our ack
    RUN_QUIET = "run_quiet"  # a continuation being cancelled: nothing is shown


@dataclass
class RunResult:
    kind: RunKind
    status: int = 0
    # The prompt came back only through a hook repair (no clean D record): what
    # readline draws next is not known in advance (the instant prompt stays off).
    repaired: bool = False


@dataclass
class PromptState:
    status: int = 0
    cwd: str = ""
    ps1: str = ""
    ps2: str = "> "
    typeahead: bytes = b""
    editing_mode: str = "emacs"  # bash's `set -o vi` / `set -o emacs`, for the front end
    # The user's history characters ("!^#") when `set -H` is on, else "" (no expansion);
    # `shopt -s histverify`: an expanded line goes back to the buffer instead of running.
    histchars: str = ""
    histverify: bool = False


@dataclass
class _Run:
    phase: Phase = Phase.ECHO
    dropped: bytearray = field(default_factory=bytearray)
    got_d: bool = False
    got_t: bool = False
    result: RunResult | None = None
    last_activity: float = 0.0
    repaired: bool = False
    held: bytes = b""  # keys kept from a bash without hooks (become typeahead)
    repair_key_sent: bool = False
    early: bytes = b""  # keys typed before the command started (sent when it runs)
    typed_nul: bool = False  # a NUL (Ctrl-@) went to the command: see `_eof_for`
    echo_held: bytes = b""  # after D: what may be the start of the ack's echo
    wakes: int = 0  # ^C sent again while cancelling (see _check_stalled)
    # `passthrough(settle_later=True)`: at a clean D the run is handed to the
    # prompt's event loop (`BashChild.settling`) instead of waiting here for B.
    settle_later: bool = False
    handed_over: bool = False


def sanitize_line(text: str) -> bytes:
    """The bytes of one bracketed paste carrying `text` to readline.

    The end-of-paste sequence and C0 controls other than newline and tab
    would let the text escape the paste and act as keys, so they go.
    """
    text = text.replace("\x1b[201~", "")
    cleaned = "".join(c for c in text if c in "\n\t" or not (ord(c) < 32 or ord(c) == 127))
    return cleaned.encode("utf-8", "surrogateescape")


def _partial_tail(data: bytes, pattern: bytes) -> int:
    """Length of the longest end of `data` that is a proper start of `pattern`."""
    for k in range(min(len(data), len(pattern) - 1), 0, -1):
        if data.endswith(pattern[:k]):
            return k
    return 0


def _eof_for(run: _Run) -> bytes:
    """What a NUL in the drained typeahead stood for.

    A cooked tty queues the end-of-file key (Ctrl-D) as a NUL; a typed
    Ctrl-@ is a NUL too. Unless the user typed a Ctrl-@ during this command,
    it was a Ctrl-D: replayed at the prompt, it ends the shell on an empty
    line as bash would.
    """
    return b"\0" if run.typed_nul else b"\x04"


def _status_of(wait_status: int) -> int:
    code = os.waitstatus_to_exitcode(wait_status)
    return 128 - code if code < 0 else code


_DEBUG = os.environ.get("ATTYGUARD_DEBUG_LOG", "")


def _debug(*what: object) -> None:
    """Protocol trace for debugging (env ATTYGUARD_DEBUG_LOG=PATH); off by default."""
    if _DEBUG:
        with open(_DEBUG, "a", encoding="utf-8") as f:
            print(f"{time.monotonic():.4f}", *what, file=f)


class BashChild:
    """One interactive bash on a pty, driven through attyguard's hooks."""

    def __init__(self, pid: int, master: int, session_dir: Path, nonce: str,
                 hooks: Path, argv: list[str] | None = None, token: str = "") -> None:
        self.pid = pid
        # What /proc/PID/cmdline says while this is still our bash (not exec'd away).
        self.argv = [os.fsencode(a) for a in argv] if argv is not None else None
        self.master = master
        self.dir = session_dir
        self.nonce = nonce
        self.hooks = hooks
        self.fifo = os.open(session_dir / "ch", os.O_RDWR | os.O_NONBLOCK)
        self.marks = MarkParser(nonce)
        self.records = RecordParser(nonce)
        self.state = PromptState()
        self.exit_status: int | None = None
        self.exit_signal: int | None = None  # bash was killed by this signal
        # bash gone while the pty stays open (a background job holds it): the
        # master never reports EOF, so bash's end is watched for itself.
        self.pidfd = _pidfd(pid)
        self.gone_while_held = False
        # Called as a command starts running (mark C): the session stores its
        # history entry then, whole, before the command may take long.
        self.on_run: Callable[[], None] | None = None
        self._pending_records: list[Record] = []
        self._needs_repair = False
        self._out_pending = b""
        self._ack = b"\x1d" + nonce.encode() + b"\x1d\0"
        self._ack_echo = b"^]" + nonce.encode() + b"^]^@"
        # The last bytes passed to the user's terminal: does output end mid-line?
        self.out_tail = b""
        # The line token bash expects next (hooks.bash: __ag_accept), and the one
        # sent along with the last line, which becomes current once bash took it.
        self._token = token
        self._token_sent: str | None = None
        # The names the hooks report at every prompt (N record; shell/state.py).
        self.names_fields: tuple[str, ...] = ()
        # Lines bash was given by something other than the front end (F records),
        # emptied by the hooks: the session tells the user.
        self.notices: list[str] = []
        # Such a line was emptied while idle and bash is still finishing it (its
        # D mark and ack): a line sent now would be drained as its typeahead.
        self._foreign_running = False
        # `[terminal]` stripping of programs' escape sequences (shell/oscfilter.py).
        self.osc_filter: OscFilter | None = None
        # A run past its D mark whose end (the ack's echo, the T record, mark B)
        # is read while the next prompt is already being drawn (`settling`).
        self._settling: _Run | None = None
        # While a settling run is read from the prompt's loop: its output, for
        # the prompt to print above itself (instead of writing to a terminal fd).
        self._capture: bytearray | None = None
        self._held_capture = b""  # captured by `settle_now`, returned by the next read_idle

    # --- start-up -------------------------------------------------------------------

    @classmethod
    def spawn(cls, rcdir: Path, *, login: bool = False, size: tuple[int, int] | None = None,
              bash: str = "/bin/bash", env: dict[str, str] | None = None) -> BashChild:
        return cls.adopt(start_bash(str(rcdir), login=login, size=size, bash=bash, env=env))

    @classmethod
    def adopt(cls, started: Started) -> BashChild:
        """Take over a child started by `attyguard.shell.spawn.start_bash`."""
        return cls(started.pid, started.master, Path(started.session_dir), started.nonce,
                   Path(started.rcdir) / "hooks.bash", started.argv,
                   getattr(started, "token", ""))

    def set_size(self, size: tuple[int, int]) -> None:
        _set_size(self.master, size)

    def sync_size_from(self, tty_fd: int) -> None:
        with contextlib.suppress(OSError):
            self.set_size(_get_size(tty_fd))

    # --- low-level channel handling -------------------------------------------------

    def _read_master(self) -> bytes | None:
        """Bytes from the pty, b"" if none now, None once bash has gone."""
        try:
            return os.read(self.master, _READ)
        except BlockingIOError:
            return b""
        except OSError:
            return None

    def _read_fifo(self) -> list[Record]:
        got: list[Record] = []
        while True:
            try:
                data = os.read(self.fifo, _READ)
            except BlockingIOError:
                break
            if not data:
                break
            for rec in self.records.feed(data):
                if rec.kind is RecordKind.NAMES:
                    self.names_fields = rec.fields  # (the newest wins; never queued)
                elif rec.kind is RecordKind.FOREIGN:
                    self.notices.append(rec.fields[0] if rec.fields else "")
                else:
                    got.append(rec)
        return got

    def _write_master(self, data: bytes) -> None:
        """Queue `data` for bash; flushed as the pty accepts it (never blocks)."""
        self._out_pending += data
        self._flush_master()

    def _flush_master(self) -> None:
        while self._out_pending:
            try:
                n = os.write(self.master, self._out_pending)
            except BlockingIOError:
                return
            except OSError:
                self._out_pending = b""
                return
            self._out_pending = self._out_pending[n:]

    def _reap(self) -> int:
        if self.exit_status is None:
            try:
                _, status = os.waitpid(self.pid, 0)
                self.exit_status = _status_of(status)
                if os.WIFSIGNALED(status):
                    self.exit_signal = os.WTERMSIG(status)
            except ChildProcessError:
                self.exit_status = 0
        return self.exit_status

    def _apply_record(self, rec: Record, eof: bytes = b"\x04") -> None:
        _debug("record", rec)
        if rec.kind is RecordKind.DONE and len(rec.fields) >= 4:
            try:
                self.state.status = int(rec.fields[0])
            except ValueError:
                self.state.status = 1
            self.state.cwd = rec.fields[1]
            self.state.ps1 = _strip_rl_markers(rec.fields[2])
            self.state.ps2 = _strip_rl_markers(rec.fields[3])
            # Reported by the PS1 rescue path: PROMPT_COMMAND is gone, repair it.
            self._needs_repair = len(rec.fields) > 4 and rec.fields[4] == "1"
            if len(rec.fields) > 5 and rec.fields[5] in ("vi", "emacs"):
                self.state.editing_mode = rec.fields[5]
            if len(rec.fields) > 7:
                self.state.histchars = rec.fields[6]
                self.state.histverify = rec.fields[7] == "v"
        elif rec.kind is RecordKind.TYPEAHEAD:
            # Pieces split where the tty queued an end-of-file mark: the
            # Ctrl-D typed there (or a Ctrl-@, which queues the same NUL).
            self.state.typeahead = eof.join(
                f.encode("utf-8", "surrogateescape") for f in rec.fields)

    # --- the first prompt -----------------------------------------------------------

    def wait_ready(self, timeout: float = 30.0, out_fd: int | None = None) -> bool:
        """Wait for the first prompt; start-up output goes to `out_fd`."""
        run = _Run(phase=Phase.RUN)
        run.last_activity = time.monotonic()
        deadline = time.monotonic() + timeout
        while run.result is None and time.monotonic() < deadline:
            self._step(run, None, out_fd, min(0.2, max(0.0, deadline - time.monotonic())))
        return run.result is not None and run.result.kind is RunKind.DONE

    # --- running a line -------------------------------------------------------------

    def send_line(self, text: str, tty_fd: int | None = None) -> None:
        self.settle_now()  # (never before bash is back at readline: see `settling`)
        if tty_fd is not None:
            self.sync_size_from(tty_fd)
        self.state.typeahead = b""
        if self._foreign_running:
            self._settle()
        _debug("send", text)
        # The tokens lead the line: keys injected while readline waited (TIOCSTI)
        # sit before them in readline's buffer, and __ag_accept refuses the lot.
        self._write_master(_PASTE_START + self._line_token(lead=True) + sanitize_line(text)
                           + _PASTE_END + b"\r")

    def _line_token(self, lead: bool = False) -> bytes:
        """What __ag_accept checks at Enter: US TOKEN US NEXT US before the line
        (`lead`), or US TOKEN US NEXT after it (the repair line, which a bash
        without our hooks must read as a comment). No token: a bash without
        our hooks, e.g. in tests that drive one directly."""
        if not self._token:
            return b""
        self._token_sent = line_token()
        return f"\x1f{self._token}\x1f{self._token_sent}{chr(0x1f) if lead else ''}".encode()

    def _token_taken(self) -> None:
        """bash accepted the line we sent (a mark says so): its next token is current."""
        if self._token_sent is not None:
            self._token, self._token_sent = self._token_sent, None

    def run(self, text: str, in_fd: int | None, out_fd: int | None,
            early: bytes = b"", settle_later: bool = False) -> RunResult:
        """Send `text` and pass the terminal through until bash is back at a prompt.

        `in_fd`/`out_fd` are the user's terminal (None: no passthrough, for
        tests); the caller puts it in raw mode (see `raw_terminal`). `early`
        are keys typed after Enter but before the passthrough began: they go
        to the command once it runs, like keys typed then would.
        """
        self.send_line(text, in_fd)
        return self.passthrough(in_fd, out_fd, early=early, settle_later=settle_later)

    def passthrough(self, in_fd: int | None, out_fd: int | None,
                    phase: Phase = Phase.ECHO, early: bytes = b"",
                    settle_later: bool = False) -> RunResult:
        """Pass the terminal through until bash is back at a prompt (mark B).

        `settle_later`: return already at the command's D mark (status, cwd and
        PS1 known, the ack sent) when nothing is left for this run to deliver
        (no held keys, no repair due); the rest of the run (bash drains
        typeahead up to the ack, then draws PS1: mark B) is read by
        `read_idle` from the next prompt's event loop, which draws meanwhile.
        `settling` is True until B; every method that writes to bash first
        waits for it (`settle_now`).
        """
        self.settle_now()
        run = _Run(phase=Phase(phase), early=early, settle_later=settle_later)
        run.last_activity = time.monotonic()
        if phase is not Phase.RUN_QUIET:
            self.out_tail = b""  # (whether this run's output ends a line: session.py)
        old_winch = None
        if in_fd is not None and os.isatty(in_fd):
            def on_winch(_sig: int, _frame: object) -> None:
                self.sync_size_from(in_fd)
            old_winch = signal.signal(signal.SIGWINCH, on_winch)
        try:
            while run.result is None and not run.handed_over:
                if (run.phase is Phase.RUN and not run.repaired and not self._out_pending
                        and in_fd is not None and out_fd is not None):
                    self._pump(run, in_fd, out_fd)
                    if run.result is not None or run.handed_over:
                        break
                self._step(run, in_fd, out_fd, _STALL_S)
            if run.handed_over and run.result is None:
                self._settling = run
                return RunResult(RunKind.DONE, self.state.status)
            # Keys never delivered (bash wanted a continuation line, or the
            # command ended first) stay the user's: the prompt gets them.
            if run.early or run.held:
                self.state.typeahead = run.early + run.held + self.state.typeahead
        finally:
            if old_winch is not None:
                signal.signal(signal.SIGWINCH, old_winch)
        result = run.result
        assert result is not None  # the loop above ends only with a result
        result.repaired = run.repaired or run.repair_key_sent
        return result

    def cancel_continuation(self) -> RunResult:
        """Abandon a half-entered command (bash is at PS2): ^C, then the prompt."""
        self.settle_now()
        self._write_master(b"\x03")
        return self.passthrough(None, None, phase=Phase.RUN_QUIET)

    def _pump(self, run: _Run, in_fd: int, out_fd: int) -> None:
        """The command's output to the terminal while it runs: the hot loop.

        Every CPU-ms the relay takes is a ms the reader of the user's terminal
        does not get on a 2-core machine, so plain output skips the per-piece
        work of `_step` (the gain is small; the loop mostly waits in write():
        bench/relay_floor.py compares it with a bare 20-line relay, and
        bench/README.md, "Figures behind design choices", has the profile).
        Only plain output is handled here: anything else (a key, a mark, an error, a stall)
        returns to `_step`, which sees the same still-readable fd.
        The FIFO is left out: bash writes no record while a command runs
        (the D record comes with the D mark, read then).
        """
        master = self.master
        rlist = [master, in_fd]
        plain = self.marks.plain
        while True:
            try:
                readable, _, _ = select.select(rlist, [], [], _STALL_S)
            except InterruptedError:  # pragma: no cover - PEP 475 retries
                continue
            if master not in readable or in_fd in readable:
                return
            try:
                data = os.read(master, _READ)
            except BlockingIOError:
                continue
            except OSError:
                return  # bash has gone: `_step` finds the same error and reaps it
            if not data:
                return
            run.last_activity = time.monotonic()
            if plain(data):
                # (the instant prompt asks whether start-up output ended a line)
                self.out_tail = data[-64:]
                self._emit(out_fd, data)
                continue
            self._handle_output(run, data, out_fd)
            if (run.phase is not Phase.RUN or run.result is not None or run.handed_over
                    or self._out_pending):
                return

    def _step(self, run: _Run, in_fd: int | None, out_fd: int | None, timeout: float) -> None:
        rlist = [self.master, self.fifo]
        if self.pidfd is not None:
            rlist.append(self.pidfd)
        # The user's keys go to bash only while a command runs: before that
        # readline is still taking our line (a ^Z there would be lost), after
        # the D mark they must not reach readline unclassified (typeahead).
        if in_fd is not None and run.phase is Phase.RUN:
            rlist.append(in_fd)
        wlist = [self.master] if self._out_pending else []
        try:
            readable, writable, _ = select.select(rlist, wlist, [], timeout)
        except InterruptedError:  # pragma: no cover - PEP 475 retries
            return
        if writable:
            self._flush_master()
        if in_fd is not None and in_fd in readable:
            try:
                data = os.read(in_fd, _READ)
            except OSError:
                data = b""
            if data:
                _debug("stdin", data)
                if not run.got_d and (self._bash_at_readline() or self._replaced_by_bash()):
                    # Our hooks are gone (`exec bash`…): these keys would reach
                    # readline unclassified. Keep them for the prompt; repair as
                    # soon as readline is up.
                    run.held += data
                    self._check_stalled(run, out_fd, now=True)
                else:
                    self._write_master(data)
                    run.typed_nul = run.typed_nul or b"\0" in data
        if self.fifo in readable:
            self._pending_records.extend(self._read_fifo())
            self._handle_records(run)
        if self.master in readable:
            out = self._read_master()
            if out is None:
                self._pending_records.extend(self._read_fifo())
                tail = self.marks.flush()
                if tail and out_fd is not None and run.phase not in (Phase.ECHO, Phase.RUN_QUIET):
                    self._emit(out_fd, tail)
                run.result = RunResult(RunKind.EXITED, self._reap())
                return
            if out:
                run.last_activity = time.monotonic()
                self._handle_output(run, out, out_fd)
        if (self.pidfd is not None and self.pidfd in readable and run.result is None
                and self.master not in readable):
            self._gone_while_held(run, out_fd)
            return
        if not readable and run.result is None:
            self._check_stalled(run, out_fd)

    def _emit(self, out_fd: int, data: bytes) -> None:
        """Programs' output to the user's terminal, through the `[terminal]` filter."""
        if self.osc_filter is not None:
            data = self.osc_filter.feed(data)
        if data and self._capture is not None:
            self._capture += data  # (read from the prompt's loop: it prints them)
        elif data:
            _write_all(out_fd, data)

    def _gone_while_held(self, run: _Run, out_fd: int | None) -> None:
        """bash has exited but the pty is still open (a background job holds it)."""
        while (data := self._read_master()):
            self._handle_output(run, data, out_fd)
        if run.result is None:
            self.gone_while_held = True
            run.result = RunResult(RunKind.EXITED, self._reap())

    def _handle_records(self, run: _Run) -> None:
        for rec in list(self._pending_records):
            if rec.kind is RecordKind.TYPEAHEAD:
                self._apply_record(rec, _eof_for(run))
                run.got_t = True
                self._pending_records.remove(rec)
            elif rec.kind is RecordKind.REPAIRED and run.repaired:
                # Hooks reinstalled by __ag_repair; its D record carried the state.
                self._pending_records.remove(rec)
                d = self._take_record(RecordKind.DONE)
                if d is not None:
                    self._apply_record(d)
                run.result = RunResult(RunKind.DONE, self.state.status)

    def _take_record(self, kind: RecordKind) -> Record | None:
        """The newest pending record of `kind`; older ones of that kind are stale."""
        self._pending_records.extend(self._read_fifo())
        found = [r for r in self._pending_records if r.kind == kind]
        if not found:
            return None
        self._pending_records = [r for r in self._pending_records if r.kind != kind]
        return found[-1]

    def _handle_output(self, run: _Run, data: bytes, out_fd: int | None) -> None:
        for piece in self.marks.feed(data):
            if run.result is not None:
                # After the prompt is back, anything more is idle output.
                if isinstance(piece, bytes) and out_fd is not None:
                    self._emit(out_fd, piece)
                continue
            if isinstance(piece, bytes):
                self._output_bytes(run, piece, out_fd)
                continue
            self._output_mark(run, piece, out_fd)

    def _output_bytes(self, run: _Run, piece: bytes, out_fd: int | None) -> None:
        if run.phase is Phase.ECHO:
            run.dropped += piece
            i = run.dropped.find(_RL_LEAVE)
            if i >= 0:
                rest = bytes(run.dropped[i + len(_RL_LEAVE):])
                run.dropped.clear()
                if rest.startswith(b"\r"):
                    rest = rest[1:]
                # Readline is done with the line, but bash may still ask for a
                # continuation (P): output passes now (syntax errors), the
                # user's keys only once the command runs (C).
                run.phase = Phase.PARSED
                if rest and out_fd is not None:
                    self._emit(out_fd, rest)
            return
        if run.phase is Phase.AFTER_D:
            # Readline re-enabling bracketed paste is for its own prompt, which
            # the front end draws; the ack may be echoed if it beat `read -s`,
            # and that echo may come in two reads: a tail that could start it
            # waits for the next piece (dropped if the prompt comes first).
            piece = run.echo_held + piece
            piece = piece.replace(self._ack_echo, b"").replace(b"\x1b[?2004h", b"")
            keep = _partial_tail(piece, self._ack_echo)
            run.echo_held = piece[len(piece) - keep:] if keep else b""
            piece = piece[:len(piece) - keep]
        if run.phase is Phase.RUN_QUIET or out_fd is None or not piece:
            return
        self.out_tail = piece[-64:]
        self._emit(out_fd, piece)

    def _output_mark(self, run: _Run, mark: Mark, out_fd: int | None) -> None:
        _debug("mark", mark, run.phase, run.got_d, run.got_t)
        if mark.kind in (MarkKind.COMMAND, MarkKind.MORE):
            self._token_taken()
        if mark.kind is MarkKind.COMMAND:
            if run.phase in (Phase.ECHO, Phase.PARSED):
                run.dropped.clear()
                self._enter_run(run)
        elif mark.kind is MarkKind.MORE:
            # (While cancelling, a P is readline redrawing PS2 before the ^C lands;
            # while readline still has the line, a P is its redraw after the
            # token check at Enter: only a PS2 after readline left counts.)
            if run.phase in (Phase.PARSED, Phase.RUN):
                run.result = RunResult(RunKind.MORE, self.state.status)
        elif mark.kind is MarkKind.DONE:
            rec = self._take_record(RecordKind.DONE)
            if rec is None:
                return  # a D mark without its record is forged: ignore it
            sent = self._token_sent
            if sent is not None and any(sent in text for text in self.notices):
                # bash emptied our own line: keys that did not come from us were in
                # readline's buffer before it (injected while bash waited), or its
                # token did not match. Say so once, never showing the tokens.
                ours = [t for t in self.notices if sent in t]
                self.notices = [t for t in self.notices if sent not in t]
                # (only before a leading-token line: the repair line's own text,
                # which names the nonce, is never shown)
                lead = f"\x1f{self._token}\x1f{sent}\x1f"
                before = [t.split(lead, 1)[0] for t in ours if lead in t]
                self.notices += [f"{b} (found before your line, which did not run either)"
                                 for b in before if b]
                if not any(before):
                    self.notices.append("(a line from attyguard itself: its token did not match)")
                self._token_sent = None
            else:
                self._token_taken()  # (an empty line: accepted, no C)
            self._apply_record(rec)
            run.got_d = True
            run.phase = Phase.AFTER_D
            self._write_master(self._ack)
            if (run.settle_later and not self._needs_repair and not run.repaired
                    and not run.early and not run.held and not self._out_pending):
                run.handed_over = True
        elif mark.kind is MarkKind.PROMPT:
            if run.got_d:
                if not run.got_t:
                    rec = self._take_record(RecordKind.TYPEAHEAD)
                    if rec is not None:
                        self._apply_record(rec, _eof_for(run))
                run.result = RunResult(RunKind.DONE, self.state.status)
                if self._needs_repair:
                    # readline is reading now: the bind -x key reinstalls the hooks
                    # (its R record and redraw arrive while idle and are ignored).
                    self._needs_repair = False
                    run.repair_key_sent = True
                    self._write_master(_KEY_REPAIR)
            elif run.phase is not Phase.ECHO and not run.repaired:
                # (In the echo phase a B is readline redrawing the old prompt.)
                # A prompt without our D: PROMPT_COMMAND was unset or replaced.
                run.repaired = True
                self._write_master(_KEY_REPAIR)

    def _enter_run(self, run: _Run) -> None:
        run.phase = Phase.RUN
        if self.on_run is not None:
            self.on_run()
        if run.early:
            early, run.early = run.early, b""
            self._write_master(early)

    def _check_stalled(self, run: _Run, out_fd: int | None, now: bool = False) -> None:
        """Hooks gone entirely (e.g. `exec bash`): bash idles at its own prompt."""
        if run.repaired or (not now and time.monotonic() - run.last_activity < _STALL_S):
            return
        if run.got_d or not self._bash_at_readline():
            return
        if run.phase is Phase.RUN_QUIET and run.wakes < 3:
            # Cancelling a continuation: under load the ^C was seen to be lost
            # at PS2 (bash still at readline, no D); another one is harmless.
            run.wakes += 1
            run.last_activity = time.monotonic()
            self._write_master(b"\x03")
            return
        # __ag_post's own `read` looks like readline too, but it starts only
        # after its D mark is written: checked in this order, a D still in
        # the pty buffer shows up here and we let it be handled normally.
        if select.select([self.master, self.fifo], [], [], 0)[0]:
            return
        run.repaired = True
        run.phase = Phase.ECHO
        run.dropped.clear()
        if out_fd is not None:
            # bash drew its own prompt on this line: the front end draws ours.
            _write_all(out_fd, b"\r\x1b[K")
        # Two cases: a new bash (`exec bash`) with none of our hooks, which
        # needs the secrets and reads the token as a comment; or our own bash
        # whose PROMPT_COMMAND lost __ag_post, whose Enter still checks the
        # token (hooks.bash: __ag_accept) and where the secrets are readonly.
        token = self._line_token()
        fix = (f"[[ -n ${{__ag_installed-}} ]] || __ag_nonce={self.nonce} "
               f"__ag_dir={_sq(str(self.dir))} __ag_tok={self._token_sent or self._token}; "
               f". {_sq(str(self.hooks))} #")
        self._write_master(b"\x15" + _PASTE_START + fix.encode() + token + _PASTE_END + b"\r")

    def _replaced_by_bash(self) -> bool:
        """`exec bash` replaced our bash, which is itself in the foreground.

        The new bash has none of our hooks: nothing drains keys queued on the
        pty before its readline starts and reads them as a command line. While
        it starts (and runs its rc files itself) the terminal is cooked, so
        `_bash_at_readline` cannot tell it from the `read` builtin; its
        command line can. A program the new bash's rc files start runs in its
        own process group and still gets the keys (a passphrase prompt must
        work), so keys typed during such a program can still reach readline.
        """
        if self.argv is None:
            return False
        try:
            if os.tcgetpgrp(self.master) != self.pid:
                return False
            with open(f"/proc/{self.pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")[:-1]
        except OSError:
            return False
        return argv != self.argv and interactive_bash_argv(argv)

    def _bash_at_readline(self) -> bool:
        """bash itself (no job) is in the foreground, reading a line with readline."""
        try:
            if os.tcgetpgrp(self.master) != self.pid:
                return False
            attrs = termios.tcgetattr(self.master)
        except OSError:
            return False
        iflag, lflag = attrs[0], attrs[3]
        # readline runs the tty with ICANON, ECHO and ICRNL off; the `read`
        # builtin keeps ICRNL even with -s/-n/-d (so __ag_post's read is not it).
        return not (lflag & (termios.ICANON | termios.ECHO)) and not (iflag & termios.ICRNL)

    # --- idle: output while the prompt is shown ---------------------------------------

    @property
    def settling(self) -> bool:
        """A run handed over at its D mark (`passthrough(settle_later=True)`) has not seen
        mark B yet: bash is still draining typeahead and has not drawn its prompt.

        Nothing may be sent to bash until then: a line written now would reach
        a cooked tty (the `read` of the ack) instead of readline, or be
        drained as typeahead. `read_idle` (the prompt's reader of the pty)
        moves the run on; `settle_now` waits for it.
        """
        return self._settling is not None

    def _settle_read(self, run: _Run) -> bool:
        """Read and handle what bash wrote for a settling run; False: bash has gone."""
        data = self._read_master()
        if data is None or (not data and self.has_exited()):
            self._settling = None
            self.gone_while_held = data is not None
            self._reap()
            return False
        if data:
            self._handle_output(run, data, -1)  # (-1: only ever captured, see `_emit`)
        if run.result is not None:
            self._settling = None
        return True

    def settle_now(self, timeout: float = 5.0) -> None:
        """Wait until a settling run has seen mark B (bash idle at readline again).

        Its output, if any, is kept for the next `read_idle`. Bounded like
        bash's own wait for the ack (`read -t 5` in hooks.bash).
        """
        run = self._settling
        if run is None:
            return
        deadline = time.monotonic() + timeout
        self._capture = bytearray(self._held_capture)
        try:
            while self._settling is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    self._settling = None  # (stops waiting, as bash stops waiting for the ack)
                    break
                if select.select([self.master], [], [], left)[0] and not self._settle_read(run):
                    break
        finally:
            self._held_capture = bytes(self._capture)
            self._capture = None

    def read_idle(self) -> bytes | None:
        """Output that arrived while idle (background jobs), marks stripped; None: bash gone.

        While a run is settling (see `settling`), its end is read here: the
        output that passes is returned like idle output.
        """
        held, self._held_capture = self._held_capture, b""
        run = self._settling
        if run is not None:
            self._capture = bytearray(held)
            try:
                if not self._settle_read(run):
                    return None
                return bytes(self._capture)
            finally:
                self._capture = None
        data = self._read_master()
        if data is None or (not data and self.has_exited()):
            self.gone_while_held = data is not None
            self._reap()
            return None
        out = b""
        self._pending_records.extend(self._read_fifo())  # (an F comes before its D)
        if self.notices:
            self._foreign_running = True
        for piece in self.marks.feed(data):
            if isinstance(piece, bytes):
                out += self.osc_filter.feed(piece) if self.osc_filter is not None else piece
            elif piece.kind is MarkKind.DONE and self._take_record(RecordKind.DONE) is not None:
                # bash ran an (emptied) line that did not come from us, e.g. keys
                # injected with TIOCSTI: its hooks wait for the ack; what they
                # drain is not the user's typing.
                self._write_master(self._ack)
                self._foreign_running = False
        # Only answers (completion, state, history) are expected while idle, and
        # they are read synchronously; anything else here (an R, a T) is stale.
        self._pending_records = [r for r in self._pending_records + self._read_fifo()
                                 if r.kind in (RecordKind.COMPLETIONS, RecordKind.STATE,
                                               RecordKind.HISTORY)]
        for text in self.notices:
            out += _notice(text)
        self.notices.clear()
        return held + out

    def _settle(self, timeout: float = 2.0) -> None:
        """Let bash finish a foreign (emptied) line before ours goes in."""
        deadline = time.monotonic() + timeout
        while self._foreign_running and time.monotonic() < deadline:
            left = max(0.0, deadline - time.monotonic())
            if select.select([self.master], [], [], left)[0] and self.read_idle() is None:
                return
        self._foreign_running = False
    def has_exited(self) -> bool:
        """bash itself has ended (its pty may still be held open by a job)."""
        if self.exit_status is not None:
            return True
        if self.pidfd is None:
            return False
        return bool(select.select([self.pidfd], [], [], 0)[0])

    # --- completion -----------------------------------------------------------------

    def complete(self, line: str, point: int, timeout: float = 2.0) -> tuple[str, list[str]]:
        """Ask the live bash for completions of `line` at `point`: (word, candidates)."""
        self.settle_now()
        req = self.dir / "req"
        tmp = self.dir / "req.tmp"
        point_bytes = len(line[:point].encode("utf-8", "surrogateescape"))
        tmp.write_bytes(f"{point_bytes}\n".encode() + line.encode("utf-8", "surrogateescape")
                        + b"\0")
        os.replace(tmp, req)
        self._write_master(_KEY_COMPLETE)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rec = self._take_record(RecordKind.COMPLETIONS)
            if rec is not None:
                return (rec.fields[0] if rec.fields else ""), list(rec.fields[1:])
            select.select([self.fifo], [], [], max(0.0, deadline - time.monotonic()))
        return "", []

    # --- the shell's state (attyguard/shell/state.py) ------------------------------

    def names(self) -> tuple[str, ...]:
        """What the hooks reported at the last prompt (N record; shell/state.py)."""
        return self.names_fields

    def fetch_state(self, request: bytes, timeout: float = 2.0) -> tuple[str, ...] | None:
        """One round trip: `__ag_state` answers `request` with an `S` record (None: no answer).

        bash must be idle at its prompt (readline reading), as for `complete`.
        """
        self.settle_now()
        self._take_record(RecordKind.STATE)  # (a late answer to an earlier request is stale)
        # Written whole before the key is sent: bash reads it only on that key.
        fd = os.open(self.dir / "sreq", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, request)
        finally:
            os.close(fd)
        self._write_master(_KEY_STATE)
        deadline = time.monotonic() + timeout
        while True:
            rec = self._take_record(RecordKind.STATE)
            if rec is not None:
                return rec.fields
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            select.select([self.fifo], [], [], left)

    def expand_history(self, line: str, timeout: float = 2.0) -> tuple[int, str, str] | None:
        """bash's own history expansion of `line` (`history -p`, nothing stored):
        (status, expanded text, bash's error message); None if bash did not answer."""
        self.settle_now()
        self._take_record(RecordKind.HISTORY)
        tmp = self.dir / "hreq.tmp"
        tmp.write_bytes(line.encode("utf-8", "surrogateescape") + b"\0")
        os.replace(tmp, self.dir / "hreq")
        self._write_master(_KEY_HISTORY)
        deadline = time.monotonic() + timeout
        while True:
            rec = self._take_record(RecordKind.HISTORY)
            if rec is not None and len(rec.fields) >= 3:
                try:
                    status = int(rec.fields[0])
                except ValueError:
                    status = 1
                # (`history -p` ends its output with a newline of its own)
                return status, rec.fields[1].removesuffix("\n"), rec.fields[2].strip()
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            select.select([self.fifo], [], [], left)

    # --- the end --------------------------------------------------------------------

    def exit(self, in_fd: int | None, out_fd: int | None) -> RunResult:
        """Ask bash to exit as if the user typed `exit` (history saved, EXIT traps run)."""
        return self.run("exit", in_fd, out_fd)

    def close(self) -> int:
        with contextlib.suppress(OSError):
            os.close(self.master)
        with contextlib.suppress(OSError):
            os.close(self.fifo)
        if self.pidfd is not None:
            with contextlib.suppress(OSError):
                os.close(self.pidfd)
            self.pidfd = None
        if self.exit_status is None:
            with contextlib.suppress(OSError):
                os.kill(self.pid, signal.SIGHUP)
        status = self._reap()
        # (with the judged copies of rc and sourced files kept in it)
        remove_session_dir(str(self.dir))
        return status


@contextlib.contextmanager
def raw_terminal(fd: int) -> Iterator[None]:
    """The user's terminal in raw mode, switched with TCSANOW (keeps typeahead)."""
    if not os.isatty(fd):
        yield
        return
    old = termios.tcgetattr(fd)
    tty.setraw(fd, termios.TCSANOW)
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSANOW, old)


def _pidfd(pid: int) -> int | None:
    """A pidfd for `pid` (readable once it exits); None where the kernel has none."""
    try:
        return os.pidfd_open(pid)
    except (OSError, AttributeError):
        return None


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except BlockingIOError:
            select.select([], [fd], [], 1.0)
            continue
        view = view[n:]


# bash options that take the next word as their argument.
_BASH_OPTARG = frozenset({b"--rcfile", b"--init-file", b"-o", b"+o", b"-O", b"+O"})


def interactive_bash_argv(argv: list[bytes]) -> bool:
    """Would this command line (from /proc/PID/cmdline) start an interactive bash
    on a terminal? bash's rule: -i, or neither -c nor a script operand."""
    if not argv or os.path.basename(argv[0]).lstrip(b"-") != b"bash":
        return False
    forced = False
    i = 1
    while i < len(argv):
        arg = argv[i]
        if arg == b"--":
            i += 1
            break
        if arg in _BASH_OPTARG:
            i += 2
            continue
        if arg.startswith(b"--"):
            i += 1
            continue
        if len(arg) > 1 and arg[:1] in (b"-", b"+"):
            letters = arg[1:]
            if arg[:1] == b"-" and b"c" in letters:
                return False
            forced = forced or (arg[:1] == b"-" and b"i" in letters)
            i += 2 if letters[-1:] in (b"o", b"O") else 1
            continue
        break
    return forced or i >= len(argv)


def _get_size(fd: int) -> tuple[int, int]:
    rows, cols, _, _ = struct.unpack("HHHH", fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8))
    return rows, cols


def _set_size(fd: int, size: tuple[int, int]) -> None:
    set_size(fd, size)


_RL_REGION = re.compile("\x01([^\x01\x02]*)\x02")
_SGR_ONLY = re.compile(r"(?:\x1b\[[0-9;:]*m)*")


def _strip_rl_markers(text: str) -> str:
    """A prompt as bash expanded it (${PS1@P}), made fit for prompt_toolkit's ANSI().

    bash turns \\[ \\] into \\001 \\002 (readline's invisible regions).
    Regions holding only SGR colours are unwrapped: ANSI() turns those into
    its own styles. Others keep the markers, which ANSI() writes out as
    zero-width escapes: without them it would print the text of, e.g., the
    window title Debian's default PS1 sets (`0;user@host: ~`). Unpaired
    markers are all dropped (ANSI() would hide the rest of the prompt).
    \\n comes as CR LF (for readline's own redisplay): the CR would show as ^M.
    """
    text = _RL_REGION.sub(
        lambda m: m.group(1) if _SGR_ONLY.fullmatch(m.group(1)) else m.group(0), text)
    if "\x01" in _RL_REGION.sub("", text) or "\x02" in _RL_REGION.sub("", text):
        text = text.replace("\x01", "").replace("\x02", "")
    return text.replace("\r\n", "\n")


def _notice(text: str) -> bytes:
    """The one line telling the user a line reached bash not through attyguard."""
    from attyguard.shell.text import one_line

    return (f"\r\nattyguard: input that did not come from attyguard reached bash and was "
            f"not run: {one_line(text, 120)}\r\n").encode("utf-8", "replace")


def _sq(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"
