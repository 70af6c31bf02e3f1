"""The exec guard's cost: judge time per exec, and an exec loop / storm against a real daemon.

Prints figures; asserts nothing. Needs root for the sensors (without root the
daemon runs with the exec guard unable to start, and that is said).

1. judge: `ExecService.decide` for an exec in a guarded tree (harmless, and
   one the Tier-1 rules block) and for one outside the scope (the fast path),
   in process: the time a permission rung's task waits for the answer.
2. exec loop: fork+exec of /bin/true N times (posix_spawn + wait) from a
   process registered as a guarded shell, with no daemon, and with the daemon
   at `--ebpf-mode off|warn|enforce` in turn, in one run; ratio to no daemon.
   The rung in use is printed (today: the kernel layer's when installed, else
   `audit`, the proc connector: it never makes an exec wait, so its cost is
   the CPU it takes from the loop on a shared machine).
3. storm: P processes exec'ing /bin/true as fast as they can for S seconds
   against the daemon in warn mode: events seen and judged per second by the
   daemon, and events dropped (receive-buffer overruns).

    .venv/bin/python bench/exec_guard.py [--loops 5000] [--storm-procs 4] [--storm-s 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from attyguard.daemon.execservice import ExecService
from attyguard.daemon.threats import ProcfsProcessTable, ThreatMap
from attyguard.engine.classify import classify
from attyguard.kernel.events import ExecEvent, Rung
from tests.daemon_harness import RunningDaemon, remove_tmpdirs, short_tmpdir, wait_for


def judge_figures(rounds: int) -> None:
    svc = ExecService(mode="enforce", scope="sessions", group="", deadline_ms=200,
                      engine=classify, threats=ThreatMap(ProcfsProcessTable()),
                      send_to_pid=lambda pid, data: 0,
                      send_to_followers=lambda record, uid: None)
    svc.rung = Rung.FANOTIFY
    # The exec'ing task: a real process (the daemon never judges its own pid).
    child = subprocess.Popen(["sleep", "600"])
    try:
        _judge_rounds(svc, child.pid, rounds)
    finally:
        child.kill()
        child.wait()


def _judge_rounds(svc: ExecService, me: int, rounds: int) -> None:
    outside = ExecEvent(time.time(), me, me, os.getpid(), 0, "/usr/bin/ls", ("ls", "-l"))
    for name, argv, registered in (
            ("outside the scope", ("ls", "-l"), False),
            ("guarded, harmless", ("ls", "-l"), True),
            ("guarded, Tier-1 block", ("bash", "-c", "echo aGk= | base64 -d | sh"), True)):
        if registered:
            svc.register(me)
        event = outside if not registered else ExecEvent(
            time.time(), me, me, os.getpid(), 0, f"/usr/bin/{argv[0]}", argv)
        times = []
        for _ in range(rounds):
            start = time.perf_counter_ns()
            svc.decide(event)
            times.append(time.perf_counter_ns() - start)
            svc.threats.clear(me)  # (a block marks the tree Critical)
        times.sort()
        print(f"judge  {name:24} median {statistics.median(times) / 1000:8.1f} us   "
              f"p99 {times[int(len(times) * 0.99)] / 1000:8.1f} us   ({rounds} decisions)")


def exec_loop(n: int) -> float:
    """The median seconds of one posix_spawn + wait of /bin/true over n (the median of
    single execs: a shared machine's bursts of load move a total far more)."""
    times = []
    for _ in range(n):
        start = time.perf_counter()
        pid = os.posix_spawn("/bin/true", ["/bin/true"], os.environ)
        os.waitpid(pid, 0)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def with_daemon(mode: str) -> RunningDaemon:
    d = RunningDaemon(short_tmpdir(), ("--ebpf-mode", mode),
                      "[daemon]\nexec_events_kept = 100000\n")
    d.start()
    wait_for(lambda: "exec guard:" in d.log(), 20, "the exec guard", d.log)
    reply = d.call("register", pid=os.getpid())
    if not reply.get("ok"):
        raise SystemExit(f"register failed: {reply}")
    return d


def loop_figures(n: int, rounds: int) -> None:
    # Interleaved rounds, medians: a shared machine's load drifts during the run.
    modes = ("none", "off", "warn", "enforce")
    times: dict[str, list[float]] = {m: [] for m in modes}
    last: dict[str, dict[str, object]] = {}
    for _ in range(rounds):
        for mode in modes:
            if mode == "none":
                times[mode].append(exec_loop(n))
                continue
            d = with_daemon(mode)
            try:
                times[mode].append(exec_loop(n))
                last[mode] = d.call("status")["exec"]
            finally:
                d.stop()
    base = statistics.median(times["none"])
    for mode in modes:
        med = statistics.median(times[mode])
        status = last.get(mode, {})
        c = status.get("counters") or {}
        assert isinstance(c, dict)
        each = ", ".join(f"{t * 1e6:.0f}" for t in times[mode])
        print(f"exec loop x{n} {mode:8} rung {status.get('rung')!s:8} per exec {med * 1e6:6.0f} us "
              f"(rounds: {each})  ratio {med / base:.3f}"
              + (f"  last round: judged {c.get('judged', 0)} dropped {c.get('dropped', 0)} "
                 f"unreadable {c.get('unreadable', 0)}" if c else ""))


def storm_figures(procs: int, seconds: float) -> None:
    d = with_daemon("warn")
    try:
        before = d.call("status")["exec"]["counters"]
        script = (f"end=$(( $(date +%s) + {max(1, int(seconds))} )); n=0; "
                  "while [ $(date +%s) -lt $end ]; do /bin/true; n=$((n+1)); done; echo $n")
        start = time.perf_counter()
        workers = [subprocess.Popen(["sh", "-c", script], stdout=subprocess.PIPE, text=True)
                   for _ in range(procs)]
        spawned = 0
        for w in workers:
            out, _ = w.communicate(timeout=seconds + 60)
            spawned += int(out.strip() or 0)
        elapsed = time.perf_counter() - start
        # let the daemon finish what is queued, then read its counters
        wait_for(lambda: d.call("status")["exec"]["counters"]["seen"] >= before["seen"],
                 10, "the daemon")
        after = d.call("status")["exec"]["counters"]
        seen = after["seen"] - before["seen"]
        print(f"storm  {procs} procs x {seconds:g} s: /bin/true spawned {spawned} "
              f"(+ date each round), daemon saw {seen} execs = {seen / elapsed:,.0f}/s, "
              f"judged {after['judged'] - before['judged']}, dropped (overruns) "
              f"{after['dropped']}, unreadable {after['unreadable'] - before['unreadable']}")
    finally:
        d.stop()


def main() -> int:
    import logging

    logging.getLogger("attyguard.daemon").setLevel(logging.ERROR)  # (decide logs each refusal)
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--loops", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--judge-rounds", type=int, default=2000)
    parser.add_argument("--storm-procs", type=int, default=4)
    parser.add_argument("--storm-s", type=float, default=3.0)
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("note: not root: the daemon cannot start a sensor; loop figures are the "
              "daemon's idle cost only")
    print(f"load: {os.getloadavg()}")
    try:
        judge_figures(args.judge_rounds)
        loop_figures(args.loops, args.rounds)
        storm_figures(args.storm_procs, args.storm_s)
    finally:
        remove_tmpdirs()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
