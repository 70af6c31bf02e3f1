"""`attyguard daemon --probe [--json] [--rung R]`: print the enforcement ladder as probed here."""

from __future__ import annotations

import json
import sys

from attyguard.kernel.events import Rung
from attyguard.kernel.layer import probe

__all__ = ["RUNG_NAMES", "print_probe"]

RUNG_NAMES = tuple(r.value for r in Rung)


def print_probe(force: str | None = None, as_json: bool = False) -> int:
    """Probe and print; exit status 0 when some rung is usable, 1 when none is."""
    result = probe(Rung(force) if force else None)
    if as_json:
        sys.stdout.write(json.dumps(result.to_json()) + "\n")
        return 0 if result.in_use else 1
    from rich.console import Console
    from rich.table import Table

    table = Table(title="attyguard kernel layer: enforcement ladder", title_justify="left")
    table.add_column("rung")
    table.add_column("available")
    table.add_column("why", overflow="fold")
    for r in result.rungs:
        mark = "[green]yes[/]" if r.available else "[red]no[/]"
        name = f"[bold]{r.name.value}[/] ◀ in use" if r.name is result.in_use else r.name.value
        table.add_row(name, mark, r.reason)
    console = Console()
    console.print(table)
    forced = f" (forced at or below {result.forced.value})" if result.forced else ""
    console.print(f"in use: {result.in_use.value if result.in_use else 'none'}{forced}")
    if result.answer_path:
        console.print(f"fanotify answers (enforce): {result.answer_path} "
                      f"({result.answer_path_reason})")
    return 0 if result.in_use else 1
