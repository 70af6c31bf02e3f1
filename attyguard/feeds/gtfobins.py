"""GTFOBins `_gtfobins/<binary>` pages -> argument shapes that matter under privilege.

Each page's YAML front matter lists, per function (shell, reverse-shell,
file-write, …), code examples and the contexts they work in (`sudo`, `suid`,
`unprivileged`, `capabilities`). A *shape* is the example's invocation of the
binary reduced to the tokens that make it an escape (options, interpreter
calls, `/bin/sh`), with the page's placeholders (`/path/to/…`, `DATA`,
`attacker.com`, port numbers) dropped. A shape only raises a verdict when the
binary runs with the privilege its context names (`sudo`: started through
sudo/doas; `suid`: the file is set-uid): unprivileged, these are everyday uses.

Functions -> actions: shell, command, reverse-shell, bind-shell, file-write,
library-load and privilege-escalation warn; file-read, upload, download only add
a small probability. `inherit` entries (a page pointing at another) are skipped.
"""

from __future__ import annotations

import re
import shlex
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["FUNCTIONS", "compile_pages"]

# function -> (action, probability)
FUNCTIONS = {
    "shell": ("warn", 0.6),
    "command": ("warn", 0.5),
    "reverse-shell": ("warn", 0.7),
    "bind-shell": ("warn", 0.7),
    "file-write": ("warn", 0.4),
    "library-load": ("warn", 0.5),
    "privilege-escalation": ("warn", 0.6),
    "file-read": ("allow", 0.15),
    "upload": ("allow", 0.15),
    "download": ("allow", 0.1),
}
_CONTEXTS = ("sudo", "suid")
_PLACEHOLDER = re.compile(
    r"/path/to/|\bDATA\b|attacker\.com|\b\d{2,5}\b|user@|\bRHOST\b|\bLHOST\b|\bRPORT\b|"
    r"\bLPORT\b|input-file|output-file|temp-file|temp-dir|lib\.so|\bx\b|^/etc/hosts$")
_TOKEN_MIN = 2


def _front_matter(text: str) -> Any:
    import yaml

    return next(yaml.safe_load_all(text), None)


def _tokens(code: str, binary: str) -> list[str] | None:
    """The distinctive tokens of the line that invokes `binary`, or None if none does."""
    for line in code.splitlines():
        try:
            words = shlex.split(line, comments=False)
        except ValueError:
            words = line.split()
        for i, word in enumerate(words):
            if word.rsplit("/", 1)[-1] != binary:
                continue
            keep: list[str] = []
            for token in words[i + 1:]:
                if token in ("|", ";", "&&", "||"):
                    break
                if _PLACEHOLDER.search(token) and not token.startswith("-"):
                    continue
                # An option's value after '=' is usually a placeholder path; keep its name.
                token = token.split("=", 1)[0] + "=" if (
                    token.startswith("--") and "=" in token
                    and _PLACEHOLDER.search(token.split("=", 1)[1])) else token
                token = token.lower().strip()
                if len(token) >= _TOKEN_MIN and token not in keep:
                    keep.append(token)
            return keep
    return None


def _distinctive(token: str) -> bool:
    """A token everyday use rarely has: a long option, a path, an assignment, code."""
    return len(token) >= 4 or any(c in token for c in "/=(;'\"")


def compile_pages(paths: Iterable[Path]) -> tuple[list[dict[str, Any]], Counter[str]]:
    """Shapes from every page under `paths`, and what was dropped for each reason."""
    shapes: list[dict[str, Any]] = []
    dropped: Counter[str] = Counter()
    seen: set[tuple[str, str, tuple[str, ...]]] = set()
    pages = [p for root in paths for p in (sorted(root.iterdir()) if root.is_dir() else [root])
             if p.is_file() and not p.name.startswith(".")]
    for page in pages:
        binary = page.name.removesuffix(".md")
        try:
            doc = _front_matter(page.read_text(encoding="utf-8"))
        except Exception as exc:  # one broken page must not lose the others
            dropped[f"unreadable page: {type(exc).__name__}"] += 1
            continue
        functions = (doc or {}).get("functions") or {}
        for function, entries in functions.items():
            if function not in FUNCTIONS:
                dropped[f"function {function}"] += len(entries or ())
                continue
            action, p = FUNCTIONS[function]
            for n, entry in enumerate(entries or ()):
                contexts = entry.get("contexts") or {}
                usable = [c for c in _CONTEXTS if c in contexts]
                if not usable:
                    dropped["no sudo or suid context"] += 1
                    continue
                for context in usable:
                    override = contexts.get(context) or {}
                    code = (override.get("code") if isinstance(override, dict) else None) \
                        or entry.get("code") or ""
                    tokens = _tokens(code, binary)
                    if tokens is None:
                        dropped["example does not invoke the binary itself"] += 1
                        continue
                    if not tokens:
                        dropped["no distinctive argument (the bare binary)"] += 1
                        continue
                    if not any(_distinctive(t) for t in tokens):
                        # `sudo crontab -e`, `sudo chattr +i dir`: what admins type daily.
                        dropped["only short options (everyday use looks the same)"] += 1
                        continue
                    key = (binary, function, tuple(tokens))
                    if key in seen:
                        # The same shape in both contexts: one shape, both contexts.
                        for shape in shapes:
                            if (shape["binary"], shape["function"],
                                    tuple(shape["tokens"])) == key:
                                shape["contexts"] = sorted({*shape["contexts"], context})
                        continue
                    seen.add(key)
                    shapes.append({
                        "id": f"gtfobins:{binary}:{function}:{n + 1}",
                        "binary": binary, "function": function, "contexts": [context],
                        "tokens": tokens, "action": action, "p": p,
                    })
    return shapes, dropped
