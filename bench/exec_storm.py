"""Exec storm: several guarded processes exec'ing as fast as they can; events/s handled, dropped.

    .venv/bin/python bench/exec_storm.py [--procs 4] [--seconds 5] [--rung fanotify]
                                         [--mode enforce] [--ring-bytes N] [--json]

P bash loops (`while :; do /bin/true; done`), all in one guarded tree, run for
S seconds under the layer (default: rung 2, enforce, decide = allow, default
marks). Prints the execs completed per second, the ring-buffer records and
permission events the layer handled per second, what the kernel counted as
dropped (ring buffer full), deadline misses, and the sensor process's CPU.
`--ring-bytes 4096` shrinks the ring buffer to show drops being counted.
decide's allows are cacheable (as a plain `/bin/true` is for the daemon), so
on rung 2 in enforce the C loop (fanswer.c) answers repeats itself;
`--python-reader` measures the Python reader alone, `--uncached` makes every
exec go to decide (through C's hand-over).
Needs root; prints figures, asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time

from attyguard.kernel.events import ALLOW, ExecDecision, ExecEvent, Rung
from attyguard.kernel.layer import KernelLayer, probe


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--procs", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--rung", choices=[r.value for r in Rung], default="fanotify")
    ap.add_argument("--mode", choices=("warn", "enforce"), default="enforce")
    ap.add_argument("--ring-bytes", type=int, default=None)
    ap.add_argument("--python-reader", action="store_true")
    ap.add_argument("--uncached", action="store_true")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("exec_storm: needs root (BPF, fanotify)", file=sys.stderr)
        return 1
    pr = probe(Rung(args.rung))
    if pr.in_use is not Rung(args.rung):
        print(f"exec_storm: rung {args.rung} does not run here: "
              f"{pr.status(Rung(args.rung)).reason}", file=sys.stderr)
        return 1
    decided = [0]
    answer = ALLOW if args.uncached else ExecDecision(True, cacheable=True)

    def decide(ev: ExecEvent) -> ExecDecision:
        decided[0] += 1
        return answer

    layer = KernelLayer(pr, decide=decide, on_event=lambda ev: None, mode=args.mode,
                        ring_buffer_bytes=args.ring_bytes,
                        answer_path="python" if args.python_reader else "auto")
    # One parent holds the tree: guard it, then it starts the loops.
    loop = "while :; do /bin/true; done"
    parent = subprocess.Popen(
        ["/bin/bash", "--norc", "-c",
         f"read go; for i in $(seq {args.procs}); do ( {loop} ) & done; wait"],
        stdin=subprocess.PIPE, start_new_session=True,
    )
    try:
        layer.start()
        layer.guard_tree(parent.pid)
        c0 = time.process_time()
        s0 = layer.status()
        t0 = time.perf_counter()
        assert parent.stdin is not None
        parent.stdin.write(b"go\n")
        parent.stdin.flush()
        time.sleep(args.seconds)  # the measurement window itself
        s1 = layer.status()
        elapsed = time.perf_counter() - t0
        cpu = time.process_time() - c0
    finally:
        os.killpg(parent.pid, signal.SIGKILL)
        parent.wait()
        layer.stop()

    def rate(key: str) -> float:
        return (s1[key] - s0[key]) / elapsed

    k0, k1 = s0["kernel"], s1["kernel"]
    out = {
        "procs": args.procs, "seconds": round(elapsed, 2), "rung": args.rung, "mode": args.mode,
        "ring_bytes": args.ring_bytes or 1 << 22,
        "exec_records_per_s": round(rate("exec_events")),
        "records_per_s": round(rate("events_seen")),
        "permission_events_per_s": round(rate("permission_events")),
        "judged_per_s": round(rate("judged")),
        "kernel_seen_per_s": round((k1.get("seen", 0) - k0.get("seen", 0)) / elapsed),
        "dropped": k1.get("dropped", 0) - k0.get("dropped", 0),
        "deadline_misses": s1["deadline_misses"] - s0["deadline_misses"],
        "answer_path": s1["answer_path"],
        "answered_in_c_per_s": {k: round((v - s0["answered_in_c"][k]) / elapsed)
                                for k, v in s1["answered_in_c"].items()},
        "handed_to_python_per_s": round(rate("handed_to_python")),
        "records_lost": s1["records_lost"],
        "sensor_cpu_share": round(cpu / elapsed, 3),
        "loadavg": os.getloadavg(),
    }
    if args.json:
        print(json.dumps(out))
    else:
        for k, v in out.items():
            print(f"{k:26} {v}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
