#!/usr/bin/env python3
"""System calls and forks per line of the guarded shell's bash child.

Drives the shell as bench/shell_bench.py does (same rc, prompt marker and
environment; its `PromptWatcher` is reused), lets `--warmup` lines of `true`
pass, then attaches `strace -f -c` to the bash child (and anything it starts)
for `--lines` more and prints, per line: every system call bash made, by
name, and the processes it started (clone/fork/vfork). Plain `bash -i` with
the same rc is measured the same way for reference. strace slows each call
down, so this counts work; it does not time it (bench/round_trip_cpu.py and
shell_bench.py do).

    .venv/bin/python bench/bash_syscalls.py --lines 200
    .venv/bin/python bench/bash_syscalls.py --lines 200 --tree /tmp/base   # another source tree

Exits 0 with the table; 1 if a shell could not be measured (one line saying
why, e.g. strace missing or not allowed to attach); 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from shell_bench import (  # a sibling script, not a package
    BASHRC,
    BenchError,
    PromptWatcher,
    ShellUnderTest,
    _environment,
)

__all__ = ["main"]

# strace -c's table rows: "% time seconds usecs/call calls [errors] syscall".
_ROW = re.compile(r"^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)\s*$")
_FORKS = ("clone", "clone3", "fork", "vfork")


def _count(shell: ShellUnderTest, args: argparse.Namespace, pythonpath: str | None,
           strace: str) -> dict[str, float]:
    """Calls per line, by name, of the bash that runs `shell`'s lines."""
    with tempfile.TemporaryDirectory(prefix="bash-sc-") as tmp:
        home = Path(tmp)
        (home / ".bashrc").write_text(BASHRC)
        env = _environment(home)
        if pythonpath:
            env["PYTHONPATH"] = pythonpath
        watcher = PromptWatcher(shell, env, tmp)
        log = home / "strace.out"
        tracer: subprocess.Popen[bytes] | None = None
        try:
            watcher.wait_prompt(args.timeout)
            for _ in range(args.warmup):
                watcher.send(b"true\r")
                watcher.wait_prompt(args.timeout)
            pid = watcher.proc.pid
            if shell.label == "attyguard":
                # (the bash on the pty; not a zombie the front end has yet to reap)
                kids = [c.pid for c in psutil.Process(pid).children() if c.name() == "bash"]
                if len(kids) != 1:
                    raise BenchError(f"expected one bash child of the front end, found {kids}")
                pid = kids[0]
            tracer = subprocess.Popen([strace, "-f", "-c", "-o", str(log), "-p", str(pid)],
                                      stderr=subprocess.PIPE)
            # strace says so on stderr once it is attached.
            assert tracer.stderr is not None
            line = tracer.stderr.readline()
            if b"attached" not in line:
                raise BenchError(f"strace did not attach: {line.decode(errors='replace').strip()}")
            for _ in range(args.lines):
                watcher.send(b"true\r")
                watcher.wait_prompt(args.timeout)
            tracer.send_signal(signal.SIGINT)
            tracer.wait(args.timeout)
            tracer = None
        finally:
            if tracer is not None:
                tracer.kill()
                tracer.wait()
            watcher.close()
        counts: dict[str, float] = {}
        for row in log.read_text(encoding="utf-8", errors="replace").splitlines():
            m = _ROW.match(row)
            if m:
                counts[m.group(2)] = int(m.group(1)) / args.lines
        return counts


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bash_syscalls.py", description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, default=200, help="lines counted (default 200)")
    parser.add_argument("--warmup", type=int, default=10, help="lines before counting (10)")
    parser.add_argument("--tree", metavar="DIR",
                        help="measure another source tree (first on PYTHONPATH)")
    parser.add_argument("--attyguard", default=str(Path(sys.executable).parent / "attyguard"))
    parser.add_argument("--bash", default="/bin/bash")
    parser.add_argument("--timeout", type=float, default=20.0)
    args = parser.parse_args(argv)
    if args.lines < 1 or args.warmup < 0:
        parser.error("--lines must be at least 1 and --warmup not negative")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    strace = shutil.which("strace")
    if strace is None:
        print("bash_syscalls.py: strace is not installed", file=sys.stderr)
        return 1
    tree = os.path.abspath(args.tree) if args.tree else None
    try:
        guarded = _count(ShellUnderTest("attyguard", (args.attyguard,)), args, tree, strace)
        plain = _count(ShellUnderTest("bash", (args.bash, "-i")), args, None, strace)
    except (BenchError, OSError, subprocess.TimeoutExpired) as exc:
        print(f"bash_syscalls.py: {exc}", file=sys.stderr)
        return 1
    names = sorted(set(guarded) | set(plain), key=lambda n: (-guarded.get(n, 0), n))
    print(f"system calls per line of `true` ({args.lines} lines, strace -f -c on bash"
          f"{' of ' + tree if tree else ''}; {time.strftime('%H:%M:%S')})")
    print(f"{'call':<18}{'attyguard':>10}{'bash -i':>10}")
    for name in names:
        if name == "total":
            continue
        print(f"{name:<18}{guarded.get(name, 0):>10.2f}{plain.get(name, 0):>10.2f}")
    print(f"{'total':<18}{guarded.get('total', 0):>10.2f}{plain.get('total', 0):>10.2f}")
    forks_g = sum(guarded.get(n, 0) for n in _FORKS)
    forks_p = sum(plain.get(n, 0) for n in _FORKS)
    print(f"{'processes started':<18}{forks_g:>10.2f}{forks_p:>10.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
