"""Resolution report: our own re-spelling and everyday tables through the engine.

Usage:
  python bench/resolve_report.py

The tables live with their tests (tests/test_engine_resolve.py and
tests/test_engine_state.py: attacks re-spelled behind expansions, globs, aliases,
functions and stored code, with and without a ShellState; everyday lines that use
the same forms). Prints recall / block recall on the attack rows and false
positives on the everyday rows, and the mean classify time of each table.
Prints figures, never asserts.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from attyguard.engine.classify import classify  # noqa: E402
from attyguard.engine.state import ShellState  # noqa: E402
from attyguard.engine.verdict import Action  # noqa: E402


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, REPO / "tests" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> int:
    resolve = _load("test_engine_resolve")
    state = _load("test_engine_state")
    attacks: list[tuple[str, ShellState | None, Action]] = [
        *((line, None, action) for line, action in resolve.RESPELLED),
        *((line, None, action) for line, action in resolve.REDIRECTS),
        *((line, None, Action.WARN) for line in resolve.HIDDEN),
        *((line, st, action) for line, st, action, _rule in state.DANGEROUS),
        *((line, st, action) for line, st, action in state.MORE),
    ]
    everyday: list[tuple[str, ShellState | None]] = [
        *((line, None) for line in resolve.EVERYDAY),
        *((line, st) for line, st in state.QUIET),
        *((line, st) for line, st, expect in attacks if expect is Action.ALLOW),
    ]
    attacks = [row for row in attacks if row[2] is not Action.ALLOW]
    flagged = blocked = want_block = 0
    start = time.perf_counter()
    for line, st, expect in attacks:
        got = classify(line, st).action
        flagged += got is not Action.ALLOW
        want_block += expect is Action.BLOCK
        blocked += expect is Action.BLOCK and got is Action.BLOCK
        if got is Action.ALLOW:
            print(f"  miss: {line!r}")
    attack_us = (time.perf_counter() - start) / len(attacks) * 1e6
    fps = 0
    start = time.perf_counter()
    for line, st in everyday:
        verdict = classify(line, st)
        if verdict.action is not Action.ALLOW:
            fps += 1
            print(f"  false positive: {line!r} {[h.rule_id for h in verdict.rules]}")
    quiet_us = (time.perf_counter() - start) / len(everyday) * 1e6
    print(f"attack rows   n={len(attacks):4}  recall {flagged / len(attacks):.4f} "
          f"({flagged}/{len(attacks)})  block recall {blocked / max(want_block, 1):.4f} "
          f"({blocked}/{want_block})  mean {attack_us:.0f} us")
    print(f"everyday rows n={len(everyday):4}  false pos. {fps / len(everyday):.4f} "
          f"({fps}/{len(everyday)})  mean {quiet_us:.0f} us")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
