"""Rung 4 (`audit`): the netlink proc connector as an event source, from plain sockets.

The kernel multicasts fork, exec and exit notifications on NETLINK_CONNECTOR
(group CN_IDX_PROC) to root listeners; no BPF, no kernel headers. This module
owns that socket and turns its messages into `attyguard.kernel.events`
dataclasses with `rung=Rung.AUDIT`.

Audit only, and racy by nature: the notification says *that* a PID exec'd,
nothing more; argv, the executable, the uid and fds 0/1/2 are read from
/proc/PID afterwards. By then the program has already started, may have
changed its argv, closed or replaced its fds, exec'd again or exited (then
the event carries what could still be read, possibly an empty argv). Nothing
can be denied from here; the exec judge records what it would have denied.

Hand-written (struct over a datagram socket) rather than a library: the
message formats are four fixed C structs, and pyroute2 (the well-kept
netlink library) does not decode the proc connector.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import struct
import time
from collections.abc import Iterator

from attyguard.kernel.events import (
    ExecEvent,
    ExitEvent,
    FdInfo,
    FdKind,
    ForkEvent,
    KernelEvent,
    Rung,
)

__all__ = [
    "ARGV_MAX_BYTES",
    "ProcConnector",
    "ProcConnectorError",
    "exec_event_from_proc",
    "fd_info",
    "parse_message",
]

NETLINK_CONNECTOR = 11
CN_IDX_PROC = 1
CN_VAL_PROC = 1
PROC_CN_MCAST_LISTEN = 1
PROC_CN_MCAST_IGNORE = 2
NLMSG_DONE = 3
NLMSG_ERROR = 2
NLMSG_NOOP = 1

PROC_EVENT_FORK = 0x00000001
PROC_EVENT_EXEC = 0x00000002
PROC_EVENT_EXIT = 0x80000000

_NLMSGHDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid
_CN_MSG = struct.Struct("=IIIIHH")  # idx, val, seq, ack, len, flags
_PROC_EVENT_HEAD = struct.Struct("=IIQ")  # what, cpu, timestamp_ns
_FORK = struct.Struct("=iiii")  # parent_pid, parent_tgid, child_pid, child_tgid
_EXEC = struct.Struct("=ii")  # process_pid, process_tgid
_EXIT = struct.Struct("=iiII")  # process_pid, process_tgid, exit_code, exit_signal

# argv read from /proc/PID/cmdline is cut here (the flag on the event says so):
# the judge bounds its own work, and a 2 MiB argv must not be copied per exec.
ARGV_MAX_BYTES = 64 * 1024
_RCVBUF = 8 << 20  # a burst of execs must fit while the daemon is busy judging

# /proc/PID/fd/N's xattr "system.sockprotoname" names the protocol without
# scanning /proc/net/*; these are the names the kernel uses for each family.
_PROTO_FAMILY = {
    "TCP": socket.AF_INET, "UDP": socket.AF_INET, "RAW": socket.AF_INET,
    "PING": socket.AF_INET, "UDP-Lite": socket.AF_INET, "SCTP": socket.AF_INET,
    "MPTCP": socket.AF_INET,
    "TCPv6": socket.AF_INET6, "UDPv6": socket.AF_INET6, "RAWv6": socket.AF_INET6,
    "PINGv6": socket.AF_INET6, "UDPLITEv6": socket.AF_INET6, "SCTPv6": socket.AF_INET6,
    "MPTCPv6": socket.AF_INET6,
    "UNIX": socket.AF_UNIX, "UNIX-STREAM": socket.AF_UNIX,
    "NETLINK": socket.AF_NETLINK, "PACKET": socket.AF_PACKET, "ALG": 38,
}


class ProcConnectorError(Exception):
    """The connector cannot be used (not root, no netlink): one line, the reason."""


def parse_message(data: bytes, now: float | None = None) -> Iterator[tuple[str, tuple[int, ...]]]:
    """Decode one datagram into ("fork"|"exec"|"exit", fields) tuples; pure.

    Forks of threads (child pid != child tgid) and exits of threads are
    skipped: the process tree is made of thread-group leaders.
    """
    offset = 0
    while offset + _NLMSGHDR.size <= len(data):
        length, kind, _flags, _seq, _pid = _NLMSGHDR.unpack_from(data, offset)
        if length < _NLMSGHDR.size or offset + length > len(data):
            return
        body = offset + _NLMSGHDR.size
        offset += (length + 3) & ~3
        if kind in (NLMSG_NOOP, NLMSG_ERROR) or length < _NLMSGHDR.size + _CN_MSG.size:
            continue
        idx, val, _seq2, _ack, payload_len, _f = _CN_MSG.unpack_from(data, body)
        if (idx, val) != (CN_IDX_PROC, CN_VAL_PROC) or payload_len < _PROC_EVENT_HEAD.size:
            continue
        event = body + _CN_MSG.size
        if event + payload_len > len(data):
            continue
        what, _cpu, _ts = _PROC_EVENT_HEAD.unpack_from(data, event)
        union = event + _PROC_EVENT_HEAD.size
        if what == PROC_EVENT_FORK and payload_len >= _PROC_EVENT_HEAD.size + _FORK.size:
            _parent_pid, parent_tgid, child_pid, child_tgid = _FORK.unpack_from(data, union)
            if child_pid == child_tgid:
                yield "fork", (parent_tgid, child_tgid)
        elif what == PROC_EVENT_EXEC and payload_len >= _PROC_EVENT_HEAD.size + _EXEC.size:
            pid, tgid = _EXEC.unpack_from(data, union)
            yield "exec", (pid, tgid)
        elif what == PROC_EVENT_EXIT and payload_len >= _PROC_EVENT_HEAD.size + _EXIT.size:
            pid, tgid, code, _signal = _EXIT.unpack_from(data, union)
            if pid == tgid:
                yield "exit", (tgid, code)


def fd_info(pid: int, fd: int) -> FdInfo:
    """What fd `fd` of `pid` is, read from /proc (racy: it may have changed since)."""
    path = f"/proc/{pid}/fd/{fd}"
    try:
        target = os.readlink(path)
    except OSError:
        return FdInfo(FdKind.NONE)
    if target.startswith("pipe:["):
        return FdInfo(FdKind.PIPE, _bracket_number(target))
    if target.startswith("socket:["):
        family = 0
        with contextlib.suppress(OSError):
            name = os.getxattr(path, "system.sockprotoname").rstrip(b"\0").decode()
            family = _PROTO_FAMILY.get(name, 0)
        return FdInfo(FdKind.SOCKET, _bracket_number(target), family)
    if target.startswith("/dev/pts/") or target.startswith("/dev/tty") \
            or target == "/dev/console":
        return FdInfo(FdKind.TTY)
    if target.startswith("/"):
        try:
            inode = os.stat(path).st_ino
        except OSError:
            inode = 0
        return FdInfo(FdKind.FILE, inode)
    return FdInfo(FdKind.OTHER)


def _bracket_number(text: str) -> int:
    try:
        return int(text[text.index("[") + 1 : text.index("]")])
    except ValueError:
        return 0


def _status_fields(pid: int) -> tuple[int, int]:
    """(ppid, real uid) from /proc/PID/status, or (0, -1) when unreadable."""
    ppid, uid = 0, -1
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"PPid:"):
                    ppid = int(line.split()[1])
                elif line.startswith(b"Uid:"):
                    uid = int(line.split()[1])
                    break
    except (OSError, ValueError, IndexError):
        pass
    return ppid, uid


def _session_id(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
        return int(data[data.rfind(b")") + 2 :].split()[3])
    except (OSError, ValueError, IndexError):
        return 0


def exec_event_from_proc(pid: int, tgid: int, when: float | None = None) -> ExecEvent:
    """An ExecEvent for a process that has just exec'd, from what /proc still shows."""
    argv: tuple[str, ...] = ()
    truncated = False
    try:
        with open(f"/proc/{tgid}/cmdline", "rb") as f:
            raw = f.read(ARGV_MAX_BYTES + 1)
        truncated = len(raw) > ARGV_MAX_BYTES
        raw = raw[:ARGV_MAX_BYTES]
        argv = tuple(part.decode("utf-8", "surrogateescape")
                     for part in raw.rstrip(b"\0").split(b"\0")) if raw else ()
    except OSError:
        pass
    try:
        filename = os.readlink(f"/proc/{tgid}/exe")
    except OSError:
        filename = argv[0] if argv else ""
    ppid, uid = _status_fields(tgid)
    fds = (fd_info(tgid, 0), fd_info(tgid, 1), fd_info(tgid, 2))
    return ExecEvent(time=time.time() if when is None else when, pid=pid, tgid=tgid, ppid=ppid,
                     uid=uid, filename=filename, argv=argv, argv_truncated=truncated,
                     session_id=_session_id(tgid), fds=fds, rung=Rung.AUDIT)


class ProcConnector:
    """A subscribed proc connector socket; `read()` drains it without blocking.

    `overruns` counts ENOBUFS: the kernel dropped notifications because the
    receive buffer was full (how many is unknown); the daemon reports it.
    """

    def __init__(self) -> None:
        self.sock: socket.socket | None = None
        self.overruns = 0
        self.received = 0

    def open(self, rcvbuf: int = _RCVBUF) -> ProcConnector:
        try:
            sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC,
                                 NETLINK_CONNECTOR)
        except OSError as exc:
            raise ProcConnectorError(f"no netlink proc connector: {exc.strerror or exc}") \
                from None
        try:
            for option in (33, socket.SO_RCVBUF):  # SO_RCVBUFFORCE needs root; else capped
                try:
                    sock.setsockopt(socket.SOL_SOCKET, option, rcvbuf)
                    break
                except OSError:
                    continue
            sock.bind((0, CN_IDX_PROC))  # port 0: the kernel assigns a unique one
            message = _CN_MSG.pack(CN_IDX_PROC, CN_VAL_PROC, 0, 0, 4, 0) \
                + struct.pack("=I", PROC_CN_MCAST_LISTEN)
            header = _NLMSGHDR.pack(_NLMSGHDR.size + len(message), NLMSG_DONE, 0, 0, 0)
            sock.send(header + message)
        except OSError as exc:
            sock.close()
            why = "needs root (CAP_NET_ADMIN)" if exc.errno in (errno.EPERM, errno.EACCES) \
                else (exc.strerror or str(exc))
            raise ProcConnectorError(f"proc connector: {why}") from None
        sock.setblocking(False)
        self.sock = sock
        return self

    def fileno(self) -> int:
        assert self.sock is not None
        return self.sock.fileno()

    def read(self, limit: int = 4096) -> list[KernelEvent]:
        """Every event waiting now (at most `limit` datagrams), /proc read per exec."""
        assert self.sock is not None
        events: list[KernelEvent] = []
        for _ in range(limit):
            try:
                data = self.sock.recv(65536)
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:
                    self.overruns += 1
                    continue
                raise
            now = time.time()
            for kind, fields in parse_message(data):
                self.received += 1
                if kind == "exec":
                    events.append(exec_event_from_proc(fields[0], fields[1], now))
                elif kind == "fork":
                    events.append(ForkEvent(now, fields[0], fields[1]))
                else:
                    events.append(ExitEvent(now, fields[0], fields[1]))
        return events

    def close(self) -> None:
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.close()
            self.sock = None

    def __enter__(self) -> ProcConnector:
        return self.open() if self.sock is None else self

    def __exit__(self, *exc: object) -> None:
        self.close()
