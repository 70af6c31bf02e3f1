"""`attyguard policy run NAME -- CMD [ARGS…]`: start CMD as policy process NAME under seccomp.

The sequence (every step before the exec can fail, and then CMD never runs):

1. connect to the daemon and ask `policy_launch` for NAME: the daemon answers
   with the entry's `blocked_syscalls` (so the launcher needs no read access
   to the policy file) and waits for a descriptor on this connection;
2. build the filter (attyguard/policy/seccomp.py) and start a helper thread;
3. load the filter on the main thread only (no TSYNC: the helper stays
   unfiltered) with no_new_privs, so no root is needed;
4. the helper sends the listener with SCM_RIGHTS and reads the daemon's
   acceptance. It is the helper that does this because the main thread's own
   calls after the load may be blocked ones (a policy may block `sendmsg`,
   `close`, `futex` or `execve`): they wait in the kernel until the daemon
   holds the listener, and it lets them through as the launcher's own;
5. the main thread closes its copy of the listener (CMD must never hold it:
   it could answer its own calls) and execs CMD. The connection is
   close-on-exec: its end tells the daemon the exec happened.

Fail closed, in every mode: no daemon, no such entry, a refused listener or
any seccomp error is one line on stderr and exit status 3, with CMD not run.
(An audit-mode policy could let CMD run unwatched instead; it does not,
so a `policy run` line always means "watched" or "not started".)
"""

from __future__ import annotations

import array
import json
import os
import shutil
import socket
import sys
import threading
import time
from typing import Any

__all__ = ["LaunchError", "run"]

HANDOFF_TIMEOUT_S = 10.0


class LaunchError(Exception):
    """Why CMD was not started (one line)."""


def run(name: str, argv: list[str], socket_path: str) -> int:
    """Exec CMD under the filter (never returns then), or raise LaunchError."""
    from attyguard.policy import seccomp

    if not argv:
        raise LaunchError("no command given (policy run NAME -- CMD [ARGS…])")
    program = argv[0] if "/" in argv[0] else shutil.which(argv[0])
    # A path is left to execv (after the hand-over it exits 127 if that fails):
    # stat(2) and access(2) can say no where exec(2) works (seen on this machine for
    # a file under a 0700 directory), so a pre-check would refuse good commands.
    if not program:
        raise LaunchError(f"{argv[0]}: command not found")
    reason = seccomp.unavailable_reason()
    if reason:
        raise LaunchError(reason)
    sock = _connect(socket_path)
    reply = _request(sock, {"v": 1, "id": 1, "op": "policy_launch", "name": name,
                            "program": os.path.abspath(program)})
    blocked = reply.get("blocked_syscalls")
    if not isinstance(blocked, list) or not all(isinstance(b, str) for b in blocked):
        raise LaunchError("the daemon's answer has no syscall list")
    try:
        ctx = seccomp.build_filter(blocked)
    except seccomp.SeccompError as exc:
        raise LaunchError(str(exc)) from None

    box: dict[str, Any] = {}
    helper = threading.Thread(target=_hand_over, args=(sock, box), name="policy-handover")
    helper.start()
    try:
        box["fd"] = seccomp.load(ctx)
    except seccomp.SeccompError as exc:
        box["fd"] = -1
        helper.join()
        raise LaunchError(str(exc)) from None
    helper.join()
    os.close(box["fd"])
    try:
        os.execv(program, argv)
    except OSError as exc:
        sys.stderr.write(f"attyguard policy: {argv[0]}: {exc.strerror}\n")
        sys.stderr.flush()
        os._exit(127)


def _hand_over(sock: socket.socket, box: dict[str, Any]) -> None:
    """The helper thread (unfiltered): send the listener, read the acceptance.
    On any failure it ends the whole process (exit 3): the main thread may be
    waiting in a blocked call that nobody will ever answer."""
    deadline = time.monotonic() + HANDOFF_TIMEOUT_S
    while "fd" not in box:  # set by the main thread right after the load
        if time.monotonic() > deadline:
            _die("the seccomp filter did not load in time")
        time.sleep(0.001)
    fd = box["fd"]
    if fd < 0:
        return
    try:
        sock.sendmsg([b"F"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]))])
        _read_reply(sock)
    except LaunchError as exc:
        _die(str(exc))
    except OSError as exc:
        _die(f"handing the listener to the daemon failed: {exc.strerror or exc}")


def _die(message: str) -> None:
    try:
        os.write(2, f"attyguard policy: {message}\n".encode(errors="replace"))
    finally:
        os._exit(3)


def _connect(path: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(HANDOFF_TIMEOUT_S)
    try:
        sock.connect(path)
    except OSError as exc:
        sock.close()
        raise LaunchError(f"no daemon at {path}: {exc.strerror or exc}; "
                          "not started") from None
    return sock


def _request(sock: socket.socket, message: dict[str, Any]) -> dict[str, Any]:
    try:
        sock.sendall(json.dumps(message).encode() + b"\n")
        return _read_reply(sock)
    except OSError as exc:
        raise LaunchError(f"the daemon connection failed: {exc.strerror or exc}") from None


def _read_reply(sock: socket.socket) -> dict[str, Any]:
    """One reply line, read a byte at a time (nothing past it may be consumed)."""
    line = bytearray()
    while not line.endswith(b"\n"):
        try:
            byte = sock.recv(1)
        except TimeoutError:
            raise LaunchError("the daemon did not answer in time; not started") from None
        if not byte:
            raise LaunchError("the daemon closed the connection; not started")
        line += byte
        if len(line) > 1 << 20:
            raise LaunchError("the daemon's answer is too long")
    try:
        reply = json.loads(line)
    except ValueError:
        raise LaunchError("the daemon sent something that is not JSON") from None
    if not isinstance(reply, dict):
        raise LaunchError("the daemon sent something that is not a JSON object")
    if reply.get("ok") is not True:
        error = reply.get("error") or {}
        message = error.get("message", "refused") if isinstance(error, dict) else "refused"
        raise LaunchError(f"the daemon refused: {message}; not started")
    return reply
