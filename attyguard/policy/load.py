"""Reading a policy file: YAML with line marks → `Policy`, every error located.

The YAML is composed (not constructed) with PyYAML's safe loader so each node
keeps its line; we then walk the nodes ourselves. That gives `file:line:
message` for unknown keys, wrong types, duplicate keys (which PyYAML would
silently resolve to the last), unknown syscall names, bad globs, bad
network rules, bad sink names and a missing `match.exe`, and collects every
error in one pass rather than stopping at the first.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from wcmatch import glob as wcglob

from attyguard.policy.model import Glob, Mode, NetRule, Policy, ProcessPolicy
from attyguard.policy.syscalls import SyscallTable, load_syscall_table

__all__ = [
    "DEFAULT_POLICY_PATH",
    "MAX_POLICY_BYTES",
    "PolicyError",
    "PolicyLoadError",
    "compile_glob",
    "load_policy",
    "parse_net_rule",
    "parse_policy",
    "parse_sink",
]

DEFAULT_POLICY_PATH = "/etc/attyguard/policy.yaml"
MAX_POLICY_BYTES = 1 << 20
# GLOBSTAR: `**` crosses directories; DOTGLOB: `*` matches dot files too (a
# policy about /home/*/.ssh must not need a second pattern); no BRACE/EXTGLOB:
# fewer surprises in security data, and `{`/`!(` stay literal.
_GLOB_FLAGS = wcglob.GLOBSTAR | wcglob.DOTGLOB
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_PROCESS_KEYS = ("description", "match", "allowed_exec", "blocked_syscalls", "allowed_files",
                 "blocked_files", "allowed_network", "blocked_network", "max_memory_mb",
                 "max_cpu_percent")
SINK_WORDS = ("log", "syslog", "journald", "shell")
SINK_PREFIXES = ("jsonl:", "webhook:")


@dataclass(frozen=True, slots=True)
class PolicyError:
    path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}" if self.line else \
            f"{self.path}: {self.message}"


class PolicyLoadError(Exception):
    """The policy cannot be used; `errors` are all the located problems found."""

    def __init__(self, errors: list[PolicyError]) -> None:
        super().__init__("; ".join(str(e) for e in errors))
        self.errors = errors


# --------------------------------------------------------------------------- pieces


def _brackets_closed(pattern: str) -> bool:
    """True if every `[` opens a class that closes (`[]x]`, `[!]x]` count `]` as a member).

    wcmatch, like fnmatch, reads an unclosed `[` as a literal; in a policy that
    is almost certainly a typo that would leave the rule silently dead.
    """
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "[":
            j = i + 1
            if j < len(pattern) and pattern[j] in "!^":
                j += 1
            if j < len(pattern) and pattern[j] == "]":
                j += 1
            while j < len(pattern) and pattern[j] != "]":
                j += 1
            if j >= len(pattern):
                return False
            i = j
        i += 1
    return True


def compile_glob(pattern: str, source: str = "", *, allow_basename: bool = False) -> Glob:
    """A validated, compiled glob; raises ValueError with the reason."""
    if not pattern:
        raise ValueError("empty glob")
    if "\0" in pattern:
        raise ValueError("glob contains a NUL byte")
    basename = allow_basename and "/" not in pattern
    if not basename:
        if not pattern.startswith("/"):
            raise ValueError(f"glob {pattern!r} must be an absolute path"
                             + (" or a bare program name" if allow_basename else ""))
        segments = pattern.split("/")[1:]
        if any(s in (".", "..") for s in segments) or "//" in pattern or \
                (pattern.endswith("/") and pattern != "/"):
            raise ValueError(f"glob {pattern!r} is not a normalised path (no '.', '..', '//' "
                             "or trailing '/'): paths are matched after normalisation")
        for segment in segments:
            if "**" in segment and segment != "**":
                raise ValueError(f"glob {pattern!r}: '**' must be a whole path segment")
    if not _brackets_closed(pattern):
        raise ValueError(f"glob {pattern!r} has an unclosed '['")
    try:
        include, _exclude = wcglob.translate(pattern, flags=_GLOB_FLAGS)
        regex = re.compile(include[0])
    except (re.error, ValueError, IndexError) as exc:
        raise ValueError(f"glob {pattern!r}: {exc}") from None
    return Glob(pattern, regex, source, basename)


def _parse_ports(text: str, rule: str) -> tuple[tuple[int, int], ...]:
    ranges = []
    for part in text.split(","):
        lo_text, sep, hi_text = part.partition("-")
        try:
            lo = int(lo_text)
            hi = int(hi_text) if sep else lo
        except ValueError:
            raise ValueError(f"network rule {rule!r}: bad port {part!r}") from None
        if not (0 < lo <= hi <= 65535):
            raise ValueError(f"network rule {rule!r}: port {part!r} out of range 1-65535")
        ranges.append((lo, hi))
    return tuple(ranges)


def parse_net_rule(text: str, source: str = "") -> NetRule:
    """`10.0.0.0/8`, `10.0.0.0/8:443`, `[2001:db8::/32]:80-90`, `*:53`, `*`, `::1`."""
    rule = text.strip()
    if not rule:
        raise ValueError("empty network rule")
    ports: tuple[tuple[int, int], ...] = ()
    if rule.startswith("["):
        end = rule.find("]")
        if end < 0:
            raise ValueError(f"network rule {text!r}: unclosed '['")
        address, rest = rule[1:end], rule[end + 1:]
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"network rule {text!r}: expected ':PORTS' after ']'")
            ports = _parse_ports(rest[1:], text)
    elif rule.count(":") == 1 or rule.startswith("*:"):
        address, _, port_text = rule.partition(":")
        ports = _parse_ports(port_text, text)
    else:
        address = rule  # a bare IPv6 network/address, an IPv4 one, or '*'
    if address in ("*", "any"):
        return NetRule(text, None, ports, source)
    try:
        network = ipaddress.ip_network(address, strict=True)
    except ValueError as exc:
        raise ValueError(f"network rule {text!r}: {exc}") from None
    return NetRule(text, network, ports, source)


def parse_sink(text: str) -> str:
    """A validated sink name (see docs/policy.md); raises ValueError."""
    if text in SINK_WORDS:
        return text
    if text.startswith("jsonl:"):
        path = text[len("jsonl:"):]
        if not path.startswith("/"):
            raise ValueError(f"sink {text!r}: jsonl: needs an absolute file path")
        return text
    if text.startswith("webhook:"):
        url = text[len("webhook:"):]
        if not re.match(r"^https?://[^\s/]+(/\S*)?$", url):
            raise ValueError(f"sink {text!r}: webhook: needs an http:// or https:// URL")
        return text
    raise ValueError(f"unknown sink {text!r} (one of {', '.join(SINK_WORDS)}, "
                     "jsonl:/PATH, webhook:URL)")


# --------------------------------------------------------------------------- the walk


class _Walker:
    def __init__(self, path: str, table: SyscallTable) -> None:
        self.path = path
        self.table = table
        self.errors: list[PolicyError] = []

    def err(self, node: yaml.Node | None, message: str) -> None:
        line = node.start_mark.line + 1 if node is not None else None
        self.errors.append(PolicyError(self.path, line, message))

    def src(self, node: yaml.Node) -> str:
        return f"{self.path}:{node.start_mark.line + 1}"

    def mapping(self, node: yaml.Node, what: str, known: tuple[str, ...]
                ) -> dict[str, tuple[yaml.Node, yaml.Node]] | None:
        if not isinstance(node, yaml.MappingNode):
            self.err(node, f"{what} must be a mapping")
            return None
        out: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key, value in node.value:
            if not isinstance(key, yaml.ScalarNode) or not isinstance(key.value, str):
                self.err(key, f"{what}: keys must be strings")
                continue
            if key.value in out:
                self.err(key, f"{what}: duplicate key {key.value!r}")
                continue
            if known and key.value not in known:
                self.err(key, f"{what}: unknown key {key.value!r} (known: {', '.join(known)})")
                continue
            out[key.value] = (key, value)
        return out

    def scalar(self, node: yaml.Node, what: str) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            self.err(node, f"{what} must be a single value")
            return None
        tag = node.tag.rsplit(":", 1)[-1]
        try:
            if tag == "str":
                return node.value
            if tag == "int":
                return int(node.value.replace("_", ""), 0)
            if tag == "float":
                return float(node.value)
            if tag == "bool":
                return node.value.lower() in ("true", "yes", "on")
            if tag == "null":
                return None
        except ValueError:
            pass
        self.err(node, f"{what}: unsupported value {node.value!r}")
        return None

    def string(self, node: yaml.Node, what: str, *, allow_number: bool = False) -> str | None:
        value = self.scalar(node, what)
        if isinstance(value, str) or (allow_number and isinstance(value, (int, float))
                                      and not isinstance(value, bool)):
            return str(value) if not isinstance(value, str) else value
        if value is not None or isinstance(node, yaml.ScalarNode):
            self.err(node, f"{what} must be a string")
        return None

    def int_in(self, node: yaml.Node, what: str, lo: int, hi: int) -> int | None:
        value = self.scalar(node, what)
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(node, yaml.ScalarNode):
                self.err(node, f"{what} must be a whole number")
            return None
        if not lo <= value <= hi:
            self.err(node, f"{what} must be between {lo} and {hi}, got {value}")
            return None
        return value

    def string_list(self, node: yaml.Node, what: str) -> list[tuple[yaml.Node, str]] | None:
        if isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null"):
            return []
        if not isinstance(node, yaml.SequenceNode):
            self.err(node, f"{what} must be a list")
            return None
        out = []
        for item in node.value:
            text = self.string(item, f"{what} item", allow_number=True)
            if text is not None:
                out.append((item, text))
        return out

    def globs(self, node: yaml.Node, what: str, *, basename: bool = False
              ) -> tuple[Glob, ...] | None:
        items = self.string_list(node, what)
        if items is None:
            return None
        out = []
        for item, text in items:
            try:
                out.append(compile_glob(text, self.src(item), allow_basename=basename))
            except ValueError as exc:
                self.err(item, f"{what}: {exc}")
        return tuple(out)

    def nets(self, node: yaml.Node, what: str) -> tuple[NetRule, ...] | None:
        items = self.string_list(node, what)
        if items is None:
            return None
        out = []
        for item, text in items:
            try:
                out.append(parse_net_rule(text, self.src(item)))
            except ValueError as exc:
                self.err(item, f"{what}: {exc}")
        return tuple(out)

    def syscalls(self, node: yaml.Node, what: str) -> tuple[str, ...]:
        items = self.string_list(node, what) or []
        out: list[str] = []
        for item, text in items:
            name = text.strip().lower()
            if not self.table.numbers:
                self.err(item, f"{what}: cannot check {text!r}: {self.table.note}")
            elif name not in self.table.numbers:
                self.err(item, f"{what}: unknown syscall {text!r} (not in {self.table.source})")
            elif name in out:
                self.err(item, f"{what}: {name!r} listed twice")
            else:
                out.append(name)
        return tuple(out)

    def process(self, name: str, key: yaml.Node, node: yaml.Node) -> ProcessPolicy | None:
        what = f"processes.{name}"
        fields = self.mapping(node, what, _PROCESS_KEYS)
        if fields is None:
            return None
        before = len(self.errors)
        exe: Glob | None = None
        sha256: str | None = None
        match = fields.get("match")
        if match is None:
            self.err(key, f"{what}: missing 'match' (match: {{exe: /path/to/program}})")
        else:
            m = self.mapping(match[1], f"{what}.match", ("exe", "sha256"))
            if m is not None:
                if "exe" not in m:
                    self.err(match[0], f"{what}.match: missing 'exe' (the program's path)")
                else:
                    text = self.string(m["exe"][1], f"{what}.match.exe")
                    if text is not None:
                        try:
                            exe = compile_glob(text, self.src(m["exe"][1]))
                        except ValueError as exc:
                            self.err(m["exe"][1], f"{what}.match.exe: {exc}")
                if "sha256" in m:
                    digest = self.string(m["sha256"][1], f"{what}.match.sha256")
                    if digest is not None:
                        if not _SHA256.match(digest.lower()):
                            self.err(m["sha256"][1],
                                     f"{what}.match.sha256 must be 64 hexadecimal digits")
                        else:
                            sha256 = digest.lower()
        kwargs: dict[str, Any] = {}
        if "description" in fields:
            kwargs["description"] = self.string(fields["description"][1],
                                                f"{what}.description") or ""
        if "allowed_exec" in fields:
            kwargs["allowed_exec"] = self.globs(fields["allowed_exec"][1],
                                                f"{what}.allowed_exec", basename=True)
        if "blocked_syscalls" in fields:
            kwargs["blocked_syscalls"] = self.syscalls(fields["blocked_syscalls"][1],
                                                       f"{what}.blocked_syscalls")
        for key_name in ("allowed_files", "blocked_files"):
            if key_name in fields:
                kwargs[key_name] = self.globs(fields[key_name][1], f"{what}.{key_name}")
        for key_name in ("allowed_network", "blocked_network"):
            if key_name in fields:
                kwargs[key_name] = self.nets(fields[key_name][1], f"{what}.{key_name}")
        if "max_memory_mb" in fields:
            kwargs["max_memory_mb"] = self.int_in(fields["max_memory_mb"][1],
                                                  f"{what}.max_memory_mb", 0, 1 << 24)
        if "max_cpu_percent" in fields:
            kwargs["max_cpu_percent"] = self.int_in(fields["max_cpu_percent"][1],
                                                    f"{what}.max_cpu_percent", 0, 100 * 4096)
        if len(self.errors) > before or exe is None:
            return None
        for key_name in ("blocked_files", "blocked_network"):
            if kwargs.get(key_name) is None:
                kwargs.pop(key_name, None)
        for key_name in ("max_memory_mb", "max_cpu_percent"):
            if kwargs.get(key_name) is None:
                kwargs.pop(key_name, None)
        return ProcessPolicy(name=name, exe=exe, source=self.src(key), sha256=sha256, **kwargs)

    def sinks(self, node: yaml.Node, what: str) -> tuple[str, ...]:
        out: list[str] = []
        for item, text in self.string_list(node, what) or []:
            try:
                sink = parse_sink(text)
            except ValueError as exc:
                self.err(item, f"{what}: {exc}")
                continue
            if sink not in out:
                out.append(sink)
        return tuple(out)

    def policy(self, root: yaml.Node | None) -> Policy | None:
        if root is None:
            self.errors.append(PolicyError(self.path, None, "empty policy file"))
            return None
        top = self.mapping(root, "policy", ("version", "mode", "processes", "alerts"))
        if top is None:
            return None
        version = "1.0"
        if "version" in top:
            version = self.string(top["version"][1], "version", allow_number=True) or version
        mode = Mode.AUDIT
        if "mode" in top:
            text = self.string(top["mode"][1], "mode")
            if text is not None:
                try:
                    mode = Mode(text)
                except ValueError:
                    self.err(top["mode"][1],
                             f"mode must be audit, alert or enforce, got {text!r}")
        processes: list[ProcessPolicy] = []
        if "processes" not in top:
            self.err(root, "no 'processes': a policy must name at least one process")
        else:
            procs = self.mapping(top["processes"][1], "processes", ())
            if procs is not None:
                if not procs:
                    self.err(top["processes"][1], "processes is empty")
                for name, (key, value) in procs.items():
                    entry = self.process(name, key, value)
                    if entry is not None:
                        processes.append(entry)
        on_violation: tuple[str, ...] = ()
        on_critical: tuple[str, ...] = ()
        if "alerts" in top:
            alerts = self.mapping(top["alerts"][1], "alerts", ("on_violation", "on_critical"))
            if alerts is not None:
                if "on_violation" in alerts:
                    on_violation = self.sinks(alerts["on_violation"][1], "alerts.on_violation")
                if "on_critical" in alerts:
                    on_critical = self.sinks(alerts["on_critical"][1], "alerts.on_critical")
        if self.errors:
            return None
        return Policy(version, mode, tuple(processes), on_violation, on_critical, self.path)


def parse_policy(text: str, path: str = "<policy>", table: SyscallTable | None = None) -> Policy:
    """Parse and validate; raises PolicyLoadError with every located error."""
    walker = _Walker(path, table if table is not None else load_syscall_table())
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        raise PolicyLoadError([PolicyError(path, line, f"YAML: {exc.problem or exc}")]) from None
    except yaml.YAMLError as exc:
        raise PolicyLoadError([PolicyError(path, None, f"YAML: {exc}")]) from None
    policy = walker.policy(root)
    if policy is None:
        raise PolicyLoadError(walker.errors)
    return policy


def load_policy(path: str | Path, table: SyscallTable | None = None) -> Policy:
    """Read and parse `path`; raises PolicyLoadError (unreadable, too big, not UTF-8, invalid)."""
    name = str(path)
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_POLICY_BYTES + 1)
    except OSError as exc:
        raise PolicyLoadError([PolicyError(name, None, exc.strerror or str(exc))]) from None
    if len(data) > MAX_POLICY_BYTES:
        raise PolicyLoadError([PolicyError(name, None,
                                           f"larger than {MAX_POLICY_BYTES} bytes")])
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise PolicyLoadError([PolicyError(name, line, "not valid UTF-8")]) from None
    return parse_policy(text, name, table)
