"""A real rsyslogd in the foreground on 127.0.0.1 (tests and bench/fleet_events.py)."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
from pathlib import Path

from tests.daemon_harness import wait_for

__all__ = ["Rsyslog"]


def _free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Rsyslog:
    """A real rsyslogd in the foreground, listening on 127.0.0.1, writing raw messages to a file."""

    def __init__(self, directory: Path, transport: str) -> None:
        self.dir = directory
        self.out = directory / "received.log"
        self.port = _free_port(socket.SOCK_DGRAM if transport == "udp" else socket.SOCK_STREAM)
        module = "imudp" if transport == "udp" else "imtcp"
        (directory / "rsyslog.conf").write_text(f"""
global(workDirectory="{directory}")
module(load="{module}")
input(type="{module}" address="127.0.0.1" port="{self.port}" ruleset="r")
template(name="raw" type="string" string="%rawmsg%\\n")
ruleset(name="r") {{ action(type="omfile" file="{self.out}" template="raw") }}
""")
        self.proc = subprocess.Popen(
            [shutil.which("rsyslogd") or "/usr/sbin/rsyslogd", "-n", "-f",
             str(directory / "rsyslog.conf"), "-i", str(directory / "rsyslog.pid")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=open(directory / "rsyslog.err", "wb"))  # noqa: SIM115 - closed with the process

    def wait_listening(self, transport: str) -> None:
        def ready() -> bool:
            assert self.proc.poll() is None, (self.dir / "rsyslog.err").read_text()
            if transport == "tcp":
                try:
                    socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                    return True
                except OSError:
                    return False
            # UDP has no handshake: listening means a probe datagram comes out in the file.
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
                probe.sendto(b"<14>1 - - probe - - - ready", ("127.0.0.1", self.port))
            return any("probe" in m for m in self.messages(probes=True))
        wait_for(ready, 20, "rsyslogd to listen")

    def messages(self, probes: bool = False) -> list[str]:
        try:
            return [m for m in self.out.read_text().splitlines()
                    if m and (probes or " probe " not in m)]
        except FileNotFoundError:
            return []

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
