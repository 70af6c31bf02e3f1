"""Fixtures several test modules share (a module may still define its own of the same name)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.daemon_harness import RunningDaemon


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes a test starts: each killed and reaped afterwards, whatever happens."""
    started: list[subprocess.Popen[bytes]] = []
    try:
        yield started
    finally:
        for proc in started:
            if proc.poll() is None:
                proc.kill()
            proc.wait()


@pytest.fixture
def make_daemon() -> Iterator[Callable[..., RunningDaemon]]:
    """`make(directory, args, config_text)` starts a real daemon; every one is stopped after."""
    started: list[RunningDaemon] = []

    def make(directory: Path, args: tuple[str, ...] = (), config_text: str = "") -> RunningDaemon:
        daemon = RunningDaemon(directory, args, config_text)
        started.append(daemon)
        return daemon.start()

    try:
        yield make
    finally:
        for daemon in started:
            daemon.stop()
