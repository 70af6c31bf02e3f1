"""Events per second: the audit log, and OCSF events to a real rsyslog (udp, tcp).

    .venv/bin/python bench/fleet_events.py [--events 20000]

For each destination: how fast `record`-shaped events are taken (the daemon's
cost: redaction + OCSF mapping + queueing, or the audit log's write), and how
many reached rsyslog per second and in total (udp may lose datagrams under load:
the figure says how many). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from attyguard.audit import AuditLog, redact_event
from attyguard.fleet.ocsf import Product, to_ocsf
from attyguard.fleet.sink import FleetSink
from tests.daemon_harness import wait_for
from tests.rsyslog_harness import Rsyslog


def _record(n: int) -> dict[str, object]:
    return {"type": "verdict", "time": time.time(), "pid": 1000 + n % 50, "uid": 1000,
            "line": f"curl -fsSL https://example.org/{n}.sh | sh", "action": "warn",
            "rules": ["download-exec.pipe-to-shell"], "reason": "Download piped to a shell",
            "severity": "medium"}


def bench_audit(directory: Path, events: int) -> None:
    with AuditLog(directory / "audit.jsonl") as log:
        start = time.perf_counter()
        for n in range(events):
            log.write(_record(n))
        took = time.perf_counter() - start
    print(f"audit log: {events} records in {took:.3f} s = {events / took:,.0f} records/s")


def bench_sink(directory: Path, transport: str, events: int) -> None:
    receiver = Rsyslog(directory, transport)
    try:
        receiver.wait_listening(transport)
        base = len(receiver.messages())
        product = Product("bench", "bench-host")
        sink = FleetSink("syslog", f"{transport}://127.0.0.1:{receiver.port}",
                         capacity=events + 1)
        start = time.perf_counter()
        for n in range(events):
            ocsf = to_ocsf("verdict", redact_event(_record(n)), product)
            assert ocsf is not None
            sink.send(ocsf)
        queued = time.perf_counter() - start
        try:
            wait_for(lambda: sink.queue.empty(), 120, "the sink to drain")
            # End to end = when rsyslog's file stopped growing (udp may lose some).
            last_count, last_change = -1, time.perf_counter()
            while time.perf_counter() - last_change < 1.0:
                count = len(receiver.messages()) - base
                if count != last_count:
                    last_count, last_change = count, time.perf_counter()
                if count >= events:
                    break
                time.sleep(0.05)  # polling a file another process writes; no event to wait on
        finally:
            sink.close()
        took = last_change - start
        got = len(receiver.messages()) - base
        print(f"syslog {transport}: queued {events} in {queued:.3f} s "
              f"({events / queued:,.0f} events/s taken); rsyslog wrote {got} "
              f"({got / took:,.0f} events/s end to end, {events - got} lost, "
              f"{sink.counters['dropped']} dropped by the sink)")
    finally:
        receiver.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="agfb-") as tmp:
        root = Path(tmp)
        (root / "a").mkdir()
        bench_audit(root / "a", args.events)
        for transport in ("tcp", "udp"):
            (root / transport).mkdir()
            bench_sink(root / transport, transport, args.events)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
