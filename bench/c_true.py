#!/usr/bin/env python3
"""`attyguard -c true` whole process: the clean-line fast path against the full engine.

Usage:
  python bench/c_true.py [--runs N] [--attyguard PATH]

Every `ssh host CMD`, scp, rsync and git over ssh starts the login shell with
`-c`. "warm" runs share one ATTYGUARD_HOME whose fast-path cache
(engine/quick.py) is filled by two runs first; "cold" runs each get a fresh
ATTYGUARD_HOME, so they import the engine and load the rules as every call
did before the fast path; "bash" is plain `bash -c true`, the baseline.
Alternating, medians of wall time and of CPU time (user + system of the
process and the bash it execs, from getrusage): CPU is what the load of a
shared machine disturbs least. Bytecode is written and used
(PYTHONDONTWRITEBYTECODE dropped), as in an install. Prints figures and
`uptime`; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--attyguard", default=str(Path(sys.executable).parent / "attyguard"))
    args = parser.parse_args(argv)
    exe = args.attyguard
    base = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    warm = tempfile.mkdtemp(prefix="agc-")
    for _ in range(2):  # the first writes the atoms, the second remembers `true`
        subprocess.run([exe, "-c", "true"], env=dict(base, ATTYGUARD_HOME=warm), check=True)
    figures: dict[str, tuple[list[float], list[float]]] = {"warm (fast path)": ([], []),
                                                          "cold (full engine)": ([], []),
                                                          "bash -c true": ([], [])}
    bash = shutil.which("bash") or "/bin/bash"
    for _ in range(args.runs):
        for name, (walls, cpus) in figures.items():
            home = warm if name.startswith("warm") else tempfile.mkdtemp(prefix="agc-")
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            subprocess.run([bash if name.startswith("bash") else exe, "-c", "true"],
                           env=dict(base, ATTYGUARD_HOME=home), check=True)
            walls.append(time.perf_counter() - start)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    uptime = subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout
    print(f"attyguard -c true: {args.runs} runs each, "
          f"{time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}; uptime: {uptime.strip()}")
    for name, (walls, cpus) in figures.items():
        print(f"  {name:20} wall {statistics.median(walls) * 1000:7.1f} ms "
              f"(min {min(walls) * 1000:6.1f})   CPU {statistics.median(cpus) * 1000:6.1f} ms "
              f"(min {min(cpus) * 1000:6.1f})"
              + ("" if name.startswith("bash") else "   target: 40 ms whole process"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
