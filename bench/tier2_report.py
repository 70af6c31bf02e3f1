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
    if not args.json:
        _calibration(bad, good)
        _pathological()
    return 0


def _calibration(bad: list[str], good: list[str]) -> None:
    """Share of malicious lines per p bin: how far p reads as a probability on dev."""
    edges = (0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.01)
    for name in ("heuristic", "onnx"):
        plugin, _ = load_tier2(name)
        counts = [[0, 0] for _ in edges[:-1]]
        for label, lines in ((1, bad), (0, good)):
            for line in lines:
                p = plugin.score(line).p
                i = next(k for k in range(len(edges) - 1) if p < edges[k + 1])
                counts[i][label] += 1
        cells = []
        for k, (neg, pos) in enumerate(counts):
            share = f"{pos / (pos + neg):.2f}" if pos + neg else "  - "
            cells.append(f"[{edges[k]:.1f},{min(edges[k + 1], 1.0):.1f}) n={pos + neg} mal={share}")
        print(f"{name} calibration: " + "; ".join(cells))


def _pathological() -> None:
    """Worst time per plugin over hostile lines of MAX_CHARS (bounded-time check)."""
    from attyguard.daemon.tier2.features import MAX_CHARS

    seeds = ["tee -a ", "rm -r ", ">>", "'", "$(", "truncate ", "/dev/tcp/x", "\\x41", "a'b "]
    lines = []
    for w in seeds:
        lines += [w * (MAX_CHARS // len(w) + 1), w + " " * MAX_CHARS, (w + ";") * (MAX_CHARS // 8)]
    for name in ("heuristic", "onnx"):
        plugin, _ = load_tier2(name)
        worst = 0.0
        for line in lines:
            t0 = time.perf_counter()
            plugin.score(line)
            worst = max(worst, time.perf_counter() - t0)
        print(f"{name}: worst of {len(lines)} hostile {MAX_CHARS}-char lines: {worst * 1e3:.1f} ms")


if __name__ == "__main__":
    raise SystemExit(main())
