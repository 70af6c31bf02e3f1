"""Is this command complete, or would bash ask for more (PS2)?

The front end collects a whole command before it is judged and before bash
sees any of it: a part that only completes with a later part (`curl … \\`
then `| sh`, an open quote, a here-document, an `if` or `for` body, a `{` or
`(` group, a trailing `|` or `&&`) is never sent on its own.

Whose parser: bash's own (`bash -n`, which parses and never runs), not
tree-sitter's error nodes. tree-sitter recovers from errors, so an error
node cannot tell "needs more input" (`if true; then`) from "will never
parse" (`fi` alone, which bash rejects at once with no PS2); bash's messages
for the two differ ("unexpected end of file" against "unexpected token"),
and its grammar is the one that will run the text. It costs a fork and exec
(bench/README.md, "Figures behind design choices"), so it runs only for
text that could be open at all (`might_continue`): a line of plain words
never pays it. Not asked through
the live child on purpose: the only parse-without-running in a live bash
is a function definition around the text, and text that closes that
function early would run.

One difference is handled here: `bash -n` takes a backslash at the very
end of the text as a literal, an interactive bash as a continuation. bash's
aliases are not expanded by `bash -n`; an alias that opens a compound command
is still caught by bash's own PS2 after the line is sent (the session then
holds the rest as before).
"""

from __future__ import annotations

import os
import re
import subprocess

__all__ = ["incomplete_from_check", "might_continue", "needs_more", "trailing_backslash"]

# Anything that can leave a command open: quotes, escapes, substitutions,
# groups, here-documents, pipes and lists, compound-command keywords.
_OPENERS = re.compile(
    r"""['"`\\({\[<|&]|\b(?:if|then|else|elif|for|while|until|do|case|select|function|coproc)\b""")

_INCOMPLETE = (
    "unexpected end of file",
    "unexpected EOF while looking for",
    "delimited by end-of-file",
)

_CHECK_TIMEOUT_S = 2.0


def might_continue(text: str) -> bool:
    """False when `text` certainly needs no more input (nothing in it can open a construct)."""
    return _OPENERS.search(text) is not None


def trailing_backslash(text: str) -> bool:
    """The text ends in an unescaped backslash (bash then asks for the next line).

    Inside single quotes a backslash is literal, but then the quote is open
    and `bash -n` says so anyway; a comment's backslash is not a
    continuation either.
    """
    stripped = text.rstrip("\n")
    if stripped != text:
        return False  # the last line was ended: it is not continued
    run = len(stripped) - len(stripped.rstrip("\\"))
    if run % 2 == 0:
        return False
    last = stripped.rsplit("\n", 1)[-1]
    return not re.match(r"\s*#", last)


def incomplete_from_check(status: int, stderr: str) -> bool:
    """`bash -n`'s answer: does it say the input ended too early (rather than being wrong)?"""
    return any(marker in stderr for marker in _INCOMPLETE)


def needs_more(text: str, bash: str = "/bin/bash") -> bool:
    """True if bash would show PS2 for `text`: collect more before judging or sending."""
    if not might_continue(text):
        return False
    if trailing_backslash(text):
        return True
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C"}
    try:
        # On stdin, not in argv: no length limit, and other processes cannot read it.
        proc = subprocess.run(
            [bash if os.path.exists(bash) else "bash", "--norc", "--noprofile", "-n",
             "-O", "extglob"],
            input=text.encode("utf-8", "surrogateescape"), stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, env=env, timeout=_CHECK_TIMEOUT_S, check=False)
    except (OSError, ValueError, subprocess.SubprocessError):
        # No answer: send it; bash's own PS2 still asks for the rest.
        return False
    return incomplete_from_check(proc.returncode,
                                 proc.stderr.decode("utf-8", "replace"))
