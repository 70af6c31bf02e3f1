"""Exec loop: fork+exec of /bin/true N times, sensors off vs warn vs enforce, in one run.

    .venv/bin/python bench/exec_loop.py [--execs 5000] [--rounds 5] [--judge allow|engine]
                                        [--rungs fanotify,signal,audit] [--loader-cost]
                                        [--compare-helper OLD.so] [--bpf-stats] [--json]

A guarded `bash` runs `for ((i = 0; i < N; i++)); do /bin/true; done` (bash's
own fork + execve, as a script does); the figure is its wall time. Conditions
are interleaved round by round (off, then each rung in warn and enforce; the
order rotates each round), and the medians (and the best runs) are compared
with `off` (no layer at all); `paired` is the median of each round's ratio to
that round's own `off` run (slow drifts of the shared machine's load cancel), with
its quartiles, and the spread of `off` itself is printed. The layer marks the
default filesystems (PATH's, /tmp, /dev/shm, homes…), so /bin/true and its ELF
loader raise two permission events per exec, as they would in production;
processes of other users hit the fast path. `--judge engine` makes decide()
classify the argv with the Tier-1 engine (what the daemon roughly pays);
`allow` measures the layer alone. `fanotify/outside` runs the same loop
unguarded under the enforce layer: both permission events answered at once on
the C fast path (the floor of rung 2's mechanism, and what every process
outside the guarded trees pays). `--loader-cost` adds `fanotify/enforce-noloader`:
enforce with an ignore mark on the ELF loader (ld.so), which is NOT a supported
configuration (a direct `ld.so PROG` exec would go unjudged): it shows what the
loader's second permission wait costs. `--compare-helper OLD.so` adds
`fanotify/enforce-alt`, the same layer answered by another build of fanswer.c
(e.g. main's: `cc -O2 -shared -fPIC -pthread -I K K/fanswer.c -o OLD.so -l:libbpf.so.1`
with K main's attyguard/kernel):
a before/after of the C loop in one interleaved run. `--bpf-stats` turns on
kernel.bpf_stats_enabled during each layer's runs and prints the exec programs'
mean run time (bpftool's run_time_ns / run_cnt). Needs root; prints figures, asserts nothing.
Target (issue 10): enforce on rung 2 ≤ 1.10 × off (goal 1.05).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

from attyguard.kernel.events import ExecDecision, ExecEvent, Rung
from attyguard.kernel.layer import KernelLayer, Mode, probe


def run_loop(n: int, layer: KernelLayer | None) -> tuple[float, float, float]:
    """(wall seconds of the loop, CPU seconds of this process — the layer's threads —,
    CPU seconds of the loop itself: bash and every /bin/true, user + system)."""
    script = f"read go; for ((i = 0; i < {n}; i++)); do /bin/true; done"
    proc = subprocess.Popen(["/bin/bash", "--norc", "-c", script], stdin=subprocess.PIPE)
    try:
        if layer is not None:
            layer.guard_tree(proc.pid)
        t0 = time.perf_counter()
        c0 = time.process_time()
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        assert proc.stdin is not None
        proc.stdin.write(b"go\n")
        proc.stdin.close()
        rc = proc.wait()
        took = time.perf_counter() - t0
        cpu = time.process_time() - c0
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        loop_cpu = (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)
    finally:
        proc.kill()
        proc.wait()
    if rc != 0:
        raise SystemExit(f"exec_loop: the loop failed (status {rc})")
    return took, cpu, loop_cpu


CACHEABLE_ALLOW = ExecDecision(True, cacheable=True)
FAN_MARK_ADD, FAN_MARK_IGNORED_MASK, FAN_MARK_IGNORED_SURV_MODIFY = 0x01, 0x20, 0x40
FAN_OPEN_EXEC_PERM = 0x00040000


def ignore_loader(group_fd: int) -> None:
    """--loader-cost only: no permission event for the ELF loader's inode (see the doc)."""
    import ctypes

    from attyguard.kernel import fanotify as fan

    loader = os.path.realpath("/lib64/ld-linux-x86-64.so.2")
    rc = fan._libc.fanotify_mark(
        group_fd, FAN_MARK_ADD | FAN_MARK_IGNORED_MASK | FAN_MARK_IGNORED_SURV_MODIFY,
        FAN_OPEN_EXEC_PERM, fan.AT_FDCWD, os.fsencode(loader))
    if rc != 0:
        raise SystemExit(f"exec_loop: cannot ignore {loader}: {os.strerror(ctypes.get_errno())}")


def make_decide(judge: str) -> tuple[object, list[int]]:
    calls = [0]
    if judge == "engine":
        from attyguard.engine.classify import classify

        def decide(ev: ExecEvent) -> ExecDecision:
            calls[0] += 1
            v = classify(shlex.join(ev.argv))
            # cacheable as the daemon's would be: an allow that read nothing but argv
            allow = v.action.value != "block"
            return ExecDecision(allow, "", (), cacheable=allow and not v.rules)
    else:

        def decide(ev: ExecEvent) -> ExecDecision:
            calls[0] += 1
            return CACHEABLE_ALLOW

    return decide, calls


def load_alt_helper(path: str) -> object:
    """--compare-helper: another build of fanswer.c, declared as load_helper declares
    the current one (the bench swaps it in by hand for its own condition only)."""
    from attyguard.kernel import build
    from attyguard.kernel import fanotify as fan

    own = fan.load_helper()
    if isinstance(own, str):
        raise SystemExit(f"exec_loop: no C helper to compare with: {own}")
    saved = build.helper_path, build.helper_stale_reason
    fan._helper = None
    build.helper_path = lambda *a: Path(path)  # type: ignore[assignment]
    build.helper_stale_reason = lambda *a: None  # type: ignore[assignment]
    try:
        alt = fan.load_helper()
    finally:
        build.helper_path, build.helper_stale_reason = saved
        fan._helper, fan._helper_error = own, None
    if isinstance(alt, str):
        raise SystemExit(f"exec_loop: {alt}")
    return alt


def bpf_prog_times() -> dict[str, tuple[int, int]]:
    """Our programs' (run_cnt, run_time_ns) from bpftool (kernel.bpf_stats_enabled on)."""
    try:
        out = subprocess.run(["bpftool", "--json", "prog", "show"], capture_output=True,
                             text=True, check=True, env={**os.environ, "PATH": os.environ.get(
                                 "PATH", "") + ":/usr/sbin:/sbin"}).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        raise SystemExit(f"exec_loop: --bpf-stats needs bpftool: {exc}") from None
    return {p["name"]: (p.get("run_cnt", 0), p.get("run_time_ns", 0)) for p in json.loads(out)
            if p.get("name", "").startswith("ag_")}


def set_bpf_stats(on: bool) -> None:
    with open("/proc/sys/kernel/bpf_stats_enabled", "w") as f:
        f.write("1" if on else "0")


def quartiles(xs: list[float]) -> tuple[float, float]:
    if len(xs) < 2:
        return xs[0], xs[0]
    q = statistics.quantiles(xs, n=4)
    return q[0], q[2]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--execs", type=int, default=5000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--judge", choices=("allow", "engine"), default="allow")
    ap.add_argument("--rungs", default="fanotify,signal,audit",
                    help="comma-separated rungs to measure (each that runs here)")
    ap.add_argument("--python-reader", action="store_true",
                    help="also measure rung 2 in enforce answered by the Python reader alone")
    ap.add_argument("--loader-cost", action="store_true",
                    help="also measure enforce with no permission event for ld.so (unsupported)")
    ap.add_argument("--compare-helper", metavar="SO",
                    help="also measure rung 2 in enforce answered by this build of fanswer.c")
    ap.add_argument("--bpf-stats", action="store_true",
                    help="print the BPF programs' mean run time in each layer condition")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("exec_loop: needs root (BPF, fanotify)", file=sys.stderr)
        return 1
    wanted = [Rung(r) for r in args.rungs.split(",") if r]
    probes = {}
    for r in wanted:
        pr = probe(r)
        if pr.in_use is r:
            probes[r] = pr
        else:
            print(f"exec_loop: rung {r.value} does not run here: {pr.status(r).reason}",
                  file=sys.stderr)
    conditions: list[tuple[str, Rung | None, Mode | None]] = [("off", None, None)]
    for r in probes:
        conditions += [(f"{r.value}/warn", r, "warn"), (f"{r.value}/enforce", r, "enforce")]
        if r is Rung.FANOTIFY:
            conditions.append((f"{r.value}/outside", r, "enforce"))
        if r is Rung.FANOTIFY and args.compare_helper:
            conditions.append((f"{r.value}/enforce-alt", r, "enforce"))
        if r is Rung.FANOTIFY and args.loader_cost:
            conditions.append((f"{r.value}/enforce-noloader", r, "enforce"))
        if r is Rung.FANOTIFY and args.python_reader:
            conditions.append((f"{r.value}/enforce-py", r, "enforce"))
    times: dict[str, list[float]] = {c[0]: [] for c in conditions}
    cpus: dict[str, list[float]] = {c[0]: [] for c in conditions}
    loops: dict[str, list[float]] = {c[0]: [] for c in conditions}
    stats: dict[str, dict[str, object]] = {}
    bpf_ns: dict[str, dict[str, list[int]]] = {}
    helpers: dict[str, object] = {}
    if args.compare_helper:
        from attyguard.kernel import fanotify as fan

        helpers["alt"] = load_alt_helper(args.compare_helper)
        helpers["own"] = fan.load_helper()
    run_loop(200, None)  # warm the page cache and bash
    for rnd in range(args.rounds):
        # rotate the order each round so no condition always runs first or last
        k = rnd % len(conditions)
        for name, rung, mode in conditions[k:] + conditions[:k]:
            if rung is None or mode is None:
                wall, cpu, loop_cpu = run_loop(args.execs, None)
                times[name].append(wall)
                cpus[name].append(cpu)
                loops[name].append(loop_cpu)
                continue
            if helpers:
                fan._helper = helpers["alt" if name.endswith("-alt") else "own"]  # type: ignore[assignment]
            decide, _calls = make_decide(args.judge)
            layer = KernelLayer(probes[rung], decide=decide,  # type: ignore[arg-type]
                                on_event=lambda ev: None, mode=mode, deadline_ms=200,
                                answer_path="python" if name.endswith("-py") else "auto")
            layer.start()
            try:
                if name.endswith("-noloader"):
                    assert layer._group is not None
                    ignore_loader(layer._group.fd)
                if args.bpf_stats:
                    set_bpf_stats(True)
                    before = bpf_prog_times()
                wall, cpu, loop_cpu = run_loop(args.execs,
                                               None if name.endswith("/outside") else layer)
                if args.bpf_stats:
                    after = bpf_prog_times()
                    set_bpf_stats(False)
                    acc = bpf_ns.setdefault(name, {})
                    for prog, (cnt, ns) in after.items():
                        c0, n0 = before.get(prog, (0, 0))
                        a = acc.setdefault(prog, [0, 0])
                        a[0] += cnt - c0
                        a[1] += ns - n0
                times[name].append(wall)
                cpus[name].append(cpu)
                loops[name].append(loop_cpu)
                st = layer.status()
                stats[name] = {k: st[k] for k in ("exec_events", "permission_events",
                                                  "fast_path", "judged", "events_dropped",
                                                  "deadline_misses", "answer_path")}
                if st["answer_path"] == "c":
                    stats[name]["c"] = {k: v for k, v in st["answered_in_c"].items() if v}
                    stats[name]["handed"] = st["handed_to_python"]
            finally:
                layer.stop()
    base = statistics.median(times["off"])
    offs = times["off"]
    base_loop = statistics.median(loops["off"])
    rows = []
    for name, _, _ in conditions:
        med = statistics.median(times[name])
        rows.append({"condition": name, "median_s": round(med, 3),
                     "per_exec_us": round(med / args.execs * 1e6, 1),
                     "ratio": round(med / base, 3),
                     "min_ratio": round(min(times[name]) / min(times["off"]), 3),
                     "paired": round(statistics.median(
                         [t / o for t, o in zip(times[name], offs, strict=True)]), 3),
                     "paired_q": [round(q, 3) for q in quartiles(
                         [t / o for t, o in zip(times[name], offs, strict=True)])],
                     "loop_cpu_us_per_exec": round(
                         statistics.median(loops[name]) / args.execs * 1e6, 1),
                     "loop_cpu_ratio": round(statistics.median(loops[name]) / base_loop, 3),
                     "sensor_cpu_us_per_exec": round(
                         statistics.median(cpus[name]) / args.execs * 1e6, 1),
                     "runs": [round(t, 3) for t in times[name]],
                     **stats.get(name, {})})
        if name in bpf_ns:
            rows[-1]["bpf_ns_per_run"] = {p: round(ns / cnt) for p, (cnt, ns)
                                          in sorted(bpf_ns[name].items()) if cnt}
            rows[-1]["bpf_us_per_exec"] = round(
                sum(ns for _, ns in bpf_ns[name].values()) / (args.execs * args.rounds) / 1e3, 1)
    load = os.getloadavg()
    if args.json:
        print(json.dumps({"execs": args.execs, "judge": args.judge, "loadavg": load,
                          "off_spread": [round(min(offs) / base, 3), round(max(offs) / base, 3)],
                          "rows": rows}))
        return 0
    print(f"exec loop: {args.execs} × fork+exec /bin/true, {args.rounds} rounds, "
          f"judge={args.judge}, loadavg {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; "
          f"off itself spread {min(offs) / base:.3f}–{max(offs) / base:.3f} of its median")
    print(f"{'condition':18} {'median s':>9} {'µs/exec':>8} {'ratio':>6} {'loop cpu µs':>11} "
          f"{'cpu ratio':>9} {'layer cpu µs':>12}  extra")
    for r in rows:
        extra = {k: v for k, v in r.items()
                 if k not in ("condition", "median_s", "per_exec_us", "ratio", "runs",
                              "sensor_cpu_us_per_exec", "loop_cpu_us_per_exec",
                              "loop_cpu_ratio", "min_ratio", "paired", "paired_q")}
        print(f"{r['condition']:18} {r['median_s']:9.3f} {r['per_exec_us']:8.1f} "
              f"{r['ratio']:6.3f} {r['loop_cpu_us_per_exec']:11.1f} {r['loop_cpu_ratio']:9.3f} "
              f"{r['sensor_cpu_us_per_exec']:12.1f}  {extra}")
        print(f"{'':18} runs: {r['runs']}  best/best-of-off: {r['min_ratio']}  "
              f"paired: {r['paired']} (quartiles {r['paired_q'][0]}–{r['paired_q'][1]})")
    print("µs/exec, ratio: wall time of the loop.  loop cpu: CPU of bash + every /bin/true "
          "(user+sys, includes the BPF programs and fanotify in the exec'ing task).  "
          "layer cpu: this process's threads (ring buffer, fanotify answers, decide).")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
