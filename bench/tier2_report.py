"""Detection figures for each Tier-2 plugin on the labelled dev split.

For every plugin (stub, heuristic, onnx) at its own decision threshold:
precision, recall and false-positive rate over malicious lines (`expect` is
warn or block; `out-of-scope` lines are left out) against benign lines
(`expect == allow`), plus the mean time per line. Prints figures; asserts
nothing (figures, not tests).

    .venv/bin/python bench/tier2_report.py [--dev DIR] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from attyguard.daemon.tier2 import TIER2_NAMES, load_tier2

__all__ = ["main"]

_DEFAULT_DEV = Path(__file__).resolve().parents[1].parent.parent / "shared" / "eval" / "dev"


def _load(dev: Path) -> tuple[list[str], list[str]]:
    bad: list[str] = []
    good: list[str] = []
    for row in _rows(dev / "malicious.jsonl"):
        if row.get("category") == "out-of-scope" or row.get("expect") == "allow":
            continue
        bad.append(row["cmd"])
    for row in _rows(dev / "benign.jsonl"):
        if row.get("expect") == "allow":
            good.append(row["cmd"])
    return bad, good


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--dev", type=Path, default=None, help="directory with malicious.jsonl, benign.jsonl"
    )
    ap.add_argument("--json", action="store_true", help="one JSON object per plugin")
    args = ap.parse_args(argv)
    dev = args.dev or next(
        (p for p in (_DEFAULT_DEV, Path("/work/shared/eval/dev")) if p.is_dir()), _DEFAULT_DEV
    )
    try:
        bad, good = _load(dev)
    except (OSError, ValueError, KeyError) as exc:
        print(f"tier2_report: cannot read {dev}: {exc}", file=sys.stderr)
        return 2
    if not args.json:
        print(f"dev split {dev}: {len(bad)} malicious (in scope), {len(good)} benign")
        cols = ("precision", 9), ("recall", 7), ("FPR", 7), ("TP", 5), ("FP", 5), ("µs/line", 8)
        print(f"{'plugin':<10} {'thr':>5} " + " ".join(f"{c:>{w}}" for c, w in cols))
    for name in TIER2_NAMES:
        plugin, warning = load_tier2(name)
        if warning:
            print(f"# {name}: {warning}", file=sys.stderr)
        t0 = time.perf_counter()
        tp = sum(plugin.score(c).p >= plugin.threshold for c in bad)
        fp = sum(plugin.score(c).p >= plugin.threshold for c in good)
        per_line = (time.perf_counter() - t0) / max(len(bad) + len(good), 1) * 1e6
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / len(bad) if bad else 0.0
        fpr = fp / len(good) if good else 0.0
        row = {
            "plugin": plugin.name,
            "requested": name,
            "threshold": plugin.threshold,
            "precision": round(precision, 4),
            "recall": round(recall, 4),
            "fpr": round(fpr, 5),
            "tp": tp,
            "fp": fp,
            "malicious": len(bad),
            "benign": len(good),
            "us_per_line": round(per_line, 1),
        }
        if args.json:
            print(json.dumps(row))
        else:
            print(
                f"{plugin.name if plugin.name == name else name + '→' + plugin.name:<10} "
                f"{plugin.threshold:>5.2f} {precision:>9.3f} {recall:>7.3f} {fpr:>7.4f} "
                f"{tp:>5} {fp:>5} {per_line:>8.1f}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
