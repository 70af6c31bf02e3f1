"""The shell's side of the daemon socket: DaemonClient and WarnSubscriber (seed V2-D).

`DaemonClient` is called on every command line, so it must never make the
shell wait: every call has one deadline (`guard.daemon_timeout_ms`) covering
connect, send and reply, and any failure — no socket, refused, slow, killed,
garbage — is `None`, which sends the Guard to its in-process verdict. A dead
daemon is not re-dialled on every command: failures back off (0.25 s doubling
to 5 s) but are always retried, so a restarted daemon is picked up again.

Who answers matters: a verdict is only taken from a socket served by root
(or the configured daemon user), checked with SO_PEERCRED on every new
connection, in a directory that only they can write (and whose ancestors
no one else can swap); anything else is "unavailable" with the reason, so a
socket any user can put at `daemon_socket_path` is never asked.

Synchronous sockets on purpose: the shell's enforcement point is synchronous
and a blocking socket with a timeout is the simplest thing that keeps the
deadline. `WarnSubscriber` is a daemon thread holding a `subscribe` stream.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import stat
import struct
import threading
import time
from collections.abc import Callable
from typing import Any

from attyguard.daemon import protocol
from attyguard.engine.state import ShellState
from attyguard.engine.verdict import Verdict

__all__ = ["DaemonClient", "WarnSubscriber"]

_BACKOFF_FIRST = 0.25
_BACKOFF_MAX = 5.0
_MAX_REPLY = 16 << 20  # a reply longer than this is a broken daemon, not a verdict


class _Unavailable(Exception):
    """Internal: why this call gets no answer (becomes `state`)."""

    def __init__(self, why: str, *, retry_now: bool = False, waiting: bool = False) -> None:
        super().__init__(why)
        self.why = why
        self.retry_now = retry_now  # a reused connection died: one fresh dial may still work
        self.waiting = waiting  # still backing off: not a new failure, the clock is not reset


def allowed_uids(daemon_user: str = "") -> tuple[frozenset[int], str | None]:
    """root, plus `daemon_user`'s uid; and a one-line problem if that user is unknown."""
    if not daemon_user:
        return frozenset({0}), None
    import pwd

    try:
        return frozenset({0, pwd.getpwnam(daemon_user).pw_uid}), None
    except KeyError:
        return frozenset({0}), f"daemon_user {daemon_user!r} does not exist; only root is asked"


def directory_problem(socket_path: str, uids: frozenset[int]) -> str | None:
    """Why the socket's directory could hold a socket someone else put there, else None.

    The directory itself: owned by an allowed uid, writable by no one else.
    Its ancestors: owned by an allowed uid and not writable by others,
    unless sticky (/tmp): then no one else can rename what is inside.
    """
    directory = os.path.dirname(os.path.abspath(socket_path)) or "/"
    first = True
    while True:
        try:
            st = os.stat(directory)
        except OSError as exc:
            return f"cannot inspect {directory}: {exc.strerror}"
        if st.st_uid not in uids:
            return f"{directory} is owned by uid {st.st_uid}, not by root or the daemon user"
        loose = st.st_mode & 0o022
        if loose and (first or not st.st_mode & stat.S_ISVTX):
            return f"{directory} is writable by others (mode {st.st_mode & 0o7777:o})"
        if directory == "/":
            return None
        directory = os.path.dirname(directory)
        first = False


def peer_problem(sock: socket.socket, uids: frozenset[int]) -> str | None:
    """Why the process listening on `sock` must not be asked (SO_PEERCRED), else None."""
    try:
        raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    except OSError as exc:
        return f"cannot tell who serves the socket: {exc.strerror}"
    pid, uid, _gid = struct.unpack("3i", raw)
    if uid not in uids:
        return f"the socket is served by uid {uid} (pid {pid}), not by root or the daemon user"
    return None


class DaemonClient:
    def __init__(self, socket_path: str, timeout_ms: int, *,
                 max_request_bytes: int = 65536, daemon_user: str = "") -> None:
        self.socket_path = socket_path
        # Who may answer: root and the configured daemon user (never anyone else).
        self.uids, self.user_problem = allowed_uids(daemon_user)
        self.timeout = max(1, timeout_ms) / 1000.0
        # The daemon's default limit: a longer request would only earn a
        # too_large error after being pushed through the socket, or a timeout.
        self.max_request_bytes = max_request_bytes
        self._sock: socket.socket | None = None
        self._owner_pid = 0  # the connection identifies a process (SO_PEERCRED): not after fork
        self._buffer = bytearray()
        self._state = "unavailable: not connected yet"
        self._backoff = 0.0
        self._retry_at = 0.0
        self._next_id = 0
        self._lock = threading.Lock()
        self.exec_guard = ""  # the daemon's ebpf_mode as `register` answered ("" before)

    @property
    def state(self) -> str:
        """'connected' or 'unavailable: <why>' (for the status bar)."""
        return self._state

    def classify(self, line: str, state: ShellState | None = None) -> Verdict | None:
        """`state`: the shell's values of the names `line` uses (docs/protocol.md)."""
        if state:
            reply = self.request("classify", line=line, state=protocol.state_to_json(state))
        else:
            reply = self.request("classify", line=line)
        if reply is None:
            return None
        try:
            return Verdict.from_json(reply["verdict"])
        except (KeyError, TypeError, ValueError):
            self._state = "unavailable: malformed verdict from the daemon"
            return None

    def report_block(self, verdict: Verdict) -> None:
        """Mark this shell's own PID Critical: its next line is refused outright (V2-J-2)."""
        self.request("mark", pid=os.getpid(), level="critical", reason=verdict.reason[:200])

    def register(self) -> dict[str, Any] | None:
        """Tell the daemon this shell starts: its process tree is guarded (issue 10).

        The daemon identifies the process by SO_PEERCRED, so the pid sent is
        only a check. Remembers whether the daemon's exec guard is on.
        """
        reply = self.request("register", pid=os.getpid())
        if reply is not None:
            self.exec_guard = str(reply.get("exec_guard", ""))
        return reply

    def trusted(self, line: str) -> None:
        """This line was allowed by the user's trust store: its execs may run (issue 10).

        Only when the exec guard is on: otherwise a trusted line costs no round trip.
        """
        if self.exec_guard in ("warn", "enforce"):
            self.request("trusted", line=line)

    def request(self, op: str, **args: Any) -> dict[str, Any] | None:
        """One round trip; the reply object when ok, else None. Never raises."""
        with self._lock:
            deadline = time.monotonic() + self.timeout
            for _attempt in range(2):
                try:
                    return self._round_trip(op, args, deadline)
                except _RequestError:
                    return None  # the daemon is fine; this request just has no answer
                except _Unavailable as exc:
                    self._disconnect()
                    if exc.retry_now and time.monotonic() < deadline:
                        continue
                    if not exc.waiting:
                        self._fail(exc.why)
                    return None
                except Exception as exc:  # never let a client bug reach the shell
                    self._disconnect()
                    self._fail(f"client error: {type(exc).__name__}")
                    return None
            return None

    def close(self) -> None:
        with self._lock:
            self._disconnect()
            self._state = "unavailable: closed"

    # ---- internals

    def _fail(self, why: str) -> None:
        self._state = f"unavailable: {why}"
        self._backoff = min(_BACKOFF_MAX, max(_BACKOFF_FIRST, self._backoff * 2))
        self._retry_at = time.monotonic() + self._backoff

    def _disconnect(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
        self._sock = None
        self._buffer.clear()

    def _connect(self, deadline: float) -> tuple[socket.socket, bool]:
        """The open connection (reused=True) or a fresh one."""
        if self._sock is not None and self._owner_pid == os.getpid():
            return self._sock, True
        self._disconnect()
        if time.monotonic() < self._retry_at:
            raise _Unavailable(self._state.removeprefix("unavailable: "), waiting=True)
        problem = directory_problem(self.socket_path, self.uids)
        if problem is not None:
            raise _Unavailable(f"not asked: {problem}")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            self._dial(sock, deadline)
        except FileNotFoundError:
            sock.close()
            raise _Unavailable(f"no daemon socket at {self.socket_path}") from None
        except ConnectionRefusedError:
            sock.close()
            raise _Unavailable("daemon not running (connection refused)") from None
        except PermissionError:
            sock.close()
            raise _Unavailable(f"permission denied on {self.socket_path} "
                               "(not in the daemon's group?)") from None
        except TimeoutError:
            sock.close()
            raise _Unavailable("daemon did not accept in time") from None
        except OSError as exc:
            sock.close()
            raise _Unavailable(f"cannot connect: {exc.strerror or exc}") from None
        problem = peer_problem(sock, self.uids)
        if problem is not None:
            sock.close()
            raise _Unavailable(f"not asked: {problem}")
        self._sock = sock
        self._owner_pid = os.getpid()
        return sock, False

    def _dial(self, sock: socket.socket, deadline: float) -> None:
        # A Unix socket whose listen backlog is full answers EAGAIN at once
        # instead of waiting (even with a timeout): retry briefly within the deadline.
        while True:
            sock.settimeout(max(0.001, deadline - time.monotonic()))
            try:
                sock.connect(self.socket_path)
                return
            except BlockingIOError:
                if time.monotonic() + 0.001 >= deadline:
                    raise TimeoutError from None
                time.sleep(0.001)

    def _round_trip(self, op: str, args: dict[str, Any], deadline: float) -> dict[str, Any]:
        self._next_id += 1
        request_id = self._next_id
        data = protocol.encode_request(op, request_id, **args)
        if len(data) > self.max_request_bytes:
            raise _RequestError("request too large for the daemon")
        sock, reused = self._connect(deadline)
        if not reused and self.exec_guard and op != "register":
            # A new connection may be a restarted daemon that never heard of
            # this shell: register again first (it is idempotent).
            with contextlib.suppress(_RequestError):
                self._round_trip("register", {"pid": os.getpid()}, deadline)
        try:
            sock.settimeout(max(0.001, deadline - time.monotonic()))
            # If the daemon already closed, it may have said why first (forbidden):
            # read what it sent; _read_line ends in _ConnectionClosed if nothing.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                sock.sendall(data)
            while True:
                reply = protocol.decode_message(self._read_line(sock, deadline))
                if reply.get("ok") is False and reply.get("id") in (None, request_id):
                    error = reply.get("error") or {}
                    code = str(error.get("code", "")) if isinstance(error, dict) else ""
                    message = str(error.get("message", "")) if isinstance(error, dict) else ""
                    if code in (protocol.ErrorCode.FORBIDDEN, protocol.ErrorCode.VERSION) \
                            and reply.get("id") is None:
                        raise _Unavailable(f"refused: {message or code}")
                    if code in (protocol.ErrorCode.BUSY, protocol.ErrorCode.IDLE) \
                            and reply.get("id") is None:
                        # The daemon closed this (idle or evicted) connection
                        # before our request: a fresh one will be served.
                        raise _Unavailable(f"daemon closed the connection ({code})",
                                           retry_now=reused)
                    # A request-level error: the daemon is fine, this answer is not a verdict.
                    self._state = "connected"
                    self._backoff = 0.0
                    raise _RequestError(message)
                if reply.get("id") == request_id and reply.get("ok") is True:
                    self._state = "connected"
                    self._backoff = 0.0
                    return reply
                # Anything else (an event, a stale reply) is skipped.
        except TimeoutError:
            raise _Unavailable(f"daemon timed out after {self.timeout * 1000:.0f} ms") from None
        except (BrokenPipeError, ConnectionResetError, _ConnectionClosed):
            raise _Unavailable("connection lost", retry_now=reused) from None
        except protocol.ProtocolError:
            raise _Unavailable("garbled reply from the daemon") from None
        except OSError as exc:
            if exc.errno in (errno.EPIPE, errno.ECONNRESET, errno.ENOTCONN):
                raise _Unavailable("connection lost", retry_now=reused) from None
            raise _Unavailable(f"socket error: {exc.strerror or exc}") from None

    def _read_line(self, sock: socket.socket, deadline: float) -> bytes:
        while True:
            newline = self._buffer.find(b"\n")
            if newline >= 0:
                line = bytes(self._buffer[:newline])
                del self._buffer[: newline + 1]
                return line
            if len(self._buffer) > _MAX_REPLY:
                raise protocol.ProtocolError(protocol.ErrorCode.TOO_LARGE, "reply too long")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            sock.settimeout(remaining)
            chunk = sock.recv(65536)
            if not chunk:
                raise _ConnectionClosed
            self._buffer += chunk


class _ConnectionClosed(Exception):
    pass


class _RequestError(Exception):
    pass


class WarnSubscriber:
    """A daemon thread holding a `subscribe` stream; `on_event(text)` per warn event."""

    def __init__(
        self,
        socket_path: str,
        on_event: Callable[[str], None],
        *,
        backoff_first: float = 0.5,
        backoff_max: float = 10.0,
        on_refused: Callable[[str], None] | None = None,
        daemon_user: str = "",
    ) -> None:
        self.socket_path = socket_path
        self.uids, _problem = allowed_uids(daemon_user)  # (as DaemonClient: who may speak)
        self.on_event = on_event
        # `refused` events (an exec the kernel layer denied in this shell's
        # tree); without a handler they join the warn events.
        self.on_refused = on_refused
        self.backoff_first = backoff_first
        self.backoff_max = backoff_max
        self.connected = threading.Event()  # set while a subscription is live
        self._stopping = threading.Event()
        self._sock: socket.socket | None = None
        self._sock_lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="attyguard-warn-subscriber",
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stopping.set()
        with self._sock_lock:
            if self._sock is not None:
                # Wakes the blocked recv() at once (close alone would not).
                with contextlib.suppress(OSError):
                    self._sock.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        backoff = self.backoff_first
        while not self._stopping.is_set():
            if self._subscribe_once():
                backoff = self.backoff_first  # it worked for a while: start over
            if self._stopping.wait(backoff):
                break
            backoff = min(self.backoff_max, backoff * 2)

    def _subscribe_once(self) -> bool:
        """One connection's life; True if the subscription was accepted."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        with self._sock_lock:
            if self._stopping.is_set():
                sock.close()
                return False
            self._sock = sock
        subscribed = False
        try:
            if directory_problem(self.socket_path, self.uids) is not None:
                return False
            sock.settimeout(2.0)
            sock.connect(self.socket_path)
            if peer_problem(sock, self.uids) is not None:
                return False  # (its events would be shown as the daemon's)
            sock.sendall(protocol.encode_request("subscribe", "subscribe"))
            buffer = bytearray()
            while not self._stopping.is_set():
                newline = buffer.find(b"\n")
                if newline < 0:
                    if len(buffer) > _MAX_REPLY:
                        return subscribed
                    sock.settimeout(None if subscribed else 2.0)
                    chunk = sock.recv(65536)
                    if not chunk:
                        return subscribed
                    buffer += chunk
                    continue
                line = bytes(buffer[:newline])
                del buffer[: newline + 1]
                message = protocol.decode_message(line)
                if not subscribed:
                    if message.get("ok") is not True:
                        return False
                    subscribed = True
                    self.connected.set()
                elif message.get("event") == "warn":
                    self._deliver(str(message.get("text", "")))
                elif message.get("event") == "refused":
                    self._deliver(str(message.get("text", "")), self.on_refused)
        except (OSError, protocol.ProtocolError):
            return subscribed
        finally:
            self.connected.clear()
            with self._sock_lock:
                self._sock = None
            sock.close()
        return subscribed

    def _deliver(self, text: str, handler: Callable[[str], None] | None = None) -> None:
        # The shell's callback failing must not end the subscription.
        with contextlib.suppress(Exception):
            (handler or self.on_event)(text)

