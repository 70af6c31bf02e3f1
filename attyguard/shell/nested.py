"""Interactive shells started from the prompt: guarded too, or said not to be (pure).

After `bash` at the prompt every key goes to the inner shell: attyguard
passes the terminal through while a command runs, so the inner shell's
lines would never be judged. What can be guarded is: a bare interactive
`bash`/`sh` becomes a nested attyguard (the same options), and programs that
start "the user's shell" (`script`, an editor's `:sh`, tmux) find attyguard in
`$SHELL` (spawn.py). What cannot — another user's shell (`su`, `sudo -i`,
`sudo -s`), shells that are not bash — gets one line saying that its lines are
not judged.

Only a line that is one plain command is looked at; anything else is left
as typed (judged as usual).
"""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass

__all__ = ["Nested", "nested_shell"]

_OURS = frozenset({"bash", "sh"})
# Options of an interactive bash that attyguard takes too (shell/args.py).
_PASSED = frozenset({"-i", "-l", "--login", "--norc", "--noprofile", "--posix", "-"})
_OTHER_SHELLS = frozenset({"zsh", "dash", "ksh", "mksh", "fish", "csh", "tcsh", "yash",
                           "busybox", "rbash"})
_META = set(";&|<>()`$\n")
# Cheap first look (every line passes here): does it start with a shell's name?
_FIRST = re.compile(r"\s*(?:\S*/)?(?:bash|sh|su|sudo|doas|zsh|dash|ksh|mksh|fish|csh|tcsh|"
                    r"yash|busybox|rbash)(?:\s|$)")


@dataclass(frozen=True)
class Nested:
    """`line`: what to run instead (None: as typed); `notice`: one line for the user."""

    line: str | None = None
    notice: str = ""


def nested_shell(line: str, attyguard: str | None) -> Nested | None:
    """What to do about `line` starting an interactive shell (None: it does not)."""
    if not _FIRST.match(line) or _META & set(line):
        return None
    try:
        words = shlex.split(line)
    except ValueError:
        return None
    if not words:
        return None
    name = os.path.basename(words[0])
    args = words[1:]
    if name in _OURS and all(a in _PASSED for a in args):
        if attyguard is None:
            return Nested(notice=_not_judged(name))
        passed = [a for a in args if a != "-"]
        if name == "sh" and "--posix" not in passed:
            passed.append("--posix")  # (sh is bash in POSIX mode: as close as bash gets)
        return Nested(line=shlex.join([attyguard, *passed]))
    if name in _OTHER_SHELLS and not any(a == "-c" or a.startswith("-c") for a in args):
        return Nested(notice=_not_judged(name))
    if name == "su" and "-c" not in args and "--command" not in args:
        return Nested(notice=_not_judged("su"))
    if name in ("sudo", "doas") and _sudo_shell(args):
        return Nested(notice=_not_judged(name))
    return None


# sudo options that take the next word as their value.
_SUDO_ARG = frozenset({"-u", "-g", "-h", "-p", "-C", "-D", "-R", "-T", "-U", "--user",
                       "--group", "--host", "--prompt", "--chdir", "--chroot"})


def _sudo_shell(args: list[str]) -> bool:
    """sudo -i / -s, or sudo running an interactive shell or su."""
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in _SUDO_ARG:
            i += 2
            continue
        if arg in ("--login", "--shell"):
            return True
        if arg.startswith("-") and not arg.startswith("--"):
            if "i" in arg[1:] or "s" in arg[1:]:
                return True
            i += 1
            continue
        if arg.startswith("--"):
            i += 1
            continue
        base = os.path.basename(arg)
        return base in _OURS | _OTHER_SHELLS | {"su"} and "-c" not in args[i:]
    return False


def _not_judged(name: str) -> str:
    return (f"attyguard: the shell `{name}` starts is not guarded: its lines are not judged "
            "until it exits")
