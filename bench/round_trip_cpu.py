#!/usr/bin/env python3
"""CPU per round trip of the guarded shell: where a `true` + Enter goes.

Wall-clock figures on 2 shared cores are noisy; this script reports what the
machine's load does not change much: on-CPU time per round trip of the front
end (every thread of the attyguard process), of its bash child and of this
harness (reading the terminal, as a terminal emulator would), read from
/proc/<pid>/task/*/schedstat (nanoseconds) before and after N round trips,
context switches per round trip, and the median wall time for reference.

With `--profile`, the front end runs under cProfile, switched on only for the
measured round trips (SIGUSR1 on, SIGUSR2 off and dump), and the top
functions by own time are printed with call counts per round trip (renders,
key presses…). Profiled wall/CPU figures are inflated; compare like with like.
With `--spans`, the front end logs when each step starts and ends, and the
median timeline of a round trip is printed (ms after the keys were written):
which steps the next prompt waits for, and which happen while bash runs.

Drives the shell exactly as bench/shell_bench.py does (same rc, prompt marker
and environment; its PromptWatcher is reused). Prints figures and exits 0;
1 if the shell could not be measured (one line saying why); 2 on bad arguments.

    .venv/bin/python bench/round_trip_cpu.py --round-trips 300
    .venv/bin/python bench/round_trip_cpu.py --round-trips 300 --profile /tmp/rt.pstats
    .venv/bin/python bench/round_trip_cpu.py --round-trips 300 --phases /tmp/rt.json
    .venv/bin/python bench/round_trip_cpu.py --round-trips 300 --spans /tmp/rt-spans.json
    .venv/bin/python bench/round_trip_cpu.py --repeat 5 --baseline /tmp/base   # before/after
"""

from __future__ import annotations

import argparse
import json
import os
import pstats
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from shell_bench import (  # a sibling script, not a package
    BASHRC,
    BenchError,
    PromptWatcher,
    ShellUnderTest,
    _environment,
)

__all__ = ["main"]

# Runs attyguard's entry point with a profiler toggled by signals, so start-up
# and exit stay out of the figures.
_PROFILED = """\
import cProfile, os, signal, sys
out = sys.argv[1]
sys.argv = ["attyguard"]
prof = cProfile.Profile()
def on(_s, _f):
    prof.enable()
def off(_s, _f):
    prof.disable()
    prof.dump_stats(out + ".tmp")
    os.replace(out + ".tmp", out)  # whole or absent: the harness polls for it
signal.signal(signal.SIGUSR1, on)
signal.signal(signal.SIGUSR2, off)
from attyguard.cli import main
sys.exit(main())
"""

# Runs attyguard's entry point with CPU time (time.process_time) summed per
# phase of a round trip, toggled by the same signals and written as JSON.
# Phases nest (a render inside a key press inside a read): read them as
# "of which".
_PHASED = """\
import json, os, signal, sys, time
out = sys.argv[1]
sys.argv = ["attyguard"]
on = [False]
acc = {}
def wrap(owner, name, label):
    inner = getattr(owner, name)
    def timed(*a, **k):
        if not on[0]:
            return inner(*a, **k)
        t = time.process_time()
        try:
            return inner(*a, **k)
        finally:
            d = acc.setdefault(label, [0.0, 0])
            d[0] += time.process_time() - t
            d[1] += 1
    setattr(owner, name, timed)
def start(_s, _f):
    on[0] = True
def stop(_s, _f):
    on[0] = False
    with open(out + ".tmp", "w") as f:
        json.dump(acc, f)
    os.replace(out + ".tmp", out)
signal.signal(signal.SIGUSR1, start)
signal.signal(signal.SIGUSR2, stop)
from prompt_toolkit.renderer import Renderer
from prompt_toolkit.key_binding.key_processor import KeyProcessor
from attyguard.shell import bash, prompt, session
from attyguard import guard
wrap(prompt.ShellPrompt, "read", "read (prompt up to accept, done render, teardown)")
wrap(Renderer, "render", "  of which render")
wrap(KeyProcessor, "process_keys", "  of which process_keys")
wrap(session.Session, "submit", "submit (classify, send, wait for bash)")
wrap(guard.Guard, "decide", "  of which Guard.decide")
wrap(bash.BashChild, "passthrough", "  of which passthrough")
wrap(session.Session, "_after_command", "after_command")
import gc
gc_t = [0.0]
def on_gc(phase, info):
    if not on[0]:
        return
    if phase == "start":
        gc_t[0] = time.process_time()
    else:
        d = acc.setdefault(f"garbage collection (generation {info['generation']})", [0.0, 0])
        d[0] += time.process_time() - gc_t[0]
        d[1] += 1
gc.callbacks.append(on_gc)
from attyguard.cli import main
sys.exit(main())
"""

# Runs attyguard's entry point logging when each step of a round trip starts
# and ends (time.perf_counter: CLOCK_MONOTONIC, the harness's clock too), toggled
# by the same signals, written as JSON [[seconds, "label+"|"label-"], ...]: a
# timeline of the accept -> run -> next prompt path, to tell the steps the next
# prompt waits for from those done while bash runs.
_SPANNED = """\
import json, os, signal, sys, time
out = sys.argv[1]
sys.argv = ["attyguard"]
on = [False]
log = []
now = time.perf_counter
def wrap(owner, name, label):
    inner = getattr(owner, name)
    def timed(*a, **k):
        if not on[0]:
            return inner(*a, **k)
        log.append((now(), label + "+"))
        try:
            return inner(*a, **k)
        finally:
            log.append((now(), label + "-"))
    setattr(owner, name, timed)
def start(_s, _f):
    on[0] = True
def stop(_s, _f):
    on[0] = False
    with open(out + ".tmp", "w") as f:
        json.dump(log, f)
    os.replace(out + ".tmp", out)
signal.signal(signal.SIGUSR1, start)
signal.signal(signal.SIGUSR2, stop)
from prompt_toolkit.renderer import Renderer
from prompt_toolkit.key_binding.key_processor import KeyProcessor
from attyguard.shell import bash, prompt, session
wrap(prompt.ShellPrompt, "read", "read")
wrap(Renderer, "render", "render")
wrap(KeyProcessor, "process_keys", "process_keys")
wrap(session.Session, "accepting", "accepting (classify, send to bash)")
wrap(session.Session, "submit", "submit")
wrap(bash.BashChild, "passthrough", "passthrough")
wrap(bash.BashChild, "_output_mark", "bash's mark")
wrap(session.Session, "_after_command", "after_command")
from attyguard.cli import main
sys.exit(main())
"""

# Functions whose call counts per round trip say how much work one line costs.
_COUNTED = (
    ("renderer.py", "render"),
    ("key_processor.py", "process_keys"),
    ("key_processor.py", "_call_handler"),
    ("application.py", "_redraw"),
    ("application.py", "run_async"),
    ("bash.py", "_step"),
    ("guard.py", "decide"),
)


def _tree(pid: int) -> list[int]:
    """`pid` and its descendants (bash and anything it runs)."""
    out = [pid]
    i = 0
    while i < len(out):
        p = out[i]
        i += 1
        try:
            for tid in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{tid}/children", encoding="ascii") as f:
                    out.extend(int(c) for c in f.read().split())
        except OSError:
            continue
    return out


def _cpu_ns(pid: int) -> int:
    """On-CPU nanoseconds of every thread of `pid`."""
    total = 0
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/schedstat", encoding="ascii") as f:
                total += int(f.read().split()[0])
    except OSError:
        pass
    return total


def _switches(pid: int) -> int:
    total = 0
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/status", encoding="ascii") as f:
                for line in f:
                    if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt")):
                        total += int(line.split()[1])
    except OSError:
        pass
    return total


def _snapshot(front: int) -> dict[str, int]:
    kids = _tree(front)[1:]
    return {
        "front_ns": _cpu_ns(front),
        "bash_ns": sum(_cpu_ns(k) for k in kids),
        "front_cs": _switches(front),
        "bash_cs": sum(_switches(k) for k in kids),
    }


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="round_trip_cpu.py", description=__doc__.split("\n")[0])
    default = Path(sys.executable).parent / "attyguard"
    parser.add_argument("--round-trips", type=int, default=300, help="measured round trips (300)")
    parser.add_argument("--warmup", type=int, default=20, help="round trips not counted (20)")
    parser.add_argument("--attyguard", default=str(default), help=f"the shell to run ({default})")
    parser.add_argument("--profile", metavar="PSTATS", help="run the front end under cProfile")
    parser.add_argument("--phases", metavar="JSON",
                        help="sum the front end's CPU time per phase (written to JSON)")
    parser.add_argument("--spans", metavar="JSON",
                        help="log when each step starts and ends (written to JSON) and print "
                             "the median timeline of a round trip")
    parser.add_argument("--repeat", type=int, default=1, help="runs per tree, medians (1)")
    parser.add_argument("--baseline", metavar="DIR",
                        help="also run another source tree (first on PYTHONPATH), interleaved")
    parser.add_argument("--tree", metavar="DIR",
                        help="measure another source tree (first on PYTHONPATH) instead of "
                             "this one, e.g. to profile a baseline")
    parser.add_argument("--top", type=int, default=25, help="profile rows to print (25)")
    parser.add_argument("--timeout", type=float, default=30.0, help="per-wait limit in s (30)")
    args = parser.parse_args(argv)
    if args.round_trips < 1 or args.warmup < 0 or args.repeat < 1:
        parser.error("--round-trips and --repeat must be at least 1, --warmup at least 0")
    if (args.profile or args.phases or args.spans) and args.repeat != 1:
        parser.error("--profile, --phases and --spans take one run (--repeat 1)")
    return args


def _print_profile(path: str, n: int, top: int) -> None:
    stats = pstats.Stats(path)
    raw = stats.stats  # type: ignore[attr-defined]
    total = sum(v[2] for v in raw.values())
    print(f"profile: {total / n * 1000:.3f} ms of profiled own time per round trip")
    for file_end, name in _COUNTED:
        calls = sum(v[1] for (f, _line, fn), v in raw.items()
                    if f.endswith(file_end) and fn == name)
        print(f"  {file_end}:{name}: {calls / n:.2f} calls per round trip")
    print(f"top {top} by own time (ms per round trip, calls per round trip):")
    rows = sorted(raw.items(), key=lambda kv: kv[1][2], reverse=True)[:top]
    for (f, line, fn), (_cc, nc, tt, ct, *_callers) in rows:
        where = "/".join(f.split("/")[-2:])
        print(f"  {tt / n * 1000:7.3f} own {ct / n * 1000:7.3f} cum {nc / n:8.1f}×  "
              f"{where}:{line}({fn})")


@dataclass
class _Run:
    walls: list[float]
    delta: dict[str, int]
    sends: list[float]  # perf_counter when each measured `true\r` was written


def _print_spans(path: str, run: _Run) -> None:
    """Median time after the keys were written at which each step began (+) and ended (-)."""
    with open(path, encoding="utf-8") as f:
        events: list[tuple[float, str]] = [(float(t), str(label)) for t, label in json.load(f)]
    offsets: dict[str, list[float]] = {}
    i = 0
    for send, wall in zip(run.sends, run.walls, strict=True):
        while i < len(events) and events[i][0] < send:
            i += 1
        seen: dict[str, int] = {}
        while i < len(events) and events[i][0] <= send + wall:
            t, label = events[i]
            seen[label] = seen.get(label, 0) + 1
            offsets.setdefault(f"{label} #{seen[label]}", []).append((t - send) * 1000)
            i += 1
        offsets.setdefault("next prompt read by the harness", []).append(wall * 1000)
    n = len(run.sends)
    print("timeline of a round trip (median ms after the keys were written; "
          "+ begins, - ends; steps seen in at least half the round trips):")
    for label, values in sorted(offsets.items(), key=lambda kv: statistics.median(kv[1])):
        if len(values) * 2 >= n:
            print(f"  {statistics.median(values):7.3f} ms  {label}")


def _measure(args: argparse.Namespace, argv_: tuple[str, ...], dump: str | None,
             pythonpath: str | None) -> _Run:
    """One shell, `--warmup` then `--round-trips` measured round trips."""
    with tempfile.TemporaryDirectory(prefix="rt-cpu-") as tmp:
        home = Path(tmp)
        (home / ".bashrc").write_text(BASHRC)
        env = _environment(home)
        if pythonpath:
            env["PYTHONPATH"] = pythonpath
        watcher = PromptWatcher(ShellUnderTest("attyguard", argv_), env, tmp)
        try:
            watcher.wait_prompt(args.timeout)
            for _ in range(args.warmup):
                watcher.send(b"true\r")
                watcher.wait_prompt(args.timeout)
            front = watcher.proc.pid
            if dump:
                os.kill(front, signal.SIGUSR1)
            before = _snapshot(front)
            before["harness_ns"] = time.process_time_ns()
            walls: list[float] = []
            sends: list[float] = []
            for _ in range(args.round_trips):
                start = time.perf_counter()
                watcher.send(b"true\r")
                watcher.wait_prompt(args.timeout)
                walls.append(time.perf_counter() - start)
                sends.append(start)
            after = _snapshot(front)
            after["harness_ns"] = time.process_time_ns()
            if dump:
                os.kill(front, signal.SIGUSR2)
                deadline = time.monotonic() + args.timeout
                while not os.path.exists(dump) and time.monotonic() < deadline:
                    time.sleep(0.01)  # the dump appears atomically (renamed into place)
        finally:
            watcher.close()
    return _Run(walls, {k: after[k] - before[k] for k in after}, sends)


def _summary(runs: list[_Run], n: int) -> str:
    """Medians over the runs of each run's figures."""
    def med(values: list[float]) -> float:
        return statistics.median(values)

    wall = med([statistics.median(r.walls) for r in runs]) * 1000
    front = med([r.delta["front_ns"] / n / 1e6 for r in runs])
    bash = med([r.delta["bash_ns"] / n / 1e6 for r in runs])
    harness = med([r.delta["harness_ns"] / n / 1e6 for r in runs])
    fcs = med([r.delta["front_cs"] / n for r in runs])
    bcs = med([r.delta["bash_cs"] / n for r in runs])
    return (f"wall median {wall:.2f} ms; CPU front end {front:.3f} ms/rt, bash {bash:.3f} "
            f"ms/rt, this harness {harness:.3f} ms/rt; context switches front {fcs:.1f}/rt, "
            f"bash {bcs:.1f}/rt")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if not os.access(args.attyguard, os.X_OK):
        print(f"round_trip_cpu: {args.attyguard} is not an executable file", file=sys.stderr)
        return 2
    if sum(bool(x) for x in (args.profile, args.phases, args.spans)) > 1:
        print("round_trip_cpu: --profile, --phases and --spans exclude each other",
              file=sys.stderr)
        return 2
    for tree in (args.baseline, args.tree):
        if tree and not os.path.isdir(os.path.join(tree, "attyguard")):
            print(f"round_trip_cpu: {tree} holds no attyguard package", file=sys.stderr)
            return 2
    dump = args.profile or args.phases or args.spans
    if dump and os.path.exists(dump):
        os.unlink(dump)
    if dump:
        python = Path(args.attyguard).parent / "python"
        script = _PROFILED if args.profile else _PHASED if args.phases else _SPANNED
        argv_ = (str(python), "-c", script, os.path.abspath(dump))
    else:
        argv_ = (args.attyguard,)
    current: list[_Run] = []
    baseline: list[_Run] = []
    try:
        for i in range(args.repeat):
            # Interleaved, so the machine's load hits both alike, and which
            # tree goes first alternates: the same tree measured twice came
            # out ~3% slower in second place (bench/README.md, third pass).
            base_first = i % 2 == 0
            if args.baseline and base_first:
                baseline.append(_measure(args, argv_, None, os.path.abspath(args.baseline)))
            current.append(_measure(args, argv_, dump, args.tree and os.path.abspath(args.tree)))
            if args.baseline and not base_first:
                baseline.append(_measure(args, argv_, None, os.path.abspath(args.baseline)))
    except (BenchError, OSError) as err:
        print(f"round_trip_cpu: could not be measured: {err}", file=sys.stderr)
        return 1
    n = args.round_trips
    print(f"round trips: {n} × {args.repeat} runs (medians); load {os.getloadavg()[0]:.1f}; "
          f"{time.strftime('%Y-%m-%d %H:%M:%S %Z')}")
    print(f"  {'tree ' + args.tree if args.tree else 'current'}:  {_summary(current, n)}")
    if baseline:
        print(f"  baseline: {_summary(baseline, n)}")
    if args.profile:
        _print_profile(args.profile, n * args.repeat, args.top)
    if args.spans:
        _print_spans(args.spans, current[0])
    if args.phases:
        with open(args.phases, encoding="utf-8") as f:
            phases = json.load(f)
        print("front end CPU per phase (ms per round trip, calls per round trip):")
        for label, (seconds, calls) in phases.items():
            print(f"  {seconds / n * 1000:7.3f} ms {calls / n:5.2f}×  {label}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
