#!/usr/bin/env python3
"""CPU cost of the guarded shell's start-up imports, in fresh processes.

Imports exactly what the interactive shell imports before its first prompt
(the shell modules, the config, prompt_toolkit through the front end) and
prints the median CPU time (time.process_time) per case, over N fresh
processes run in alternation so machine load hits every case alike:

  gc on    the cyclic garbage collector left on (Python's default)
  gc off   gc.disable() first, as attyguard/shell/main.py does
  wcwidth  `import wcwidth` alone (prompt_toolkit's width tables), for the
           version installed (the 0.3+ series imports far more)

Bytecode is written and used (PYTHONDONTWRITEBYTECODE dropped), as in an
install. A benchmark, not a test: exits 0 with a table, 1 if a case failed
(with its error), 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from collections.abc import Sequence

__all__ = ["CASES", "main"]

_SHELL_IMPORTS = (
    "import attyguard.cli, attyguard.shell.main, attyguard.shell.startup, attyguard.config; "
    "from attyguard.config import load_config; "
    "import prompt_toolkit, attyguard.paths, attyguard.shell.confirm, attyguard.shell.history, "
    "attyguard.shell.keys, attyguard.shell.prompt, attyguard.shell.wiring"
)

# name -> statements timed in a fresh interpreter (time.process_time around them)
CASES = {
    "gc on": _SHELL_IMPORTS,
    "gc off": "import gc; gc.disable(); " + _SHELL_IMPORTS,
    "wcwidth": "import wcwidth",
}

_RUNNER = (
    "import time, sys; t = time.process_time(); exec(sys.argv[1]); "
    "print((time.process_time() - t) * 1000)"
)


def _one(code: str, env: dict[str, str]) -> float:
    done = subprocess.run([sys.executable, "-c", _RUNNER, code], env=env, capture_output=True,
                          text=True, timeout=60)
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip().splitlines()[-1] if done.stderr else "failed")
    return float(done.stdout)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="shell_imports.py", description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=_positive, default=15, help="fresh processes per case (15)")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    times: dict[str, list[float]] = {name: [] for name in CASES}
    try:
        for code in CASES.values():  # once each to write bytecode and fill the page cache
            _one(code, env)
        for _ in range(args.runs):
            for name, code in CASES.items():
                times[name].append(_one(code, env))
    except (RuntimeError, subprocess.TimeoutExpired) as err:
        print(f"shell_imports: a case failed: {err}", file=sys.stderr)
        return 1
    import wcwidth

    version = getattr(wcwidth, "__version__", "?")
    print(f"shell start-up imports, CPU ms, median of {args.runs} fresh processes "
          f"(load {os.getloadavg()[0]:.1f}, wcwidth {version}):")
    for name, values in times.items():
        print(f"  {name:8} {statistics.median(values):7.1f} ms   "
              f"(min {min(values):.1f}, max {max(values):.1f})")
    on, off = statistics.median(times["gc on"]), statistics.median(times["gc off"])
    print(f"  gc off / gc on: {off / on:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
