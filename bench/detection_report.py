"""Detection report: recall, block recall and false positives over a labelled JSONL corpus.

Usage:
  python bench/detection_report.py [FILE.jsonl ...] [--rules DIR] [--limit N] [--json]

Default corpus: /work/shared/eval/dev/*.jsonl, else ../shared/eval/dev relative to the
repository. Each line: {"id", "cmd", "category", "expect": allow|warn|block}.

  recall        warn or block where expect != allow
  block recall  block where expect == block
  false pos.    warn or block where expect == allow
The `out-of-scope` category is excluded from every rate. Prints figures, never asserts.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from attyguard.engine.classify import Engine, default_engine  # noqa: E402
from attyguard.engine.rules import RuleError, load_rules  # noqa: E402
from attyguard.engine.verdict import Action  # noqa: E402

OUT_OF_SCOPE = "out-of-scope"


def default_corpus() -> list[Path]:
    for base in (Path("/work/shared/eval/dev"), REPO.parent / "shared" / "eval" / "dev",
                 REPO.parent.parent / "shared" / "eval" / "dev"):
        files = sorted(base.glob("*.jsonl"))
        if files:
            return files
    return []


def load_rows(files: list[Path]) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    for file in files:
        with file.open(encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                    rows.append({"id": str(row.get("id", f"{file.name}:{n}")),
                                 "cmd": str(row["cmd"]), "category": str(row["category"]),
                                 "expect": str(row["expect"])})
                except (ValueError, KeyError) as exc:
                    print(f"{file}:{n}: skipped bad row ({exc})", file=sys.stderr)
    return rows


def ratio(num: int, den: int) -> str:
    return f"{num / den:.4f} ({num}/{den})" if den else "n/a (0)"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="*", type=Path)
    ap.add_argument("--rules", type=Path, help="patterns directory (default: shipped)")
    ap.add_argument("--limit", type=int, default=40, help="misses/false positives to list")
    ap.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = ap.parse_args(argv)
    files = args.files or default_corpus()
    if not files:
        print("detection_report: no corpus found (give FILE.jsonl)", file=sys.stderr)
        return 2
    try:
        engine = Engine(load_rules(args.rules)) if args.rules else default_engine()
    except RuleError as exc:
        print(f"detection_report: {exc}", file=sys.stderr)
        return 2
    rows = load_rows(files)
    by_cat: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    misses: list[tuple[str, str, str, str]] = []
    block_misses: list[tuple[str, str, str, str]] = []
    fps: list[tuple[str, str, str, str]] = []
    pos = det = blk_total = blk_hit = neg = fp = 0
    t0 = time.perf_counter()
    for row in rows:
        verdict = engine.classify(row["cmd"])
        cat, expect = row["category"], row["expect"]
        c = by_cat[cat]
        c["n"] += 1
        flagged = verdict.action is not Action.ALLOW
        rules = ",".join(h.rule_id for h in verdict.rules)
        if cat == OUT_OF_SCOPE:
            c["flagged"] += flagged
            continue
        if expect == "allow":
            neg += 1
            c["neg"] += 1
            if flagged:
                fp += 1
                c["fp"] += 1
                fps.append((row["id"], verdict.action.value, rules, row["cmd"]))
        else:
            pos += 1
            c["pos"] += 1
            if flagged:
                det += 1
                c["det"] += 1
            else:
                misses.append((row["id"], expect, "", row["cmd"]))
            if expect == "block":
                blk_total += 1
                c["blk"] += 1
                if verdict.action is Action.BLOCK:
                    blk_hit += 1
                    c["blk_hit"] += 1
                else:
                    block_misses.append((row["id"], verdict.action.value, rules, row["cmd"]))
    elapsed = time.perf_counter() - t0
    summary = {
        "files": [str(f) for f in files], "rows": len(rows),
        "rules": len(engine.rules),
        "recall": det / pos if pos else None, "block_recall": blk_hit / blk_total if blk_total
        else None, "false_positive_rate": fp / neg if neg else None,
        "positives": pos, "detected": det, "block_expected": blk_total, "blocked": blk_hit,
        "negatives": neg, "false_positives": fp, "seconds": round(elapsed, 3),
    }
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"corpus: {', '.join(summary['files'])} ({len(rows)} rows, {len(engine.rules)} rules,"
          f" {elapsed:.2f}s)")
    print(f"recall        {ratio(det, pos)}   target >= 0.95")
    print(f"block recall  {ratio(blk_hit, blk_total)}   target >= 0.80")
    print(f"false pos.    {ratio(fp, neg)}   target <= 0.005")
    print("\nby category:")
    for cat in sorted(by_cat):
        c = by_cat[cat]
        if cat == OUT_OF_SCOPE:
            print(f"  {cat:22} n={c['n']:5}  (excluded; flagged {c['flagged']})")
            continue
        parts = [f"n={c['n']:5}"]
        if c["pos"]:
            parts.append(f"recall {ratio(c['det'], c['pos'])}")
        if c["blk"]:
            parts.append(f"block {ratio(c['blk_hit'], c['blk'])}")
        if c["neg"]:
            parts.append(f"fp {ratio(c['fp'], c['neg'])}")
        print(f"  {cat:22} " + "  ".join(parts))
    for title, items in (("misses (expected warn/block, got allow)", misses),
                         ("block misses (expected block)", block_misses),
                         ("false positives", fps)):
        print(f"\n{title}: {len(items)}")
        for rid, got, rules, cmd in items[: args.limit]:
            extra = f" [{got}: {rules}]" if rules else f" [{got}]" if got else ""
            print(f"  {rid}{extra}: {cmd[:160]!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
