#!/usr/bin/env python3
"""What a state lookup costs a round trip: `echo $HOME` against `echo hi` in one run.

`echo $HOME` uses a variable the line does not spell out, so the guarded
shell fetches it from its bash child (one round trip over the private
channel, shell/state.py) before judging; `echo hi` is literal and pays
nothing. Both are sent alternately to the same attyguard (so machine load
hits both alike), each timed from Enter to the next prompt with
bench/shell_bench.py's prompt watcher. Target: at most 1 ms more.

Usage: python bench/state_round_trip.py [--n 200] [--json]
Prints medians, the difference and its interquartile range; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from shell_bench import PS1, PromptWatcher, ShellUnderTest, _environment

WARMUP = 10


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--n", type=int, default=200, help="round trips of each line")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    exe = shutil.which("attyguard") or str(Path(sys.executable).parent / "attyguard")
    with tempfile.TemporaryDirectory(prefix="ag-state-rt-") as tmp:
        home = Path(tmp)
        (home / ".bashrc").write_text(f"PS1='{PS1}'\nHISTFILE=\n")
        watcher = PromptWatcher(ShellUnderTest("attyguard", (exe,)), _environment(home), tmp)
        times: dict[str, list[float]] = {"echo hi": [], "echo $HOME": []}
        try:
            watcher.wait_prompt(30)
            for i in range(args.n + WARMUP):
                for line in times:
                    start = time.perf_counter()
                    watcher.send(line.encode() + b"\r")
                    watcher.wait_prompt(10)
                    if i >= WARMUP:
                        times[line].append(time.perf_counter() - start)
        finally:
            watcher.close()
    plain = statistics.median(times["echo hi"])
    state = statistics.median(times["echo $HOME"])
    diffs = [b - a for a, b in zip(times["echo hi"], times["echo $HOME"], strict=True)]
    q = statistics.quantiles(diffs, n=4)
    if args.json:
        print(json.dumps({"echo_hi_ms": plain * 1000, "echo_home_ms": state * 1000,
                          "extra_ms_median_of_pairs": statistics.median(diffs) * 1000,
                          "n": args.n}))
        return 0
    print(f"state round trip ({args.n} alternating pairs, medians):")
    print(f"  echo hi      {plain * 1000:7.2f} ms")
    print(f"  echo $HOME   {state * 1000:7.2f} ms")
    print(f"  extra        {(state - plain) * 1000:+7.2f} ms (median of pair differences "
          f"{statistics.median(diffs) * 1000:+.2f} ms, IQR {q[0] * 1000:+.2f}..{q[2] * 1000:+.2f})"
          f"   target: <= +1 ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
