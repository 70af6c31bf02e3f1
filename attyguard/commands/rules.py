"""`attyguard rules list | explain RULE_ID | test`: the Tier-1 rules as data.

Reads the rules through `attyguard.engine.rules.load_rules` (the shipped
patterns/, or `--path DIR` for a rule author's work in progress). A broken
rule file is one `file:line: message` line and exit status 3, never a
traceback; `test` runs every rule's own examples (`run_examples`) and exits 1
when any fails.

Exit statuses: 0 fine, 1 an example failed, 3 error (usage, unknown rule,
rule-file error).
"""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Any

from attyguard.commands._util import (
    EXIT_NEGATIVE,
    EXIT_OK,
    CommandError,
    Parser,
    run_command,
    write_json,
)
from attyguard.textsafe import safe_text

__all__ = ["main"]

_RULE_FIELDS = ("id", "title", "family", "severity", "action", "probability", "explanation",
                "remediation", "atoms", "examples_match", "examples_nomatch", "source")


def main(argv: list[str]) -> int:
    return run_command("rules", _main, argv)


def _parser() -> Parser:
    parser = Parser(prog="attyguard rules", description="The Tier-1 rules.",
                    epilog="exit status: 0 fine, 1 an example failed, 3 error")
    sub = parser.add_subparsers(dest="action", metavar="ACTION", parser_class=Parser)
    sub.required = True
    for name, help_text in (("list", "one line per rule"),
                            ("explain", "everything about one rule"),
                            ("test", "run every rule's own examples")):
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--json", action="store_true", help="print JSON")
        p.add_argument("--path", type=Path, metavar="DIR",
                       help="rules directory (default: the shipped patterns/)")
        if name == "explain":
            p.add_argument("rule_id", metavar="RULE_ID")
    return parser


def _main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    ruleset = _load(args.path)
    sequences = _load_sequences(args.path)
    rules = list(ruleset.rules)
    if args.action == "list":
        return _list([*rules, *sequences], args.json)
    if args.action == "explain":
        return _explain([*rules, *sequences], args.rule_id, args.json)
    return _test(ruleset, rules, args.json, sequences)


def _load_sequences(path: Path | None) -> list[Any]:
    """The sliding window's sequences (patterns/sequences/), shown and tested with the rules."""
    from attyguard.daemon.window import SequenceError, load_sequences

    folder = None if path is None else (path if path.is_dir() else path.parent) / "sequences"
    if folder is not None and not folder.is_dir():
        return []
    try:
        return list(load_sequences(folder))
    except SequenceError as exc:
        raise CommandError(_one_line(str(exc))) from None


def _load(path: Path | None) -> Any:
    try:
        from attyguard.engine.rules import RuleError, load_rules
    except ImportError as exc:
        raise CommandError(f"the rule engine is not available: {exc}") from None
    if path is not None and not path.exists():
        raise CommandError(f"{path}: no such file or directory")
    try:
        return load_rules(path) if path is not None else load_rules()
    except RuleError as exc:
        raise CommandError(_one_line(str(exc))) from None
    except (OSError, ValueError) as exc:  # e.g. an unreadable file, bad YAML below RuleError
        raise CommandError(f"cannot load rules: {_one_line(str(exc))}") from None


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _plain(value: Any) -> Any:
    """A rule attribute as JSON: enums by name/value, tuples as lists."""
    if isinstance(value, Enum):
        return value.name if isinstance(value.value, int) else value.value
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def _rule_json(rule: Any) -> dict[str, Any]:
    out = {name: _plain(getattr(rule, name, None)) for name in _RULE_FIELDS}
    steps = getattr(rule, "steps", None)
    if steps is not None:  # a sliding-window sequence: its family, and its steps to explain
        out["family"] = "sequence"
        out["steps"] = [{"name": st.name, "line": list(st.lines), "rules": list(st.rules),
                         "count": st.count} for st in steps]
    return out


def _list(rules: list[Any], as_json: bool) -> int:
    if as_json:
        write_json([_rule_json(r) for r in rules])
        return EXIT_OK
    if not sys.stdout.isatty():
        # Piped (grep, cut, awk): one plain tab-separated line per rule, no box drawing.
        for r in rules:
            j = _rule_json(r)
            print("\t".join(safe_text(str(j[k]))
                             for k in ("id", "family", "severity", "action", "title")))
        return EXIT_OK
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{len(rules)} rules", title_justify="left")
    table.add_column("id", no_wrap=True)  # ids are copied into `explain`: never split them
    for name in ("family", "severity", "action", "title"):
        table.add_column(name, overflow="fold")
    for r in rules:
        j = _rule_json(r)
        table.add_row(str(j["id"]), str(j["family"]), str(j["severity"]), str(j["action"]),
                      str(j["title"]))
    Console(highlight=False).print(table)
    return EXIT_OK


def _explain(rules: list[Any], rule_id: str, as_json: bool) -> int:
    by_id = {str(r.id): r for r in rules}
    rule = by_id.get(rule_id)
    if rule is None:
        import difflib

        close = difflib.get_close_matches(rule_id, list(by_id), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else " (see 'attyguard rules list')"
        raise CommandError(f"no rule {rule_id!r}{hint}")
    j = _rule_json(rule)
    if as_json:
        write_json(j)
        return EXIT_OK
    from rich.console import Console
    from rich.text import Text

    console = Console(highlight=False, soft_wrap=True)
    console.print(Text(f"{j['id']} — {j['title']}", style="bold"))
    for label, key in (("family", "family"), ("severity", "severity"), ("action", "action"),
                       ("probability", "probability"), ("defined at", "source")):
        console.print(Text(f"  {label}: {j[key]}"))
    for label, key in (("why", "explanation"), ("instead", "remediation")):
        if j[key]:
            console.print(Text(f"  {label}: {j[key]}"))
    if j["atoms"]:
        console.print(Text(f"  atoms: {', '.join(map(str, j['atoms']))}"))
    for n, step in enumerate(j.get("steps", ()), 1):
        times = f" ×{step['count']}" if step["count"] > 1 else ""
        console.print(Text(f"  step {n} {step['name']}{times}: "
                           + " | ".join([*step["line"], *(f"rule {r}" for r in step["rules"])])))
    for label, key in (("matches", "examples_match"), ("does not match", "examples_nomatch")):
        if j[key]:
            console.print(Text(f"  {label}:"))
            for example in j[key]:
                console.print(Text(f"    {example}"))
    return EXIT_OK


_FAILURE_FIELDS = ("rule_id", "source", "example", "expected_match", "message")


def _failure_json(failure: Any) -> dict[str, Any]:
    fields = {name: _plain(getattr(failure, name)) for name in _FAILURE_FIELDS
              if hasattr(failure, name)}
    message = getattr(failure, "message", "")
    fields["text"] = _one_line(str(failure) + (f" ({message})" if message else ""))
    return fields


def _test(ruleset: Any, rules: list[Any], as_json: bool, sequences: list[Any]) -> int:
    from attyguard.daemon.window import run_sequence_examples
    from attyguard.engine.classify import Engine
    from attyguard.engine.examples import run_examples

    failures = [_failure_json(f) for f in run_examples(ruleset)]
    engine = Engine(ruleset)
    failures += [{"rule_id": text.split(": ")[1], "text": text} for text in run_sequence_examples(
        sequences, lambda line: [h.rule_id for h in engine.classify(line).rules])]
    rules = [*rules, *sequences]
    examples = sum(len(getattr(r, "examples_match", ())) + len(getattr(r, "examples_nomatch", ()))
                   for r in rules)
    if as_json:
        write_json({"rules": len(rules), "examples": examples, "failures": failures})
    else:
        for failure in failures:
            print(failure["text"])
        summary = f"{len(rules)} rules, {examples} examples, {len(failures)} failed"
        print(summary, file=sys.stderr if failures else sys.stdout)
    return EXIT_NEGATIVE if failures else EXIT_OK
