#!/usr/bin/env python3
"""The floor for output throughput: attyguard against a minimal pty relay, both against bash.

attyguard runs commands on its own pty and relays their output to the user's
terminal: a second pty hop that plain bash does not have. This script asks how
much of `seq 1 1500000`'s extra time is that hop itself and how much is
attyguard's relay. It drives three shells the way bench/shell_bench.py does
(its PromptWatcher, rc and environment), interleaving them run by run:

  bash        `bash -i` on the pty (the baseline)
  relay       this script run as `--relay`: `bash -i` on a second pty and a
              20-line select/read/write loop in between (the least any
              Python relay can do: no marks, no keys but passthrough)
  attyguard   the guarded shell

and prints the median wall time of each and its ratio to bash, plus this
harness's own CPU per run (the reader of the terminal, like a terminal
emulator: its share of 2 cores moves the figures). A benchmark, not a test:
exits 0 with the table, 1 if a shell could not be measured, 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import os
import select
import statistics
import sys
import tempfile
import termios
import time
import tty
from collections.abc import Sequence
from pathlib import Path

from shell_bench import (  # a sibling script, not a package
    BASHRC,
    BenchError,
    PromptWatcher,
    ShellUnderTest,
    _environment,
    _positive,
)


def relay() -> int:
    """`bash -i` on its own pty, its output copied to ours: the minimal second hop."""
    pid, master = os.forkpty()
    if pid == 0:
        os.execvp("bash", ["bash", "-i"])
    tty.setraw(0, termios.TCSANOW)
    while True:
        ready, _, _ = select.select([master, 0], [], [])
        if 0 in ready:
            os.write(master, os.read(0, 65536))
        if master in ready:
            try:
                data = os.read(master, 65536)
            except OSError:
                return 0
            view = memoryview(data)
            while view:
                view = view[os.write(1, view):]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=_positive, default=9, help="seq runs per shell (9)")
    parser.add_argument("--seq-lines", type=_positive, default=1_500_000)
    parser.add_argument("--attyguard", default=str(Path(sys.executable).parent / "attyguard"))
    parser.add_argument("--relay", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.relay:
        return relay()
    shells = [
        ShellUnderTest("bash -i", ("bash", "-i")),
        ShellUnderTest("relay", (sys.executable, str(Path(__file__).resolve()), "--relay")),
        ShellUnderTest("attyguard", (args.attyguard,)),
    ]
    last_line = f"{args.seq_lines}\r\n".encode()
    with tempfile.TemporaryDirectory(prefix="relay-floor-") as tmp:
        home = Path(tmp)
        (home / ".bashrc").write_text(BASHRC)
        watchers: list[PromptWatcher] = []
        try:
            for shell in shells:
                watcher = PromptWatcher(shell, _environment(home), tmp)
                watchers.append(watcher)
                watcher.wait_prompt(60)
                for _ in range(3):
                    watcher.send(b"true\r")
                    watcher.wait_prompt(60)
            walls: list[list[float]] = [[] for _ in shells]
            cpus: list[list[float]] = [[] for _ in shells]
            for _ in range(args.runs):
                for i, watcher in enumerate(watchers):
                    cpu, start = time.process_time(), time.perf_counter()
                    watcher.send(f"seq 1 {args.seq_lines}\r".encode())
                    if not watcher.wait_prompt(60, also=last_line):
                        raise BenchError(f"{shells[i].label}: seq output ended early")
                    walls[i].append(time.perf_counter() - start)
                    cpus[i].append(time.process_time() - cpu)
        except (BenchError, OSError) as err:
            print(f"relay_floor: {err}", file=sys.stderr)
            return 1
        finally:
            for watcher in watchers:
                watcher.close()
    base = statistics.median(walls[0])
    print(f"seq 1 {args.seq_lines} ×{args.runs}, interleaved; {os.cpu_count()} cores, "
          f"load {os.getloadavg()[0]:.1f}; {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}")
    print(f"{'shell':<12}{'wall (median)':>15}{'ratio':>8}{'reader CPU':>13}")
    for shell, wall, cpu in zip(shells, walls, cpus, strict=True):
        median = statistics.median(wall)
        print(f"{shell.label:<12}{median:>13.3f} s{median / base:>7.2f}×"
              f"{statistics.median(cpu):>11.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
