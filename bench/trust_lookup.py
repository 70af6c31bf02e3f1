#!/usr/bin/env python3
"""Cost of `TrustStore.lookup` (runs before every command) and of opening the store.

    python bench/trust_lookup.py [--entries N] [--rounds N]

Fills a throwaway store (ATTYGUARD_HOME in a temp dir) with N entries and prints
microseconds per lookup for a miss (one SELECT) and a hit (SELECT + UPDATE),
the open time (schema check + quick_check), and as a baseline the cost of a
plain dict membership test with the same SHA-256 key computation.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import tempfile
import time

__all__ = ["main"]


def _per_call_us(fn: object, args: list[str], rounds: int) -> tuple[float, float]:
    assert callable(fn)
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        for line in args:
            fn(line)
        samples.append((time.perf_counter() - start) / len(args) * 1e6)
    return statistics.median(samples), min(samples)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        os.environ["ATTYGUARD_HOME"] = home
        from attyguard.trust import open_trust_store

        store, warning = open_trust_store()
        if store is None:
            print(f"trust_lookup: {warning}", file=sys.stderr)
            return 1
        trusted = [f"deploy --env prod --shard {i} --really" for i in range(args.entries)]
        store.import_json([{"cmd": line} for line in trusted])
        store.close()
        opens = []
        for _ in range(args.rounds):
            start = time.perf_counter()
            store, _ = open_trust_store()
            opens.append((time.perf_counter() - start) * 1000)
            assert store is not None
            store.close()
        store, _ = open_trust_store()
        assert store is not None
        sample = trusted[:: max(1, len(trusted) // 500)]
        misses = [f"ls -la /tmp/dir{i}" for i in range(len(sample))]
        hit = _per_call_us(store.lookup, sample, args.rounds)
        miss = _per_call_us(store.lookup, misses, args.rounds)
        keys = {hashlib.sha256(line.encode()).hexdigest() for line in trusted}
        base = _per_call_us(lambda line: hashlib.sha256(line.encode()).hexdigest() in keys,
                            misses, args.rounds)
        store.close()
    print(f"store with {args.entries} entries, {args.rounds} rounds (median / best)")
    print(f"open:            {statistics.median(opens):8.2f} ms / {min(opens):.2f} ms")
    print(f"lookup miss:     {miss[0]:8.1f} us / {miss[1]:.1f} us")
    print(f"lookup hit:      {hit[0]:8.1f} us / {hit[1]:.1f} us  (SELECT + UPDATE)")
    print(f"baseline dict:   {base[0]:8.1f} us / {base[1]:.1f} us  (sha256 + set membership)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
