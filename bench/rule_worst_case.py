"""Worst-case matcher time per rule on adversarial lines (catastrophic-backtracking hunt).

Usage:
  python bench/rule_worst_case.py [--rules DIR] [--seed N] [--lines N] [--top N]

Regex-based matchers can go quadratic or worse on crafted input (long runs of one
character, thousands of path segments, a keyword repeated). This script builds such
lines — fixed pathological shapes plus seeded random repetitions of rule-relevant
fragments — runs every rule's matcher on each, and prints the slowest (rule, input)
pairs. Prints figures, never asserts; use it after editing a pattern's regex.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from attyguard.engine.decode import find_payloads  # noqa: E402
from attyguard.engine.matchers import Analysis  # noqa: E402
from attyguard.engine.parse import parse  # noqa: E402
from attyguard.engine.rules import RuleError, load_rules  # noqa: E402

N = 8000
FIXED = {
    "long word": "a" * N,
    "dotted": "a." * (N // 2),
    "path segments": "sudo x " + "/bin/bash" * (N // 9),
    "sh= repeated": "sudo awk " + "sh=" * (N // 3),
    "spaces": "f" + " " * N + "()",
    "for loops": "for x in /var/log " * (N // 18),
    "mixed script fail": "\u0430 " + "b" * N,
    "script lines": "python3 -c '" + "x\n" * (N // 2) + "socket'",
    "digits": "x " + "4" * N,
    "colons": "echo x >> /etc/passwd " + "a:" * (N // 2),
}
FRAGMENTS = ["a", "/", ".", "-", "=", ":", " ", "'", '"', "sh", "bash", "/bin/", "system",
             "exec", "(", ")", "{", "}", "|", "&", ";", "!", "#", "0", "4", "\u0430", "tmp",
             "etc", "shadow", ".ssh/", "id_", "HIST", "history", "var/log", "cron", "-p",
             "-c", "@", "$", "\\", "\n", ">", "<", "sudo ", "rm ", "-rf ", "pool", "xn--"]


def lines(seed: int, count: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    out = list(FIXED.items())
    for i in range(count):
        unit = "".join(rng.choice(FRAGMENTS) for _ in range(rng.randint(1, 3)))
        prefix = "".join(rng.choice(FRAGMENTS) for _ in range(rng.randint(0, 5)))
        out.append((f"random #{i} {unit!r}", prefix + unit * (N // max(len(unit), 1))))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rules", type=Path, help="patterns directory (default: shipped)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--lines", type=int, default=200, help="random lines besides the fixed ones")
    ap.add_argument("--top", type=int, default=15)
    args = ap.parse_args(argv)
    try:
        rules = load_rules(args.rules).rules
    except RuleError as exc:
        print(f"rule_worst_case: {exc}", file=sys.stderr)
        return 2
    timings: list[tuple[float, str, str]] = []
    total = time.perf_counter()
    for name, line in lines(args.seed, args.lines):
        parsed = parse(line)
        normalized = "\n".join(" ".join((c.path, *c.argv)) for c in parsed.commands)
        analysis = Analysis(line, parsed, normalized, find_payloads(parsed))
        for rule in rules:
            t0 = time.perf_counter()
            try:
                rule.matcher.match(analysis)
                label = name
            except TimeoutError:  # the engine answers warn (bounded) for such a line
                label = f"TIMEOUT {name}"
            timings.append((time.perf_counter() - t0, rule.id, label))
    timings.sort(reverse=True)
    print(f"{len(rules)} rules x {len(FIXED) + args.lines} lines of ~{N} characters "
          f"in {time.perf_counter() - total:.1f}s; slowest matcher calls:")
    for seconds, rule_id, name in timings[: args.top]:
        print(f"  {seconds * 1000:9.1f} ms  {rule_id:34} {name[:60]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
