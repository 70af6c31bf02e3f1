"""History expansion and `fc`, decided in the front end so the line judged is the line run (pure).

bash expands `!!`, `!n`, `!-n`, `!string`, `!?s?`, `^old^new`, word
designators and modifiers as it reads a line; judging the typed text would
judge `!!`, not what it stands for. So bash's own expansion is off while it
reads (hooks.bash empties `histchars`; `set -H`/`set +H` stay the user's)
and the front end asks bash for the expansion first (`BashChild.expand_history`,
bash's `history -p` through the side channel), judges the result, shows it
as bash would and sends it expanded.

Whose expansion: bash's, not a re-implementation. `!!` means bash's history
list, which the front end does not have: `history -s`, HISTCONTROL,
HISTIGNORE and lines from other sources shape it; `history -p` runs the same
`history_expand` over that list and stores nothing. A round trip is paid
only by lines that hold the user's history character (or start with the
quick-substitution one).

`fc` runs lines from the history too: `fc -s [pat=rep] [cmd]` is resolved
here to the line it will run (the event through the same expansion, the
substitution as fc does it: every occurrence, literally), and an editing
`fc` is rewritten so that bash runs the editor but the edited text comes
back to the prompt, where it is judged like anything typed.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

__all__ = ["FcCall", "event_designator", "fc_in_compound", "fc_substitute", "might_expand",
           "parse_fc", "print_only", "rewrite_fc_edit"]

# The shell function hooks.bash gives fc as its editor (runs the real one, keeps the result).
FC_EDITOR = "__ag_fced"


def might_expand(text: str, histchars: str) -> bool:
    """Could bash's history expansion change `text`? ("" histchars: expansion is off)."""
    if not histchars:
        return False
    if histchars[0] in text:
        return True
    return len(histchars) > 1 and text.lstrip(" \t").startswith(histchars[1])


def print_only(text: str, histchars: str) -> bool:
    """The `:p` modifier: bash shows the expansion and runs nothing."""
    if not histchars:
        return False
    bang = re.escape(histchars[0])
    return re.search(bang + r"[^\s'\"]*:p(?![A-Za-z])", text) is not None


@dataclass(frozen=True)
class FcCall:
    """One `fc` command line, as far as it decides what runs."""

    mode: str  # "list" (prints, runs nothing), "reexec" (-s), "edit" (runs the edited text)
    args: tuple[str, ...]  # the operands (first [last]) or, for -s, the command
    pat: str = ""
    rep: str = ""
    editor: str | None = None  # -e ENAME
    options: tuple[str, ...] = ()  # -r, -n: kept for the rewrite


def parse_fc(line: str) -> FcCall | None:
    """`line` if it is one plain `fc` command (nothing else on the line), else None."""
    text = line.strip()
    if not text.startswith("fc") or any(c in text for c in ";&|<>`$()\n"):
        return None
    try:
        words = shlex.split(text)
    except ValueError:
        return None
    if not words or words[0] != "fc":
        return None
    mode = "edit"
    editor: str | None = None
    options: list[str] = []
    i = 1
    while i < len(words) and words[i].startswith("-") and not _number(words[i]):
        word = words[i]
        if word == "--":
            i += 1
            break
        if word == "-e":
            if i + 1 >= len(words):
                return None
            editor = words[i + 1]
            i += 2
            continue
        for letter in word[1:]:
            if letter == "l":
                mode = "list"
            elif letter == "s":
                mode = "reexec" if mode != "list" else mode
            elif letter in "nr":
                options.append(f"-{letter}")
            else:
                return None  # (bash rejects it: nothing to resolve)
        i += 1
    if editor == "-" and mode == "edit":
        mode = "reexec"  # POSIX spelling of -s
    rest = words[i:]
    pat = rep = ""
    if mode == "reexec" and rest and "=" in rest[0]:
        pat, _, rep = rest[0].partition("=")
        rest = rest[1:]
    return FcCall(mode, tuple(rest), pat, rep, editor, tuple(options))


def _number(word: str) -> bool:
    return re.fullmatch(r"-?\d+", word) is not None


def event_designator(call: FcCall, histchars: str = "!^#") -> str | None:
    """The history reference for the command `fc -s` re-runs (None: not expressible)."""
    bang = (histchars or "!")[0]
    if not call.args:
        return bang + "-1"
    target = call.args[0]
    if _number(target):
        return bang + target
    if re.fullmatch(r"[^\s:^$*%=?!\"'\\]+", target):
        return bang + target
    return None


def fc_substitute(command: str, call: FcCall) -> str:
    """fc's own substitution: every occurrence of pat, literally."""
    if not call.pat:
        return command
    return command.replace(call.pat, call.rep)


def rewrite_fc_edit(call: FcCall) -> str:
    """The editing `fc` with our editor wrapper: bash runs the user's editor, and the
    edited text comes back to the prompt instead of being run unjudged."""
    words = ["fc", "-e", FC_EDITOR, *call.options, *call.args]
    prefix = f"__ag_fced_ed={shlex.quote(call.editor)} " if call.editor else ""
    return prefix + shlex.join(words)


# `fc` where a command starts: the line's start, after ; & | ( { ` $( or a keyword.
_FC_WORD = re.compile(r"(?:^|[;&|({`]|\$\(|\b(?:then|do|else|time|!)\s)\s*"
                      r"(?:builtin\s+|command\s+)?fc\b")


def fc_in_compound(line: str) -> bool:
    """`fc` runs inside a larger line (`history -s X; fc -s`): what it re-runs
    cannot be resolved before the line runs, so it cannot be judged."""
    if parse_fc(line) is not None:
        return False
    return any(not _lists_only(m, line) for m in _FC_WORD.finditer(line))


def _lists_only(match: re.Match[str], line: str) -> bool:
    """`fc -l …` only lists: harmless wherever it is."""
    rest = line[match.end():].lstrip()
    return rest.startswith("-") and "l" in rest.split(None, 1)[0] and "s" not in \
        rest.split(None, 1)[0] and "e" not in rest.split(None, 1)[0]
