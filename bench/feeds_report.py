"""What the feed bundle adds: detection and latency with and without it, in one run.

    .venv/bin/python bench/feeds_report.py [--bundle DIR] [--sigma PATH --gtfobins PATH]

Classifies the development split (../shared/eval/dev, as bench/detection_report.py
finds it) with the shipped rules alone and with the rules plus a feed bundle (the
one `attyguard feeds update` wrote into DIR, or one compiled here from --sigma and
--gtfobins, default the snapshots in ../shared/feeds). Prints recall, block recall,
false positives (and which benign lines the feeds alone flag), and classify latency
p50/p99 per line for both engines. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from detection_report import OUT_OF_SCOPE, default_corpus, load_rows  # noqa: E402

from attyguard.engine.classify import Engine  # noqa: E402
from attyguard.engine.rules import load_rules  # noqa: E402
from attyguard.engine.verdict import Action  # noqa: E402
from attyguard.feeds.match import FeedSet  # noqa: E402


def _bundle(args: argparse.Namespace) -> FeedSet:
    if args.bundle:
        from attyguard.feeds.bundle import load_current

        bundle, warning = load_current(args.bundle)
        if bundle is None:
            raise SystemExit(warning or f"no bundle in {args.bundle}")
        return FeedSet.from_bundle(bundle)
    from attyguard.feeds.gtfobins import compile_pages
    from attyguard.feeds.sigma import compile_rules

    files = sorted(Path(args.sigma).rglob("*.yml"))
    if not files or not Path(args.gtfobins).is_dir():
        raise SystemExit(f"no feed snapshots at {args.sigma} / {args.gtfobins}")
    sigma, _ = compile_rules(files)
    shapes, _ = compile_pages([Path(args.gtfobins)])
    return FeedSet(sigma, shapes)


def _run(engine: Engine, rows: list[dict[str, str]]) -> dict[str, object]:
    hit = block = mal = blk = fp = ben = 0
    times: list[float] = []
    flagged: dict[str, list[str]] = {}
    for row in rows:
        if row.get("category") == OUT_OF_SCOPE:
            continue
        start = time.perf_counter()
        verdict = engine.classify(row["cmd"])
        times.append(time.perf_counter() - start)
        expect = row.get("expect", "allow")
        if expect == "allow":
            ben += 1
            if verdict.action is not Action.ALLOW:
                fp += 1
                flagged[row["cmd"]] = [h.rule_id for h in verdict.rules]
        else:
            mal += 1
            hit += verdict.action is not Action.ALLOW
            if expect == "block":
                blk += 1
                block += verdict.action is Action.BLOCK
    times.sort()
    return {"recall": (hit, mal), "block": (block, blk), "fp": (fp, ben), "flagged": flagged,
            "p50": statistics.median(times) * 1e6, "p99": times[int(len(times) * 0.99)] * 1e6}


def main() -> int:
    shared = next((b for b in (REPO.parent / "shared" / "feeds",
                               REPO.parent.parent / "shared" / "feeds") if b.is_dir()),
                  REPO.parent / "shared" / "feeds")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", type=Path, help="a feeds directory (with `current`)")
    ap.add_argument("--sigma", default=str(shared / "sigma-linux"))
    ap.add_argument("--gtfobins", default=str(shared / "gtfobins" / "_gtfobins"))
    args = ap.parse_args()
    rows = load_rows(default_corpus())
    feeds = _bundle(args)
    ruleset = load_rules()
    plain, with_feeds = Engine(ruleset), Engine(ruleset, feeds=feeds)
    for engine in (plain, with_feeds):  # warm both (lazy regexes) before timing
        _run(engine, rows[:200])
    results = {"rules only": _run(plain, rows), "rules + feeds": _run(with_feeds, rows)}
    print(f"{len(rows)} rows; feeds: {len(feeds.sigma)} Sigma rules, "
          f"{len(feeds.gtfobins)} GTFOBins shapes, {len(feeds.atoms)} atoms")
    for name, r in results.items():
        (h, m), (b, bt), (f, n) = r["recall"], r["block"], r["fp"]  # type: ignore[misc]
        print(f"{name:14s} recall {h}/{m} = {h / m:.4f}  block recall {b}/{bt} = {b / bt:.4f}  "
              f"false positives {f}/{n} = {f / n:.4%}  classify p50 {r['p50']:.0f} µs "
              f"p99 {r['p99']:.0f} µs")
    extra = {k: v for k, v in results["rules + feeds"]["flagged"].items()  # type: ignore[union-attr]
             if k not in results["rules only"]["flagged"]}  # type: ignore[operator]
    print(f"benign lines flagged only with the feeds: {len(extra)}")
    for cmd, ids in list(extra.items())[:40]:
        print(f"  {ids}  {cmd[:120]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
