"""Test harness: the real `attyguard daemon` console script on a real socket in a tmp dir."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ATTYGUARD = Path(sys.executable).parent / "attyguard"

__all__ = ["ATTYGUARD", "RunningDaemon", "raw_call", "remove_tmpdirs", "short_tmpdir",
           "wait_for"]


CREATED: list[Path] = []  # removed by the tests' autouse fixture


def short_tmpdir() -> Path:
    """A short, world-traversable dir: sun_path is 108 bytes, and other uids connect."""
    path = Path(tempfile.mkdtemp(prefix="agd-", dir="/tmp"))
    path.chmod(0o755)
    CREATED.append(path)
    return path


def remove_tmpdirs() -> None:
    while CREATED:
        shutil.rmtree(CREATED.pop(), ignore_errors=True)


def wait_for(condition: Callable[[], Any], timeout: float, what: str,
             log: Callable[[], str] | None = None) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}"
                                 + (f"\n--- daemon log ---\n{log()}" if log else ""))
        time.sleep(0.01)


def raw_call(path: str, op: str, timeout: float = 5.0, **args: Any) -> dict[str, Any]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(path)
        sock.sendall(json.dumps({"v": 1, "id": 1, "op": op, **args}).encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    return dict(json.loads(data))


class RunningDaemon:
    def __init__(self, directory: Path, args: Sequence[str] = (), config_text: str = "",
                 env: dict[str, str] | None = None) -> None:
        self.dir = directory
        self.socket = str(directory / "d.sock")
        self.config = directory / "attyguard.toml"
        self.config.write_text(config_text)
        self.log_path = directory / "daemon.log"
        self.args = list(args)
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 20.0) -> RunningDaemon:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [str(ATTYGUARD), "daemon", "--socket", self.socket, "--config",
                 str(self.config), *self.args],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=self.env)
        wait_for(lambda: self.proc is not None and (self.proc.poll() is not None
                                                     or self._answers()),
                 timeout, "the daemon to answer", self.log)
        assert self.proc.poll() is None, f"daemon exited {self.proc.returncode}:\n{self.log()}"
        return self

    def _answers(self) -> bool:
        try:
            return bool(raw_call(self.socket, "status", timeout=1.0).get("ok"))
        except (OSError, ValueError):
            return False

    def call(self, op: str, **args: Any) -> dict[str, Any]:
        return raw_call(self.socket, op, **args)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def signal(self, signum: int) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signum)

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def policy_records(daemon: RunningDaemon) -> list[dict[str, Any]]:
    """The daemon's SEC-002 violation records, each without its timestamp (which is
    checked to be a float: the rest can then be compared whole)."""
    reply = daemon.call("policy_violations")
    assert reply["ok"], reply
    out = []
    for r in reply["violations"]:
        r = dict(r)
        assert isinstance(r.pop("timestamp"), float)
        out.append(r)
    return out
