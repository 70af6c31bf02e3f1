"""The daemon's TOML configuration: defaults, strict validation, located errors.

Unlike the per-user shell config (which must never stop a login shell), the
daemon's config is checked strictly: any unknown key, wrong type or value out
of range is an error located as file:line. At start-up errors stop the daemon
(an administrator's typo must not silently disable auto-block); on a SIGHUP
reload they keep the old configuration running and are logged.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from attyguard.config import ConfigError, parse_toml, read_config_text, toml_line_of
from attyguard.daemon.accumulator import AccumulatorConfig

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "DEFAULT_DAEMON_CONFIG_TEXT",
    "DEFAULT_SOCKET",
    "DaemonConfig",
    "DaemonSection",
    "PolicySection",
    "load_daemon_config",
    "parse_daemon_config",
]

DEFAULT_CONFIG_PATH = "/etc/attyguard/attyguard.toml"
DEFAULT_SOCKET = "/run/attyguard/attyguard.sock"
DEFAULT_POLICY_PATH = "/etc/attyguard/policy.yaml"
POLICY_KERNEL = ("auto", "off")

MODES = ("enforce", "warn")
TIER2_NAMES = ("stub", "heuristic", "onnx")
EBPF_MODES = ("off", "warn", "enforce")
EXEC_SCOPES = ("sessions", "group", "all")


@dataclass(frozen=True, slots=True)
class DaemonSection:
    socket: str = DEFAULT_SOCKET
    group: str = "atty"
    mode: str = "enforce"
    tier2: str = "stub"
    tier2_model: str = ""
    max_request_bytes: int = 65536
    idle_timeout_s: float = 60.0
    max_connections: int = 256
    max_subscribers: int = 32
    max_tracked_pids: int = 65536
    prune_interval_s: float = 2.0
    # The kernel layer (issue 10): opt-in until measured.
    ebpf_mode: str = "off"
    exec_scope: str = "sessions"
    exec_group: str = ""
    exec_deadline_ms: int = 200
    exec_trust_window_s: float = 600.0
    exec_events_kept: int = 1000
    exec_rung: str = ""
    audit_log: str = ""
    audit_log_max_bytes: int = 10 << 20
    audit_log_keep: int = 5


@dataclass(frozen=True, slots=True)
class PolicySection:
    """SEC-002, the per-process runtime policy (attyguard/policy/)."""

    file: str = DEFAULT_POLICY_PATH  # missing at this default path: no policy
    kernel: str = "auto"  # "off": force the audit-only fallback
    sample_interval_s: float = 0.25
    violations_kept: int = 1000
    file_deadline_ms: int = 200  # the file gate's answer to a watched process's open
    launches_per_user: int = 256  # live `policy run` processes of one non-root user


@dataclass(frozen=True, slots=True)
class EventsSection:
    """Fleet events: every record as one OCSF event to syslog or journald."""

    sink: str = ""
    syslog_address: str = "unix:/dev/log"
    facility: str = "authpriv"
    queue: int = 10000


@dataclass(frozen=True, slots=True)
class WindowSection:
    """The sliding window over each session's recent commands (seed V2-H)."""

    enabled: bool = True
    commands: int = 50
    minutes: float = 30.0


@dataclass(frozen=True, slots=True)
class DaemonConfig:
    daemon: DaemonSection = field(default_factory=DaemonSection)
    accumulator: AccumulatorConfig = field(default_factory=AccumulatorConfig)
    policy: PolicySection = field(default_factory=PolicySection)
    events: EventsSection = field(default_factory=EventsSection)
    window: WindowSection = field(default_factory=WindowSection)


_CHOICES: dict[tuple[str, str], tuple[str, ...]] = {
    ("daemon", "mode"): MODES,
    ("daemon", "tier2"): TIER2_NAMES,
    ("daemon", "ebpf_mode"): EBPF_MODES,
    ("daemon", "exec_scope"): EXEC_SCOPES,
    ("daemon", "exec_rung"): ("", "lsm", "fanotify", "signal", "audit"),
    ("policy", "kernel"): POLICY_KERNEL,
    ("events", "sink"): ("", "syslog", "journald"),
    ("events", "facility"): ("kern", "user", "daemon", "auth", "syslog", "authpriv",
                             *(f"local{n}" for n in range(8))),
}

# (section, key) -> (lowest, highest) allowed, inclusive.
_RANGES: dict[tuple[str, str], tuple[float, float]] = {
    ("daemon", "max_request_bytes"): (256, 64 << 20),
    ("daemon", "idle_timeout_s"): (0.1, 86400.0),
    ("daemon", "max_connections"): (4, 100000),
    ("daemon", "max_subscribers"): (1, 10000),
    ("daemon", "max_tracked_pids"): (16, 10_000_000),
    ("daemon", "prune_interval_s"): (0.05, 3600.0),
    ("daemon", "exec_deadline_ms"): (10, 10000),
    ("daemon", "exec_trust_window_s"): (1.0, 86400.0),
    ("daemon", "exec_events_kept"): (10, 1_000_000),
    ("policy", "sample_interval_s"): (0.02, 60.0),
    ("policy", "violations_kept"): (10, 1_000_000),
    ("policy", "file_deadline_ms"): (10, 10000),
    ("policy", "launches_per_user"): (1, 65536),
    ("daemon", "audit_log_max_bytes"): (4096, 1 << 40),
    ("daemon", "audit_log_keep"): (0, 1000),
    ("events", "queue"): (1, 1_000_000),
    ("window", "commands"): (2, 10_000),
    ("window", "minutes"): (0.1, 7 * 24 * 60.0),
}
_PROBABILITY_KEYS = ("block_threshold", "warn_threshold", "level_low", "level_medium",
                     "level_high", "level_critical", "prior_low", "prior_medium", "prior_high")

DEFAULT_DAEMON_CONFIG_TEXT = """\
# attyguard daemon configuration (TOML). Every key is optional; shown are the
# defaults. Checked strictly: an unknown key or a bad value is an error with
# its file:line. `systemctl reload attyguard` (SIGHUP) re-reads this file; a
# bad file is reported and the running configuration is kept.

[daemon]
# Unix socket the shells connect to (changing it needs a restart).
socket = "/run/attyguard/attyguard.sock"
# Group allowed to connect (the socket is created 0660 with this group when
# it exists). root and the daemon's own user may always connect.
group = "atty"
# "enforce": Block verdicts refuse the line. "warn": they are answered as
# warn and published as events to subscribers (the shell's ⚠ N counter).
mode = "enforce"
# Tier-2 scorer: "stub" (scores 0), "heuristic", or "onnx" (a small model).
tier2 = "stub"
# Model file for tier2 = "onnx"; empty means the model shipped with attyguard.
tier2_model = ""
# Longest request line accepted; a longer one gets an error reply.
max_request_bytes = 65536
# A connection that sends nothing for this long is closed (subscribers excepted).
idle_timeout_s = 60.0
# Open connections at most; when full, the longest-idle one is closed.
max_connections = 256
# Warn-event subscribers at most.
max_subscribers = 32
# Marked processes remembered at most (least serious, oldest forgotten first).
max_tracked_pids = 65536
# How often exited processes are dropped from the threat map.
prune_interval_s = 2.0
# The kernel layer (exec sensors, `attyguard daemon --probe`): "off" (the
# default until its cost is measured on your machines), "warn" (would-be
# denials become events for the owning shell's ⚠ N) or "enforce" (denied with
# EPERM, or killed on the signal rung). Needs root.
ebpf_mode = "off"
# Which execs are judged: "sessions" (descendants of registered attyguard
# shells), "group" (every process of the users in exec_group) or "all".
exec_scope = "sessions"
exec_group = ""
# A permission event is answered within this many milliseconds (allowed when late).
exec_deadline_ms = 200
# A line the user trusted lets its execs run until the shell's next line, at most this long.
exec_trust_window_s = 600.0
# Recent exec decisions kept for `attyguard events`.
exec_events_kept = 1000
# Force a rung of the ladder ("lsm", "fanotify", "signal", "audit"); empty: the
# strongest one the probe finds usable here.
exec_rung = ""
# Tamper-evident audit log: every decision as a JSON line in a SHA-256 hash
# chain (`attyguard audit verify` checks it). Empty: no audit log. The file is
# root-owned, mode 0600; secrets in command lines are redacted.
audit_log = ""
# Rotate the audit log at this size, keeping this many older files.
audit_log_max_bytes = 10485760
audit_log_keep = 5

[accumulator]
# P = 1 - prod(1 - p_i) over the Tier-1 rules' probabilities, the Tier-2 score
# and the process tree's prior below.
# Opt-in auto-Block: block a line when P >= block_threshold even though no
# Tier-1 rule blocks it. Off by default.
auto_block = false
block_threshold = 0.95
# An allowed line is raised to warn when P >= warn_threshold.
warn_threshold = 0.5
# P -> threat level: the lowest P of each level.
level_low = 0.2
level_medium = 0.5
level_high = 0.8
level_critical = 0.95
# What a process tree's current level adds to its next line.
prior_low = 0.05
prior_medium = 0.15
prior_high = 0.35
# Raise the asking process's level to the level of P (at most high; critical
# only comes from a block).
raise_pid_level = true

[policy]
# SEC-002 per-process runtime policy (YAML; `attyguard policy check FILE`).
# At this default path a missing file means no policy; any other path must
# exist. `attyguard daemon --policy FILE` overrides it. SIGHUP re-reads it and
# keeps the running policy when the new one has errors.
file = "/etc/attyguard/policy.yaml"
# "auto": the strongest backend that works here; "off": the audit-only
# fallback (proc connector + psutil: exec, memory, CPU; no files, syscalls,
# network), mode forced to audit.
kernel = "auto"
# How often watched processes' memory and CPU are sampled.
sample_interval_s = 0.25
# Violations kept in memory for `attyguard policy violations`.
violations_kept = 1000
# In enforce, how long a watched process's open may wait for the file gate's
# answer; past it the open is allowed and judged afterwards (`alerted`).
file_deadline_ms = 200
# Live `attyguard policy run` processes one user other than root may have (each
# holds a seccomp listener, a descriptor, in the daemon).
launches_per_user = 256

[events]
# Fleet events: every verdict, kernel decision and policy violation as one OCSF
# 1.3 JSON event (docs/ocsf.md). "" (off), "syslog" (RFC 5424) or "journald".
sink = ""
# For sink = "syslog": udp://HOST:PORT, tcp://HOST:PORT (octet-counted frames)
# or unix:/PATH (a datagram socket such as /dev/log).
syslog_address = "unix:/dev/log"
facility = "authpriv"
# Events waiting to be sent at most; beyond it they are dropped and counted
# (the audit log keeps every record).
queue = 10000

[window]
# Sequences over each session's recent commands (patterns/sequences/): a line
# that completes one (download → chmod +x → run; history off → network; …) gets
# the sequence's hit, which raises the session's threat level.
enabled = true
# The window: at most this many commands of at most this many minutes.
commands = 50
minutes = 30.0
"""


def _check_value(section: str, key: str, value: Any, default: Any) -> str | None:
    """None if `value` may replace `default`, else the message."""
    name = f"{section}.{key}"
    if isinstance(default, bool):
        if not isinstance(value, bool):
            return f"{name} must be true or false, got {type(value).__name__}"
        return None
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"{name} must be a number, got {type(value).__name__}"
    elif type(value) is not type(default):
        return f"{name} must be {type(default).__name__}, got {type(value).__name__}"
    choices = _CHOICES.get((section, key))
    if choices and value not in choices:
        return f"{name} must be one of {', '.join(choices)}, got {value!r}"
    bounds = _RANGES.get((section, key))
    if bounds is None and section == "accumulator" and key in _PROBABILITY_KEYS:
        bounds = (0.0, 1.0)
    if bounds is not None and not bounds[0] <= value <= bounds[1]:
        return f"{name} must be between {bounds[0]:g} and {bounds[1]:g}, got {value!r}"
    return None


def parse_daemon_config(
    text: str, path: str = "<config>"
) -> tuple[DaemonConfig, list[ConfigError]]:
    """Parse and validate; with any error the returned config is the defaults."""
    data, error = parse_toml(text, path)
    if data is None:
        assert error is not None
        return DaemonConfig(), [error]
    errors: list[ConfigError] = []
    config = DaemonConfig()
    sections = {f.name for f in fields(DaemonConfig)}
    for section, table in data.items():
        if section not in sections:
            errors.append(ConfigError(path, toml_line_of(text, section, None),
                                      f"unknown section [{section}]"))
            continue
        if not isinstance(table, dict):
            errors.append(ConfigError(path, None, f"{section} must be a table"))
            continue
        current = getattr(config, section)
        known = {f.name for f in fields(current)}
        updates: dict[str, Any] = {}
        for key, value in table.items():
            line = toml_line_of(text, section, key)
            if key not in known:
                errors.append(ConfigError(path, line, f"unknown key {section}.{key}"))
                continue
            default = getattr(current, key)
            problem = _check_value(section, key, value, default)
            if problem:
                errors.append(ConfigError(path, line, problem))
                continue
            updates[key] = float(value) if isinstance(default, float) else value
        config = replace(config, **{section: replace(current, **updates)})

    acc = config.accumulator
    if not acc.level_low <= acc.level_medium <= acc.level_high <= acc.level_critical:
        errors.append(ConfigError(path, toml_line_of(text, "accumulator", "level_low")
                                  or toml_line_of(text, "accumulator", None),
                                  "accumulator levels must rise: level_low <= level_medium "
                                  "<= level_high <= level_critical"))
    if config.daemon.max_subscribers >= config.daemon.max_connections:
        errors.append(ConfigError(path, toml_line_of(text, "daemon", "max_subscribers"),
                                  "daemon.max_subscribers must be below max_connections "
                                  "(room must remain for shells asking for verdicts)"))
    if config.daemon.exec_scope == "group" and not config.daemon.exec_group:
        errors.append(ConfigError(path, toml_line_of(text, "daemon", "exec_scope"),
                                  'daemon.exec_scope = "group" needs daemon.exec_group'))
    if config.events.sink == "syslog":
        from attyguard.fleet.sink import SinkError, parse_address

        try:
            parse_address(config.events.syslog_address)
        except SinkError as exc:
            errors.append(ConfigError(path, toml_line_of(text, "events", "syslog_address"),
                                      f"events.syslog_address: {exc}"))
    if errors:
        return DaemonConfig(), errors
    return config, []


def load_daemon_config(path: Path, *, missing_ok: bool) -> tuple[DaemonConfig, list[ConfigError]]:
    """Read `path`; a missing file is the defaults when `missing_ok` (the default path)."""
    try:
        text = read_config_text(path)
    except FileNotFoundError:
        if missing_ok:
            return DaemonConfig(), []
        return DaemonConfig(), [ConfigError(str(path), None, "no such file")]
    if isinstance(text, ConfigError):
        return DaemonConfig(), [text]
    return parse_daemon_config(text, str(path))
