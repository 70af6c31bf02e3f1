"""Decoding exec.h records into events: pure, table-driven, no kernel needed."""

from __future__ import annotations

import ctypes
import socket

import pytest

from attyguard.kernel import records
from attyguard.kernel.events import (
    AlgSocketEvent,
    ConnectEvent,
    ExecEvent,
    ExitEvent,
    FdKind,
    ForkEvent,
    Rung,
)


def _exec_record(args: list[bytes], flags: int = 0, fds: tuple[int, int, int] = (1, 2, 3)) -> bytes:
    e = records.AgExec()
    e.hdr.type, e.hdr.pid, e.hdr.tgid, e.hdr.uid = 1, 41, 40, 1000
    e.ppid, e.flags, e.session_id, e.cgroup_id, e.dfd = 7, flags, 40, 99, -100
    e.filename = b"/usr/bin/env"
    raw = b"".join(a + b"\0" for a in args)
    ctypes.memmove(ctypes.addressof(e) + records.AgExec.args.offset, raw, len(raw))
    e.argc, e.args_size = len(args), len(raw)
    for i, kind in enumerate(fds):
        e.fds[i].kind, e.fds[i].ino, e.fds[i].family = kind, 100 + i, 2 if kind == 3 else 0
    return bytes(e)[: records.AgExec.args.offset + len(raw)]


def test_exec_record_decodes_with_argv_fds_and_flags() -> None:
    rec = records.decode(_exec_record([b"env", b"-i", "é".encode()], flags=1 | 8), Rung.FANOTIFY)
    assert rec is not None and rec.killed
    ev = rec.event
    assert isinstance(ev, ExecEvent)
    assert (ev.pid, ev.tgid, ev.ppid, ev.uid) == (41, 40, 7, 1000)
    assert ev.argv == ("env", "-i", "é")
    assert ev.argv_truncated
    assert ev.filename == "/usr/bin/env" and ev.rung is Rung.FANOTIFY
    assert ev.session_id == 40 and ev.cgroup_id == 99
    assert ev.fds is not None
    assert [f.kind for f in ev.fds] == [FdKind.TTY, FdKind.PIPE, FdKind.SOCKET]
    assert ev.fds[1].inode == 101 and ev.fds[2].family == 2


def test_invalid_utf8_argv_survives_as_surrogates() -> None:
    rec = records.decode(_exec_record([b"x", b"\xff\xfe"]))
    assert rec is not None and isinstance(rec.event, ExecEvent)
    assert rec.event.argv[1].encode("utf-8", "surrogateescape") == b"\xff\xfe"


@pytest.mark.parametrize("data", [b"", b"\x01\x00", b"\x09" + b"\0" * 40, b"\x01" + b"\0" * 30])
def test_short_or_unknown_records_are_none(data: bytes) -> None:
    assert records.decode(data) is None


def test_fork_exit_alg_records() -> None:
    f = records.AgFork()
    f.hdr.type, f.hdr.tgid, f.child_tgid = 2, 10, 11
    x = records.AgExit()
    x.hdr.type, x.hdr.tgid, x.exit_code = 3, 11, 256
    a = records.AgAlg()
    a.hdr.type, a.hdr.tgid, a.hdr.uid = 4, 12, 5
    fork = records.decode(bytes(f))
    exit_ = records.decode(bytes(x))
    alg = records.decode(bytes(a))
    assert fork is not None and fork.event == ForkEvent(fork.event.time, 10, 11)
    assert exit_ is not None and isinstance(exit_.event, ExitEvent)
    assert exit_.event.exit_code == 256
    assert alg is not None and isinstance(alg.event, AlgSocketEvent) and alg.event.uid == 5


@pytest.mark.parametrize(
    ("family", "raw", "address"),
    [
        (socket.AF_INET, socket.inet_aton("127.0.0.1"), "127.0.0.1"),
        (socket.AF_INET6, socket.inet_pton(socket.AF_INET6, "::1"), "::1"),
        (socket.AF_UNIX, b"/run/x.sock\0junk", "/run/x.sock"),
        (socket.AF_UNIX, b"\0abstract\0", "@abstract"),
        (99, b"whatever", ""),
    ],
)
def test_connect_addresses(family: int, raw: bytes, address: str) -> None:
    c = records.AgConnect()
    c.hdr.type, c.hdr.tgid, c.family, c.port = 5, 3, family, 4444
    ctypes.memmove(ctypes.addressof(c) + records.AgConnect.addr.offset, raw, len(raw))
    rec = records.decode(bytes(c))
    assert rec is not None and isinstance(rec.event, ConnectEvent)
    assert rec.event.address == address and rec.event.port == 4444


def test_kernel_dev_matches_the_kernels_encoding() -> None:
    import os

    st_dev = os.makedev(259, 3)
    assert records.kernel_dev(st_dev) == (259 << 20) | 3
