"""Rung 4: the netlink proc connector, decoded from bytes and from real processes."""

from __future__ import annotations

import os
import select
import socket
import struct
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from attyguard.kernel.events import ExecEvent, ExitEvent, FdKind, ForkEvent, KernelEvent, Rung
from attyguard.kernel.proc_connector import (
    PROC_EVENT_EXEC,
    PROC_EVENT_EXIT,
    PROC_EVENT_FORK,
    ProcConnector,
    ProcConnectorError,
    parse_message,
)

needs_root = pytest.mark.skipif(os.geteuid() != 0,
                                reason="the proc connector multicasts to root only")


def _datagram(what: int, body: bytes) -> bytes:
    event = struct.pack("=IIQ", what, 0, 123) + body
    cn = struct.pack("=IIIIHH", 1, 1, 0, 0, len(event), 0) + event
    return struct.pack("=IHHII", 16 + len(cn), 3, 0, 0, 0) + cn


@pytest.mark.parametrize(("data", "expected"), [
    (_datagram(PROC_EVENT_FORK, struct.pack("=iiii", 10, 10, 11, 11)), [("fork", (10, 11))]),
    # a new thread (pid != tgid) is no new process
    (_datagram(PROC_EVENT_FORK, struct.pack("=iiii", 10, 10, 12, 11)), []),
    (_datagram(PROC_EVENT_EXEC, struct.pack("=ii", 11, 11)), [("exec", (11, 11))]),
    (_datagram(PROC_EVENT_EXIT, struct.pack("=iiII", 11, 11, 256, 17)), [("exit", (11, 256))]),
    (_datagram(PROC_EVENT_EXIT, struct.pack("=iiII", 12, 11, 0, 0)), []),
    (_datagram(0x40, struct.pack("=ii", 1, 1)), []),  # an event kind we do not use
    (b"\x00" * 7, []),  # garbage: shorter than a header
    (_datagram(PROC_EVENT_EXEC, struct.pack("=ii", 11, 11))[:40], []),  # cut short
])
def test_parse_message(data: bytes, expected: list[tuple[str, tuple[int, ...]]]) -> None:
    assert list(parse_message(data)) == expected


@pytest.fixture
def connector() -> Iterator[ProcConnector]:
    if os.geteuid() != 0:
        pytest.skip("the proc connector multicasts to root only")
    pc = ProcConnector().open()
    try:
        yield pc
    finally:
        pc.close()


def _collect(pc: ProcConnector, done: Callable[[list[KernelEvent]], bool],
             timeout: float = 10.0) -> list[KernelEvent]:
    got: list[KernelEvent] = []
    deadline = time.monotonic() + timeout
    while not done(got):
        left = deadline - time.monotonic()
        assert left > 0, f"timed out; got {got[-20:]}"
        select.select([pc], [], [], min(left, 0.2))
        got += pc.read()
    return got


def test_fork_exec_exit_of_a_real_process(connector: ProcConnector, tmp_path: Path) -> None:
    left, right = socket.socketpair()
    err = open(tmp_path / "err", "wb")  # noqa: SIM115 (closed in finally)
    proc = subprocess.Popen(["sleep", "0.3"], stdin=subprocess.PIPE, stdout=left, stderr=err)
    try:
        mine = lambda e: getattr(e, "tgid", getattr(e, "child_pid", getattr(e, "pid", 0)))  # noqa: E731
        got = _collect(connector, lambda g: any(isinstance(e, ExitEvent) and e.pid == proc.pid
                                                for e in g))
        ours = [e for e in got if mine(e) == proc.pid]
        kinds = [type(e) for e in ours]
        assert kinds == [ForkEvent, ExecEvent, ExitEvent], ours
        fork, ex = ours[0], ours[1]
        assert isinstance(fork, ForkEvent) and fork.parent_pid == os.getpid()
        assert isinstance(ex, ExecEvent)
        assert ex.argv == ("sleep", "0.3") and ex.filename.endswith("/sleep")
        assert ex.ppid == os.getpid() and ex.uid == os.getuid() and ex.rung is Rung.AUDIT
        assert ex.fds is not None
        assert ex.fds[0].kind is FdKind.PIPE and ex.fds[0].inode > 0
        assert ex.fds[1].kind is FdKind.SOCKET and ex.fds[1].family == socket.AF_UNIX
        assert ex.fds[2].kind is FdKind.FILE
    finally:
        proc.kill()
        proc.wait()
        left.close()
        right.close()
        err.close()


def test_a_network_socket_on_stdin_is_seen_with_its_family(connector: ProcConnector) -> None:
    server = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(server.getsockname())
    proc = subprocess.Popen(["sleep", "0.2"], stdin=client, stdout=client)
    try:
        got = _collect(connector, lambda g: any(isinstance(e, ExecEvent) and e.tgid == proc.pid
                                                for e in g))
        ex = next(e for e in got if isinstance(e, ExecEvent) and e.tgid == proc.pid)
        assert ex.fds is not None and ex.fds[0].kind is FdKind.SOCKET
        assert ex.fds[0].family == socket.AF_INET
    finally:
        proc.kill()
        proc.wait()
        client.close()
        server.close()


@needs_root
def test_an_overflowing_receive_buffer_is_counted_not_silent() -> None:
    pc = ProcConnector().open(rcvbuf=1)  # the kernel's minimum: a few events fit
    try:
        # 100 fork/exec/exit triples while nobody reads
        subprocess.run(["sh", "-c", "i=0; while [ $i -lt 100 ]; do /bin/true; i=$((i+1)); done"],
                       check=True, timeout=60)
        pc.read()
        assert pc.overruns >= 1
    finally:
        pc.close()


def test_not_root_is_one_clear_error() -> None:
    if os.geteuid() == 0:
        # As root the socket opens; check the message path by dropping to nobody.
        code = ("import os\n"
                "from attyguard.kernel.proc_connector import ProcConnector, ProcConnectorError\n"
                "os.setgroups([]); os.setgid(65534); os.setuid(65534)\n"
                "try:\n    ProcConnector().open()\nexcept ProcConnectorError as e:\n"
                "    print(e)\nelse:\n    print('opened')\n")
        import sys

        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             timeout=30, cwd=str(Path(__file__).parent.parent))
        assert out.returncode == 0, out.stderr
        line = out.stdout.strip()
    else:
        with pytest.raises(ProcConnectorError) as info:
            ProcConnector().open()
        line = str(info.value)
    assert line.startswith("proc connector:") and "\n" not in line, line
