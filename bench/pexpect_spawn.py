#!/usr/bin/env python3
"""pexpect (the card's named driver) against attyguard's own pty handling: spawn and throughput.

Usage:
  python bench/pexpect_spawn.py [--runs N] [--seq N]

Two figures, medians over N runs, each against attyguard's way in the same run:
  spawn     start `bash --norc --noprofile -i` on a new pty until its first
            prompt is read: pexpect.spawn (ptyprocess: fork + exec, its echo/
            window-size set-up, a 100 ms-polled `isalive`-free path) vs
            os.forkpty + execvpe as attyguard/shell/spawn.py does it.
  drain     `seq 1 N` read from the pty until the next prompt: pexpect's
            read_nonblocking (what expect() builds on) vs os.read of 64 KiB
            after select, as shell/bash.py's passthrough does.
Prints figures and ratios; asserts nothing (a benchmark, not a test).
"""

from __future__ import annotations

import argparse
import os
import select
import statistics
import sys
import time

import pexpect

PROMPT = b"PXB> "
ENV = dict(os.environ, PS1=PROMPT.decode(), TERM="dumb", HOME="/tmp")
ARGV = ["bash", "--norc", "--noprofile", "-i"]


def _read_until(fd: int, marker: bytes, timeout: float = 60.0) -> int:
    """Read until `marker` shows; returns the byte count (only a tail is kept)."""
    tail = b""
    total = 0
    deadline = time.monotonic() + timeout
    while marker not in tail:
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {marker!r}")
        if select.select([fd], [], [], 1.0)[0]:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            total += len(chunk)
            tail = (tail + chunk)[-256:]
    return total


def spawn_forkpty() -> tuple[float, int, int]:
    start = time.perf_counter()
    pid, master = os.forkpty()
    if pid == 0:
        try:
            os.execvpe(ARGV[0], ARGV, ENV)
        finally:
            os._exit(127)
    _read_until(master, PROMPT)
    return time.perf_counter() - start, pid, master


def drain_forkpty(master: int, n: int) -> float:
    os.write(master, f"seq 1 {n}\n".encode())
    start = time.perf_counter()
    _read_until(master, b"\n" + PROMPT)
    return time.perf_counter() - start


def end_forkpty(pid: int, master: int) -> None:
    os.write(master, b"exit\n")
    os.close(master)
    os.waitpid(pid, 0)


def spawn_pexpect() -> tuple[float, pexpect.spawn]:
    start = time.perf_counter()
    child = pexpect.spawn(ARGV[0], ARGV[1:], env=ENV, echo=False, timeout=30)
    child.expect_exact(PROMPT.decode())
    return time.perf_counter() - start, child


def drain_pexpect(child: pexpect.spawn, n: int) -> float:
    child.sendline(f"seq 1 {n}")
    start = time.perf_counter()
    child.expect_exact("\n" + PROMPT.decode(), searchwindowsize=256)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--seq", type=int, default=1_500_000)
    args = parser.parse_args(argv)
    spawn = {"forkpty": [], "pexpect": []}
    drain = {"forkpty": [], "pexpect": []}
    for i in range(args.runs):
        # Alternate the order so drift on a shared machine hits both alike.
        for way in (("forkpty", "pexpect") if i % 2 == 0 else ("pexpect", "forkpty")):
            if way == "forkpty":
                took, pid, master = spawn_forkpty()
                spawn[way].append(took)
                drain[way].append(drain_forkpty(master, args.seq))
                end_forkpty(pid, master)
            else:
                took, child = spawn_pexpect()
                spawn[way].append(took)
                drain[way].append(drain_pexpect(child, args.seq))
                child.sendline("exit")
                child.close()
    load = os.getloadavg()[0]
    print(f"pexpect vs forkpty: {args.runs} runs, seq 1 {args.seq}, load {load:.1f}, "
          f"{time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}")
    for name, table in (("spawn to first prompt", spawn), ("seq drained to prompt", drain)):
        f, p = statistics.median(table["forkpty"]), statistics.median(table["pexpect"])
        print(f"  {name:24} forkpty {f * 1000:9.2f} ms   pexpect {p * 1000:9.2f} ms   "
              f"pexpect/forkpty {p / f:5.2f}×")
    return 0


if __name__ == "__main__":
    sys.exit(main())
