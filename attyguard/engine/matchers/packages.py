"""The `package` matcher: package-manager installs of flagged or look-alike names.

This module owns reading an install command (`npm install X`, `pip install X`,
`python3 -m pip install X`, `gem install X`, `cargo install X`, `go install X`,
`composer require X`, and their yarn/pnpm/bun/pipx/uv/poetry cousins) into
(ecosystem, package, version) triples, and the two checks rules ask of them:

- `known`: the name (or name@version) is on a shipped list of known-malicious
  packages;
- `typosquat_of`: the name is not itself a listed popular package but sits one
  edit away from one (insertion, deletion, substitution, or two swapped
  neighbours), or becomes one once homoglyphs are folded (`jeIlyfish`, `reqυests`).

No library in the project's dependencies does this, and the check is a few
lines over a bounded list, so it is written here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from attyguard.engine.matchers.base import Analysis, Build, MatcherError, MatchResult, check_keys
from attyguard.engine.parse import Command

__all__ = ["ECOSYSTEMS", "PackageMatcher", "installs", "skeleton", "within_one_edit"]

ECOSYSTEMS = frozenset({"npm", "pypi", "rubygems", "cargo", "go", "composer"})

# manager -> (ecosystem, subcommands that install, options that take a value)
_NPM_VALUE = frozenset({"--registry", "--prefix", "-C", "--workspace", "-w", "--tag", "--cache",
                        "--userconfig"})
_PIP_VALUE = frozenset({"-r", "--requirement", "-c", "--constraint", "-e", "--editable", "-i",
                        "--index-url", "--extra-index-url", "-f", "--find-links", "-t",
                        "--target", "--prefix", "--root", "--src", "--python", "-p",
                        "--platform", "--python-version", "--implementation", "--abi",
                        "--progress-bar", "--cache-dir", "--log", "--proxy", "--timeout",
                        "--trusted-host", "--upgrade-strategy", "--only-binary",
                        "--no-binary", "--config-settings", "-C", "--index", "--spec"})
_GEM_VALUE = frozenset({"-v", "--version", "-i", "--install-dir", "-s", "--source", "-n",
                        "--bindir", "--platform", "-g", "--file"})
_CARGO_VALUE = frozenset({"--version", "--git", "--branch", "--tag", "--rev", "--path",
                          "--root", "--registry", "--index", "--features", "-F", "--target",
                          "--profile", "-j", "--jobs", "--bin", "--example", "--target-dir",
                          "--rename", "--package", "-p"})
_MANAGERS: dict[str, tuple[str, frozenset[str], frozenset[str]]] = {
    "npm": ("npm", frozenset({"install", "i", "in", "ins", "inst", "insta", "instal", "isnt",
                              "isnta", "isntal", "isntall", "add", "install-test", "it"}),
            _NPM_VALUE),
    "pnpm": ("npm", frozenset({"add", "install", "i"}), _NPM_VALUE),
    "yarn": ("npm", frozenset({"add"}), _NPM_VALUE),
    "bun": ("npm", frozenset({"add", "install", "i", "a"}), _NPM_VALUE),
    "npx": ("npm", frozenset(), _NPM_VALUE | {"-p", "--package"}),
    "bunx": ("npm", frozenset(), _NPM_VALUE),
    "pip": ("pypi", frozenset({"install", "download"}), _PIP_VALUE),
    "pipx": ("pypi", frozenset({"install", "run"}), _PIP_VALUE),
    "poetry": ("pypi", frozenset({"add"}), _PIP_VALUE),
    "pipenv": ("pypi", frozenset({"install"}), _PIP_VALUE),
    "easy_install": ("pypi", frozenset(), _PIP_VALUE),
    "gem": ("rubygems", frozenset({"install", "i"}), _GEM_VALUE),
    "cargo": ("cargo", frozenset({"install", "add"}), _CARGO_VALUE),
    "go": ("go", frozenset({"install", "get"}), frozenset({"-tags", "-ldflags", "-o"})),
    "composer": ("composer", frozenset({"require"}), frozenset({"--working-dir", "-d"})),
}
_PIP_RE = re.compile(r"^pip[0-9.]*$")
_PY_RE = re.compile(r"^python[0-9.]*$|^py$")


def _manager(cmd: Command) -> tuple[str, tuple[str, ...]] | None:
    """(manager, words after the manager) for `python -m pip …`, `uv pip …`, `yarn global …`."""
    name, argv = cmd.name, cmd.argv
    if _PIP_RE.match(name):
        return "pip", argv
    if _PY_RE.match(name) and len(argv) >= 2 and argv[0] == "-m" and _PIP_RE.match(argv[1]):
        return "pip", argv[2:]
    if name == "uv" and argv:
        if argv[0] == "pip":
            return "pip", argv[1:]
        if argv[0] == "add":
            return "poetry", argv
        if argv[0] == "tool" and len(argv) > 1 and argv[1] == "install":
            return "pipx", argv[1:]
    if name == "uvx":
        return "pipx", ("run", *argv)
    if name == "yarn" and argv and argv[0] == "global":
        return "yarn", argv[1:]
    if name in _MANAGERS:
        return name, argv
    return None


def _looks_local(arg: str) -> bool:
    return (arg in (".", "..") or arg.startswith(("./", "../", "/", "~", "$", "file:", "git+"))
            or "://" in arg or arg.endswith((".whl", ".tar.gz", ".tgz", ".zip", ".gem",
                                              ".txt", ".cfg", ".toml")))


def _split_spec(eco: str, arg: str) -> tuple[str, str]:
    """`name==1.0`, `name[x]>=2`, `name@1.2.3`, `@scope/name@1`, `path@v1` -> (name, version)."""
    if eco == "pypi":
        m = re.match(r"^([^\[\]<>=!~;@\s]+)(?:\[[^\]]*\])?\s*(?:===?|@)?\s*([^;,<>!~\s]*)", arg)
        if not m:
            return arg, ""
        ver = m.group(2) if re.search(r"==|@", arg) else ""
        return m.group(1), ver
    at = arg.rfind("@")
    if at > 0:
        return arg[:at], arg[at + 1 :]
    return arg, ""


def normalize_name(eco: str, name: str) -> str:
    name = name.strip().lower()
    if eco == "pypi":
        return re.sub(r"[-_.]+", "-", name)
    return name


def installs(cmd: Command) -> Iterator[tuple[str, str, str, str]]:
    """(ecosystem, raw name, normalised name, version) for each package `cmd` installs."""
    found = _manager(cmd)
    if found is None:
        return
    manager, words = found
    eco, subcommands, value_opts = _MANAGERS[manager]
    if subcommands:
        # The first operand is the subcommand; global options may come before it.
        i = 0
        while i < len(words) and words[i].startswith("-"):
            i += 2 if words[i] in value_opts else 1
        if i >= len(words) or words[i] not in subcommands:
            return
        words = words[i + 1 :]
    i = 0
    while i < len(words):
        w = words[i]
        i += 1
        if w == "--":
            if manager in ("npx", "bunx"):
                break
            continue
        if w.startswith("-"):
            if w in value_opts and "=" not in w:
                i += 1
            continue
        if _looks_local(w) or not w:
            continue
        raw, version = _split_spec(eco, w)
        if raw:
            yield eco, raw, normalize_name(eco, raw), version
        if manager in ("npx", "bunx", "pipx"):
            break  # the rest are the tool's own arguments


# Look-alike characters folded to the ASCII letter they imitate (Cyrillic, Greek,
# digits and case tricks). Applied before lower-casing: `jeIlyfish` -> `jellyfish`.
_HOMOGLYPHS = str.maketrans({
    "I": "l", "0": "o", "1": "l",
    "а": "a", "е": "e", "о": "o", "р": "p", "с": "c", "у": "y", "х": "x", "і": "i",
    "ј": "j", "ѕ": "s", "ԁ": "d", "ɡ": "g", "һ": "h", "ӏ": "l", "ԛ": "q", "ԝ": "w",
    "ο": "o", "α": "a", "ν": "v", "ρ": "p", "τ": "t", "ι": "i", "κ": "k", "υ": "u",
    "ε": "e", "Α": "a", "Β": "b", "Ε": "e", "Κ": "k", "Μ": "m", "Ν": "n", "Ο": "o",
    "Ρ": "p", "Τ": "t", "Χ": "x", "А": "a", "В": "b", "Е": "e", "К": "k", "М": "m",
    "Н": "h", "О": "o", "Р": "p", "С": "c", "Т": "t", "Х": "x",
})


def skeleton(name: str) -> str:
    """The name with homoglyphs folded, lower-cased, `rn` read as `m`, `vv` as `w`."""
    return name.translate(_HOMOGLYPHS).lower().replace("rn", "m").replace("vv", "w")


def within_one_edit(a: str, b: str) -> bool:
    """a != b, and one insertion, deletion, substitution or adjacent swap turns a into b."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        if len(diff) == 1:
            return True
        return (len(diff) == 2 and diff[1] == diff[0] + 1
                and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]])
    short, long = (a, b) if len(a) < len(b) else (b, a)
    i = 0
    while i < len(short) and short[i] == long[i]:
        i += 1
    return short[i:] == long[i + 1 :]


def _eco_lists(d: Mapping[str, Any], key: str) -> dict[str, tuple[str, ...]]:
    raw = d.get(key)
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise MatcherError(f"{key!r} must map an ecosystem to a list of package names")
    out: dict[str, tuple[str, ...]] = {}
    for eco, names in raw.items():
        if eco not in ECOSYSTEMS:
            raise MatcherError(f"{key!r}: unknown ecosystem {eco!r} "
                               f"(known: {', '.join(sorted(ECOSYSTEMS))})")
        if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
            raise MatcherError(f"{key!r}.{eco} must be a list of package names")
        out[eco] = tuple(names)
    return out


def _entry(eco: str, entry: str) -> tuple[str, str]:
    if eco == "pypi" and "==" in entry:
        name, ver = entry.split("==", 1)
        return normalize_name(eco, name), ver
    at = entry.rfind("@")
    if at > 0:
        return normalize_name(eco, entry[:at]), entry[at + 1 :]
    return normalize_name(eco, entry), ""


@dataclass(frozen=True, slots=True)
class PackageMatcher:
    """An install of a known-malicious package, or of a look-alike of a popular one."""

    type_name: ClassVar[str] = "package"
    known: Mapping[str, frozenset[tuple[str, str]]]  # eco -> {(name, version or "")}
    popular: Mapping[str, frozenset[str]]  # eco -> normalised popular names
    popular_skeletons: Mapping[str, Mapping[str, str]]  # eco -> skeleton -> popular name
    min_length: int

    @classmethod
    def from_dict(cls, d: dict[str, Any], b: Build) -> PackageMatcher:
        check_keys(d, ("known", "typosquat_of", "min_length"), "package matcher")
        known = {eco: frozenset(_entry(eco, e) for e in names)
                 for eco, names in _eco_lists(d, "known").items()}
        popular = {eco: frozenset(normalize_name(eco, n) for n in names)
                   for eco, names in _eco_lists(d, "typosquat_of").items()}
        if not known and not popular:
            raise MatcherError("package matcher needs 'known' and/or 'typosquat_of'")
        min_length = d.get("min_length", 5)
        if not isinstance(min_length, int) or isinstance(min_length, bool) or min_length < 1:
            raise MatcherError("'min_length' must be a positive integer")
        skeletons = {eco: {skeleton(n): n for n in names} for eco, names in popular.items()}
        return cls(known, popular, skeletons, min_length)

    def _verdict(self, eco: str, raw: str, name: str, version: str) -> str | None:
        listed = self.known.get(eco, frozenset())
        if (name, "") in listed or (version and (name, version) in listed):
            return f"{eco} package {raw!r} is a known malicious package"
        popular = self.popular.get(eco)
        if not popular or name in popular or len(name) < self.min_length:
            return None
        twin = self.popular_skeletons[eco].get(skeleton(raw))
        if twin is None and eco == "pypi":
            twin = self.popular_skeletons[eco].get(normalize_name(eco, skeleton(raw)))
        if twin is not None and twin != name:
            return f"{eco} package {raw!r} imitates {twin!r} with look-alike characters"
        for pop in popular:
            if len(pop) >= self.min_length and within_one_edit(name, pop):
                return f"{eco} package {raw!r} is one typo away from the popular {pop!r}"
        return None

    def match(self, a: Analysis) -> MatchResult | None:
        for cmd in a.parsed.commands:
            for eco, raw, name, version in installs(cmd):
                why = self._verdict(eco, raw, name, version)
                if why is not None:
                    return MatchResult(cmd.span, why)
        return None
