"""Engine cold start: a fresh process importing the engine and classifying one line.

Usage:
  python bench/engine_coldstart.py [--runs N] [--baseline DIR] [--json]

What every `ssh host CMD`, scp, rsync, git-over-ssh and editor `$SHELL -c`
pays before bash even starts. Spawns N fresh processes (interleaved, so load
on the 2 shared cores hits every case alike) and prints medians in ms:

  engine   python -c 'import attyguard.engine.classify as c; c.classify("ls")'
  -c true  python -m attyguard -c true   (stdin from /dev/null, no tty)
  python   python -c pass                (interpreter start-up, for reference)
  bash     bash -c true                  (for reference)

`--baseline DIR` measures a second source tree the same way in the same run
(e.g. `git archive <rev> | tar -x -C DIR`), each tree put first on PYTHONPATH,
and prints the ratio current/baseline. HOME is an empty temporary directory
(ATTYGUARD_HOME and XDG_* unset, as for a real user: no config file, a new
trust store); bytecode is
written and used (PYTHONDONTWRITEBYTECODE is dropped) as in an install. Prints
figures, never asserts; exits 1 when a command fails.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

ENGINE = "import attyguard.engine.classify as c; c.classify('ls')"


def _cases(tree: Path | None) -> dict[str, list[str]]:
    py = sys.executable
    return {
        "engine": [py, "-c", ENGINE],
        "-c true": [py, "-m", "attyguard", "-c", "true"],
    } if tree is not None else {
        "python": [py, "-c", "pass"],
        "bash": ["bash", "-c", "true"],
    }


def _env(tree: Path | None, home: str) -> dict[str, str]:
    # Run from `home` too: `python -c` puts the working directory first on sys.path.
    # HOME, not ATTYGUARD_HOME: a real user has no override, so the platformdirs
    # lookup of the config and trust store paths is part of the cost measured.
    env = {k: v for k, v in os.environ.items()
           if k != "ATTYGUARD_HOME" and not k.startswith("XDG_")}
    env["HOME"] = home
    env.pop("PYTHONPATH", None)
    # An installed attyguard has its bytecode (pip compiles it); without .pyc files
    # every start-up would also pay for compiling the sources.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if tree is not None:
        env["PYTHONPATH"] = str(tree)
    return env


def _time(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=env["HOME"], stdin=subprocess.DEVNULL,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    elapsed = (time.perf_counter() - start) * 1000
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}: "
                           f"{proc.stderr.decode(errors='replace').strip()[-500:]}")
    return elapsed


def _check_tree(tree: Path, env: dict[str, str]) -> None:
    """The tree's own attyguard must be the one imported (not the venv's editable one)."""
    out = subprocess.run([sys.executable, "-c", "import attyguard; print(attyguard.__file__)"],
                         env=env, cwd=env["HOME"], capture_output=True, text=True,
                         check=True).stdout.strip()
    if not Path(out).resolve().is_relative_to(tree.resolve()):
        raise RuntimeError(f"PYTHONPATH={tree} imports attyguard from {out}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=15, help="fresh processes per case (15)")
    ap.add_argument("--baseline", type=Path, help="a second source tree to compare against")
    ap.add_argument("--json", action="store_true", help="print the medians as JSON")
    args = ap.parse_args(argv)
    trees: dict[str, Path | None] = {"current": REPO}
    if args.baseline is not None:
        trees["baseline"] = args.baseline
    trees["ref"] = None
    with tempfile.TemporaryDirectory(prefix="attyguard-coldstart-") as home:
        jobs = []
        for label, tree in trees.items():
            env = _env(tree, home)
            if tree is not None:
                _check_tree(tree, env)
            for case, cmd in _cases(tree).items():
                jobs.append((label, case, cmd, env))
        samples: dict[tuple[str, str], list[float]] = {(j[0], j[1]): [] for j in jobs}
        try:
            for _label, _case, cmd, env in jobs:  # one warm-up each (page cache, .pyc)
                _time(cmd, env)
            for _ in range(args.runs):
                for label, case, cmd, env in jobs:
                    samples[(label, case)].append(_time(cmd, env))
        except RuntimeError as exc:
            print(f"engine_coldstart: {exc}", file=sys.stderr)
            return 1
    medians = {f"{label} {case}": statistics.median(v) for (label, case), v in samples.items()}
    if args.json:
        print(json.dumps(medians, indent=2))
        return 0
    print(f"median of {args.runs} fresh processes, ms ({sys.executable})")
    for key, value in medians.items():
        ratio = ""
        label, case = key.split(" ", 1)
        if label == "current" and f"baseline {case}" in medians:
            ratio = f"   ({value / medians[f'baseline {case}']:.2f} x baseline)"
        print(f"  {key:<20} {value:8.1f}{ratio}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
