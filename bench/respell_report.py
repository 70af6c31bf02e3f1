"""Re-spelling report: our own attack shapes x re-spellings, and everyday lines.

Usage:
  python bench/respell_report.py [--rules DIR] [--misses N] [--json]

Every shape in bench/respell_table.py is run as typed and re-spelled the ways
attackers hide a line from a guard (quotes and backslashes in the command
name, full and glob paths, wrappers, `$(echo …)`, variables, bash -c / eval /
here-strings, base64 and printf escapes into a shell, interpreters' os.system,
`${IFS}` spacing…); a re-spelling that does not apply to a shape is skipped.

  recall        warn or block, over every (shape, re-spelling)
  block recall  block, over the pairs whose shape expects block
  false pos.    warn or block over the everyday lines (which should be allowed)
Targets (issue 11): recall >= 0.90, block recall >= 0.75, false positives <= 2 %.
Prints figures, never asserts.
"""

from __future__ import annotations

import argparse
import base64
import codecs
import gzip
import json
import re
import shlex
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from respell_table import EVERYDAY, SHAPES  # noqa: E402

from attyguard.engine.classify import Engine, default_engine  # noqa: E402
from attyguard.engine.rules import RuleError, load_rules  # noqa: E402
from attyguard.engine.verdict import Action  # noqa: E402

_FIRST = re.compile(r"^([A-Za-z_./][\w.+/-]*)(?=\s|$)")
_NOT_A_NAME = frozenset({"echo", "printf", "cd", "rm", "cat", "env"})


def _head(line: str) -> tuple[str, str, str] | None:
    """(path, basename, rest) when the line starts with a plain command word."""
    m = _FIRST.match(line)
    if m is None or "=" in m.group(1):
        return None
    path = m.group(1)
    name = path.rsplit("/", 1)[-1]
    if len(name) < 2 or not name[0].isalpha():
        return None
    return path, name, line[m.end():]


def _outside_quotes(line: str, repl: str) -> str:
    """Replace single spaces outside quotes by `repl` (a tiny scanner: the bench's own)."""
    out: list[str] = []
    quote = ""
    escaped = False
    for ch in line:
        if escaped:
            out.append(ch)
            escaped = False
        elif ch == "\\" and quote != "'":
            out.append(ch)
            escaped = True
        elif quote:
            out.append(ch)
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            out.append(ch)
            quote = ch
        elif ch == " ":
            out.append(repl)
        else:
            out.append(ch)
    return "".join(out)


def _name_respelling(fn: Callable[[str, str], str]) -> Callable[[str], str | None]:
    def apply(line: str) -> str | None:
        head = _head(line)
        if head is None:
            return None
        path, name, rest = head
        directory = path[: len(path) - len(name)]
        return fn(directory, name) + rest

    return apply


def _hex(text: str) -> str:
    return "".join(f"\\x{b:02x}" for b in text.encode())


RESPELLINGS: dict[str, Callable[[str], str | None]] = {
    "as typed": lambda line: line,
    "quote split": _name_respelling(lambda d, n: f"{d}{n[0]}''{n[1:]}"),
    "double quotes": _name_respelling(lambda d, n: f'{d}"{n[:1]}"{n[1:]}'),
    "backslash": _name_respelling(lambda d, n: f"{d}{n[0]}\\{n[1:]}"),
    "full path": _name_respelling(lambda d, n: f"{d or '/usr/bin/'}{n}"),
    "glob path": _name_respelling(
        lambda d, n: f"/usr/bin/{n[0]}?{n[2:]}" if len(n) >= 3 else f"/usr/bin/{n}"),
    "ansi-c name": _name_respelling(lambda d, n: f"{d}$'{_hex(n)}'"),
    "echo subst": _name_respelling(lambda d, n: f"$(echo {d}{n})"),
    "backticks": _name_respelling(lambda d, n: f"`printf {d}{n}`"),
    "split vars": _name_respelling(lambda d, n: f"a={d}{n[:2]}; b={n[2:]}; $a$b"),
    "unset var": _name_respelling(lambda d, n: f"{d}{n[0]}${{u}}{n[1:]}"),
    "substring": _name_respelling(lambda d, n: f"v=zz{d}{n}; ${{v:2:{len(d) + len(n)}}}"),
    "case mod": _name_respelling(lambda d, n: f"v={(d + n).upper()}; ${{v,,}}"),
    "indirection": _name_respelling(lambda d, n: f"p={d}{n}; q=p; ${{!q}}"),
    "array": _name_respelling(lambda d, n: f"a=({d}{n[:2]} {n[2:]}); \"${{a[0]}}${{a[1]}}\""),
    "sudo": lambda line: None if line.startswith("sudo ") else "sudo " + line,
    "env prefix": lambda line: "env LC_ALL=C " + line,
    "command prefix": lambda line: "command " + line if _head(line) else None,
    "nohup": lambda line: "nohup " + line if _head(line) else None,
    "benign first": lambda line: "cd /tmp && " + line,
    "extra spaces": lambda line: _outside_quotes(line, "   "),
    "ifs spaces": lambda line: _outside_quotes(line, "${IFS}"),
    "bash -c": lambda line: "bash -c " + shlex.quote(line),
    "sh -c via sudo": lambda line: "sudo sh -c " + shlex.quote(line),
    "eval": lambda line: "eval " + shlex.quote(line),
    "here-string": lambda line: "bash <<< " + shlex.quote(line),
    "base64 | sh": lambda line: f"echo {base64.b64encode(line.encode()).decode()} | base64 -d | sh",
    "printf hex | bash": lambda line: f"printf '{_hex(line)}' | bash",
    "python os.system": lambda line: "python3 -c " + shlex.quote(f"import os; os.system({line!r})"),
    "perl system": lambda line: (None if "{" in line or "}" in line
                                 else "perl -e " + shlex.quote(f"system(q{{{line}}})")),
    "rev name": _name_respelling(lambda d, n: f"$(rev <<< {(d + n)[::-1]})"),
    "rot13 | sh": lambda line: (f"echo {shlex.quote(_rot13(line))} "
                                 "| tr 'A-Za-z' 'N-ZA-Mn-za-m' | sh"),
    "gzip+base64": lambda line: (
        f"echo {base64.b64encode(gzip.compress(line.encode(), mtime=0)).decode()} "
        "| base64 -d | gunzip | bash"),
    "function wrap": lambda line: f"f() {{ {line}; }}; f",
    "timeout prefix": lambda line: "timeout 60 " + line if _head(line) else None,
    "setsid prefix": lambda line: "setsid " + line if _head(line) else None,
    "line continuation": _name_respelling(lambda d, n: f"{d}{n[:1]}\\\n{n[1:]}"),
    "sh heredoc": lambda line: f"sh <<'EOF'\n{line}\nEOF",
}


def _rot13(text: str) -> str:
    return codecs.encode(text, "rot13")


def _flagged(engine: Engine, line: str) -> Action:
    return engine.classify(line).action


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rules", type=Path, help="patterns directory (default: shipped)")
    ap.add_argument("--misses", type=int, default=30, help="misses/false positives to list")
    ap.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = ap.parse_args(argv)
    try:
        engine = Engine(load_rules(args.rules)) if args.rules else default_engine()
    except RuleError as exc:
        print(f"respell_report: {exc}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    pairs = hits = blocks_expected = blocks = 0
    by_respelling: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    by_family: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    misses: list[str] = []
    block_misses: list[str] = []
    for family, expect, shape in SHAPES:
        for name, respell in RESPELLINGS.items():
            line = respell(shape)
            if line is None:
                continue
            action = _flagged(engine, line)
            pairs += 1
            got = action is not Action.ALLOW
            hits += got
            for table, key in ((by_respelling, name), (by_family, family)):
                row = table[key]
                row[0] += 1
                row[1] += got
            if not got:
                misses.append(f"[{name}] {line}")
            if expect == "block":
                blocks_expected += 1
                blocks += action is Action.BLOCK
                by_respelling[name][2] += 1
                by_respelling[name][3] += action is Action.BLOCK
                by_family[family][2] += 1
                by_family[family][3] += action is Action.BLOCK
                if action is Action.WARN:
                    block_misses.append(f"[{name}] {line}")
    fps = [line for line in EVERYDAY if _flagged(engine, line) is not Action.ALLOW]
    elapsed = time.perf_counter() - start

    def ratio(num: int, den: int) -> str:
        return f"{num / den:.4f} ({num}/{den})" if den else "n/a (0)"

    summary = {
        "shapes": len(SHAPES), "respellings": len(RESPELLINGS), "pairs": pairs,
        "recall": hits / pairs if pairs else 0.0,
        "block_recall": blocks / blocks_expected if blocks_expected else 0.0,
        "false_positive_rate": len(fps) / len(EVERYDAY) if EVERYDAY else 0.0,
        "everyday": len(EVERYDAY), "false_positives": len(fps),
    }
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"{len(SHAPES)} shapes x {len(RESPELLINGS)} re-spellings = {pairs} lines; "
          f"{len(EVERYDAY)} everyday lines ({elapsed:.2f}s)")
    print(f"recall        {ratio(hits, pairs)}   target >= 0.90")
    print(f"block recall  {ratio(blocks, blocks_expected)}   target >= 0.75")
    print(f"false pos.    {ratio(len(fps), len(EVERYDAY))}   target <= 0.02")
    print("\nby re-spelling:                recall            block recall")
    for name, (n, got, nb, gb) in by_respelling.items():
        print(f"  {name:<18} {ratio(got, n):>22}  {ratio(gb, nb):>22}")
    print("\nby family:")
    for name, (n, got, nb, gb) in sorted(by_family.items()):
        print(f"  {name:<18} {ratio(got, n):>22}  {ratio(gb, nb):>22}")
    for title, rows in (("misses", misses), ("block misses (warned)", block_misses),
                        ("false positives", fps)):
        print(f"\n{title}: {len(rows)}")
        for row in rows[: args.misses]:
            print(f"  {row[:200]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
