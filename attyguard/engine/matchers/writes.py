"""The `writes` matcher: a command writes to a file whose path matches.

This module owns one question rules keep asking — "does this line write to
that file?" — answered the same way for every family (persistence files,
logs, history files, block devices). A file counts as written when it is:

- the target of a writing redirection (`>`, `>|`, `&>`; `>>`, `&>>` append);
- an operand of `tee` (append with `-a`) or `sponge`;
- the destination of `cp`, `mv`, `install`, `ln`, `rsync`, `dd of=`, or the
  output of `curl -o` / `wget -O` (how: copy);
- a file edited in place by `sed -i` / `perl -i` / `ruby -i` (how: edit);
- an operand of `truncate` (how: truncate).

Reading is not writing: `cat ~/.bashrc`, `less /etc/crontab` never match.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

from attyguard.engine.decode import written_text
from attyguard.engine.matchers.base import (
    Analysis,
    Build,
    CommandSpec,
    LazyPattern,
    MatcherError,
    MatchResult,
    bool_field,
    check_keys,
    get_list,
    regex_field,
)
from attyguard.engine.parse import Command

__all__ = ["HOWS", "WritesMatcher", "written_files"]

HOWS = frozenset({"redirect", "append", "tee", "copy", "edit", "truncate"})

_OVERWRITE_OPS = frozenset({">", ">|", "&>"})
_APPEND_OPS = frozenset({">>", "&>>"})
# Options of the copiers that take a separate value (so the value is not an operand).
_COPY_VALUE_OPTS: dict[str, frozenset[str]] = {
    "cp": frozenset({"-S", "--suffix"}),
    "mv": frozenset({"-S", "--suffix"}),
    "ln": frozenset({"-S", "--suffix"}),
    "install": frozenset({"-m", "--mode", "-o", "--owner", "-g", "--group", "-S", "--suffix"}),
    "rsync": frozenset({"-e", "--rsh", "--exclude", "--include", "--filter", "-f",
                        "--exclude-from", "--include-from", "--files-from", "--chmod",
                        "--chown", "--rsync-path", "--log-file", "-T", "--temp-dir"}),
}
_TARGET_DIR_OPTS = ("-t", "--target-directory")
_INPLACE_EDITORS = frozenset({"sed", "gsed", "perl", "ruby"})
_TRUNCATE_VALUE_OPTS = frozenset({"-s", "--size", "-r", "--reference"})
_DOWNLOAD_OUT = {"curl": ("-o", "--output"), "wget": ("-O", "--output-document")}


def _operands(argv: tuple[str, ...], value_opts: frozenset[str]) -> list[str]:
    """Non-option arguments, skipping the values of options that take one."""
    out: list[str] = []
    i = 0
    ended = False
    while i < len(argv):
        v = argv[i]
        if ended or not v.startswith("-") or v == "-":
            out.append(v)
        elif v == "--":
            ended = True
        elif v in value_opts:
            i += 1
        i += 1
    return out


def _copy_dest(cmd: Command) -> str | None:
    argv = cmd.argv
    for i, v in enumerate(argv):
        for opt in _TARGET_DIR_OPTS:
            if v == opt and i + 1 < len(argv):
                return argv[i + 1]
            if opt.startswith("--") and v.startswith(opt + "="):
                return v[len(opt) + 1 :]
    ops = _operands(argv, _COPY_VALUE_OPTS.get(cmd.name, frozenset()))
    return ops[-1] if len(ops) >= 2 else None


def _inplace_files(cmd: Command) -> list[str]:
    """Files edited in place by `sed -i` / `perl -pi -e` (none without -i)."""
    argv = cmd.argv
    perlish = cmd.name in ("perl", "ruby")
    inplace = False
    has_script_opt = False
    files: list[str] = []
    i = 0
    while i < len(argv):
        v = argv[i]
        if v == "--in-place" or v.startswith("--in-place="):
            inplace = True
        elif v in ("--expression", "--file"):
            has_script_opt = True
            i += 1
        elif v.startswith("-") and not v.startswith("--") and len(v) > 1:
            letters = v[1:]
            if perlish:
                if "i" in letters.split(".")[0]:
                    inplace = True
                if "e" in letters.split(".")[0] or "E" in letters:
                    has_script_opt = True
                    i += 1
            else:
                if letters[0] == "i" or ("i" in letters and letters.isalpha()):
                    inplace = True
                elif letters[-1] in "ef" and letters.isalpha():
                    has_script_opt = True
                    i += 1
        elif not v.startswith("-") or v == "-":
            files.append(v)
        i += 1
    if not inplace:
        return []
    return files if has_script_opt or perlish else files[1:]


def written_files(cmd: Command) -> Iterator[tuple[str, str]]:
    """(path, how) for every file `cmd` writes, as far as its words show."""
    for red in cmd.redirects:
        if red.op in _OVERWRITE_OPS:
            yield red.target, "redirect"
        elif red.op in _APPEND_OPS:
            yield red.target, "append"
    name = cmd.name
    argv = cmd.argv
    if name in ("tee", "sponge"):
        append = any(a in ("-a", "--append") for a in argv)
        for f in _operands(argv, frozenset()):
            yield f, "append" if append else "tee"
    elif name in _COPY_VALUE_OPTS:
        dest = _copy_dest(cmd)
        if dest:
            yield dest, "copy"
    elif name == "dd":
        for a in argv:
            if a.startswith("of="):
                yield a[3:], "copy"
    elif name in _DOWNLOAD_OUT:
        short, long = _DOWNLOAD_OUT[name]
        for i, a in enumerate(argv):
            if a in (short, long):
                if i + 1 < len(argv):
                    yield argv[i + 1], "copy"
            elif a.startswith(long + "="):
                yield a[len(long) + 1 :], "copy"
    elif name in _INPLACE_EDITORS:
        for f in _inplace_files(cmd):
            yield f, "edit"
    elif name == "truncate":
        for f in _operands(argv, _TRUNCATE_VALUE_OPTS):
            yield f, "truncate"


@dataclass(frozen=True, slots=True)
class WritesMatcher:
    """Some command writes a file matching `target_glob`/`target_regex` (see module doc)."""

    type_name: ClassVar[str] = "writes"
    target_glob: tuple[str, ...]
    target_regex: LazyPattern | None
    not_target_glob: tuple[str, ...]
    how: frozenset[str]
    command: CommandSpec | None
    # Only writes whose text the line does not decide (a copy, a download, `$(…)`):
    # rules judge literal text through its payload (decoders: written) instead.
    unknown_content: bool = False

    @classmethod
    def from_dict(cls, d: dict[str, Any], b: Build) -> WritesMatcher:
        check_keys(d, ("target_glob", "target_regex", "not_target_glob", "how", "command",
                       "unknown_content"), "writes matcher")
        globs = get_list(d, "target_glob")
        regex = regex_field(d, "target_regex", b)
        if not globs and regex is None:
            raise MatcherError("writes matcher needs 'target_glob' or 'target_regex'")
        how = frozenset(get_list(d, "how")) or HOWS
        if not how <= HOWS:
            raise MatcherError(f"'how' must be among {', '.join(sorted(HOWS))}")
        cmd = d.get("command")
        return cls(globs, regex, get_list(d, "not_target_glob"), how,
                   CommandSpec.from_dict(cmd, b, "writes command") if cmd else None,
                   bool(bool_field(d, "unknown_content", False)))

    def _target_ok(self, target: str) -> bool:
        if any(fnmatch.fnmatchcase(target, g) for g in self.not_target_glob):
            return False
        if any(fnmatch.fnmatchcase(target, g) for g in self.target_glob):
            return True
        return self.target_regex is not None and self.target_regex.search(target) is not None

    def match(self, a: Analysis) -> MatchResult | None:
        known = _literal_writers(a) if self.unknown_content else frozenset()
        if self.command is None and self.how & {"redirect", "append"}:
            # Redirections of compounds and bare `> file` belong to no command.
            for red in a.parsed.redirects:
                how = ("redirect" if red.op in _OVERWRITE_OPS
                       else "append" if red.op in _APPEND_OPS else "")
                if how in self.how and self._target_ok(red.target) and red.span not in known:
                    return MatchResult(red.span, f"{red.op} {red.target}")
        for cmd in a.parsed.commands:
            if self.command is not None and not self.command.test(cmd):
                continue
            if self.unknown_content and cmd.span in known:
                continue
            for target, how in written_files(cmd):
                if how in self.how and self._target_ok(target):
                    text = " ".join((cmd.path, *cmd.argv)).strip()
                    return MatchResult(cmd.span, f"{text} (writes {target})")
        return None


def _literal_writers(a: Analysis) -> frozenset[object]:
    """Spans of the commands (and their redirections) writing text the line decides."""
    spans: set[object] = set()
    for flow in a.parsed.pipelines:
        text: str | None = None
        for cmd in flow:
            own = written_text(cmd)
            if own is not None:
                spans.add(cmd.span)
                spans.update(r.span for r in cmd.redirects)
            elif cmd.name in ("tee", "sponge") and text is not None:
                spans.add(cmd.span)
            text = own
    return frozenset(spans)
