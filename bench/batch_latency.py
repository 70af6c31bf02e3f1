#!/usr/bin/env python3
"""Throughput and per-line latency of `attyguard check --batch` over a JSONL corpus.

    python bench/batch_latency.py [CORPUS.jsonl] [--repeat N] [--trust] [--daemon SOCKET]

Runs the real console script once over the corpus (each input line needs
"cmd"; other keys are passed through untouched) and prints:
  - p50 / p90 / p99 / max of the engine's own `elapsed_us` per line,
  - lines per second end to end (process start, imports and JSON included),
  - the same for a baseline run of `cat` over the same input (the pipe cost).
Default corpus: ../shared/eval/dev/benign.jsonl relative to the repository
(../../shared/… when run from a worktree under wt/).
A throwaway ATTYGUARD_HOME is used so no trust store of yours is read.
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

__all__ = ["main"]

REPO = Path(__file__).resolve().parent.parent
# ../shared from the main checkout; a worktree under wt/ sits one level deeper.
_CANDIDATES = [base / "shared" / "eval" / "dev" / "benign.jsonl"
               for base in (REPO.parent, REPO.parent.parent)]
DEFAULT_CORPUS = next((c for c in _CANDIDATES if c.exists()), _CANDIDATES[0])


def _percentile(sorted_values: list[int], q: float) -> int:
    if not sorted_values:
        return 0
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


def _attyguard() -> str:
    candidate = Path(sys.executable).parent / "attyguard"
    return str(candidate) if candidate.exists() else "attyguard"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpus", nargs="?", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--repeat", type=int, default=1, help="feed the corpus N times")
    parser.add_argument("--trust", action="store_true", help="consult an (empty) trust store")
    parser.add_argument("--daemon", metavar="SOCKET", help="ask this daemon")
    args = parser.parse_args()
    try:
        data = args.corpus.read_bytes() * max(1, args.repeat)
    except OSError as exc:
        print(f"batch_latency: cannot read {args.corpus}: {exc.strerror}", file=sys.stderr)
        return 3
    lines_in = sum(1 for raw in data.splitlines() if raw.strip())

    cmd = [_attyguard(), "check", "--batch"]
    cmd += ["--daemon", args.daemon] if args.daemon else ["--no-daemon"]
    if not args.trust:
        cmd.append("--no-trust")
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "ATTYGUARD_HOME": home}
        start = time.perf_counter()
        proc = subprocess.run(cmd, input=data, env=env, capture_output=True)
        wall = time.perf_counter() - start
        start = time.perf_counter()
        subprocess.run(["cat"], input=data, capture_output=True, check=True)
        cat_wall = time.perf_counter() - start

    elapsed: list[int] = []
    actions: dict[str, int] = {}
    errors = 0
    for raw in proc.stdout.splitlines():
        obj = json.loads(raw)
        if "error" in obj:
            errors += 1
            continue
        elapsed.append(int(obj["elapsed_us"]))
        actions[obj["action"]] = actions.get(obj["action"], 0) + 1
    elapsed.sort()
    answered = len(elapsed) + errors
    print(f"corpus: {args.corpus} ({lines_in} lines x{max(1, args.repeat)}), command: "
          f"{' '.join(cmd[1:])}")
    print(f"exit status {proc.returncode}; answered {answered}/{lines_in}; errors {errors}; "
          f"actions {json.dumps(actions, sort_keys=True)}")
    if elapsed:
        print(f"elapsed_us per line: p50 {_percentile(elapsed, 0.50)}  "
              f"p90 {_percentile(elapsed, 0.90)}  p99 {_percentile(elapsed, 0.99)}  "
              f"max {elapsed[-1]}  mean {statistics.fmean(elapsed):.1f}")
    print(f"end to end: {wall:.3f} s, {answered / wall:,.0f} lines/s "
          f"(baseline cat over the same input: {cat_wall * 1000:.1f} ms)")
    if proc.returncode not in (0, 3) or answered != lines_in:
        sys.stderr.write(proc.stderr.decode(errors="replace")[-2000:])
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
