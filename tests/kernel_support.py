"""Shared helpers of the kernel-layer tests: capability checks and waiting on conditions.

Skips happen only when a capability is truly absent (not root, no libbpf, no
BTF), with the reason; everything else must work on CI (root, this kernel).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from attyguard.kernel.bpf import libbpf_unavailable_reason

EXEC_OBJECT = Path(__file__).resolve().parents[1] / "attyguard" / "kernel" / "exec.bpf.o"


def bpf_missing_reason() -> str | None:
    if os.geteuid() != 0:
        return "needs root (BPF and fanotify permission events)"
    if not Path("/sys/kernel/btf/vmlinux").exists():
        return "kernel without BTF (/sys/kernel/btf/vmlinux)"
    return libbpf_unavailable_reason()


def require_bpf() -> None:
    reason = bpf_missing_reason()
    if reason:
        pytest.skip(reason)


def wait_for(cond: Callable[[], object], timeout: float = 10.0, what: str = "condition") -> object:
    """Poll cond until it is truthy (its value) or fail after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.01)
