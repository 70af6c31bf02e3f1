"""The per-user TOML configuration: defaults, loading, located errors.

A broken config never stops the shell: `load_config` returns the defaults for
whatever it could not use, plus a list of `ConfigError`s, each located as
file:line, that the caller shows once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

__all__ = ["DEFAULT_CONFIG_TEXT", "MAX_CONFIG_BYTES", "Config", "ConfigError", "load_config",
           "parse_config", "pt_style", "style_error"]


@dataclass(frozen=True, slots=True)
class ConfigError:
    """A located config problem: `file:line: message` (the default is used)."""

    path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.message}"


@dataclass(frozen=True, slots=True)
class UiConfig:
    """`[ui]`: what the prompt shows and how REFUSED/warn lines look."""

    status_bar: bool = True
    refused_style: str = "bold red"
    warn_style: str = "bold yellow"
    shell_integration_marks: bool = True  # OSC 133 / OSC 7 to the outer terminal


@dataclass(frozen=True, slots=True)
class ShellConfig:
    """`[shell]`: history, non-interactive warn handling, rc-file judging."""

    history_size: int = 50000
    # Non-interactive (-c, scripts, piped stdin): what a warn verdict does.
    # "run": run it with one line on stderr; "refuse": exit 126 like a block.
    noninteractive_warn: str = "run"
    # Judge the rc files bash reads at start-up (~/.bashrc, profiles); a file
    # holding a line that would be refused is reported and not sourced.
    judge_rc_files: bool = True


@dataclass(frozen=True, slots=True)
class GuardConfig:
    """`[guard]`: the daemon to ask, how long to wait for it, who may answer."""

    daemon_socket_path: str = ""  # empty: no daemon, in-process verdicts only
    daemon_timeout_ms: int = 50
    # Who may answer on daemon_socket_path besides root (SO_PEERCRED): a user name.
    daemon_user: str = ""


@dataclass(frozen=True, slots=True)
class TerminalConfig:
    """`[terminal]`: escape sequences of programs' output to strip."""

    # What programs' output may do to the terminal (attyguard/shell/oscfilter.py).
    strip_clipboard: bool = False  # OSC 52: clipboard writes
    strip_palette: bool = False  # OSC 4/104, 10-19/110-119: palette and default colours
    strip_shell_marks: bool = False  # OSC 133 of other programs (attyguard's own stay)


@dataclass(frozen=True, slots=True)
class Config:
    """The whole config file, every value validated at load."""

    ui: UiConfig = field(default_factory=UiConfig)
    shell: ShellConfig = field(default_factory=ShellConfig)
    guard: GuardConfig = field(default_factory=GuardConfig)
    terminal: TerminalConfig = field(default_factory=TerminalConfig)


_CHOICES: dict[tuple[str, str], tuple[str, ...]] = {
    ("shell", "noninteractive_warn"): ("run", "refuse"),
}

# Upper bounds: a value past them is a typo, not a wish (a 10-minute daemon
# deadline would freeze every line; 10^12 history entries fill the disk).
_MAXIMUM: dict[tuple[str, str], int] = {
    ("shell", "history_size"): 10_000_000,
    ("guard", "daemon_timeout_ms"): 10_000,
}

_STYLES = frozenset({("ui", "refused_style"), ("ui", "warn_style")})

# A config file is a few hundred bytes; more is not a config (a device, a
# mistake) and must not be read into memory.
MAX_CONFIG_BYTES = 1 << 20


def pt_style(style: str) -> str:
    """A rich-like style ("bold red on white") as a prompt_toolkit style string."""
    words = style.split()
    out: list[str] = []
    i = 0
    while i < len(words):
        if words[i] == "on" and i + 1 < len(words):
            out.append(f"bg:{words[i + 1]}")
            i += 2
            continue
        out.append(words[i])
        i += 1
    return " ".join(out)


def style_error(style: str) -> str | None:
    """Why prompt_toolkit would refuse `style` when it draws it; None if it is fine.

    prompt_toolkit parses a style only when it first draws it: a bad one
    raised at the first REFUSED line and ended the shell. Its own parser
    decides here, at load. Imported only for a style the user set (the
    defaults are known good), so `attyguard -c` without one pays nothing.
    """
    from prompt_toolkit.styles import Style

    try:
        Style([("x", pt_style(style))])
    except (ValueError, AssertionError, KeyError, TypeError) as exc:
        return str(exc) or type(exc).__name__
    return None

DEFAULT_CONFIG_TEXT = """\
# attyguard configuration (TOML). Every key is optional; shown are the defaults.
# Location: $ATTYGUARD_HOME/config/config.toml, else the platform config dir
# (~/.config/attyguard/config.toml on Linux).

[ui]
# Bottom status bar with the warning counter and the daemon state.
status_bar = true
# prompt_toolkit style of the one-shot "REFUSED — <reason>" line.
refused_style = "bold red"
# Style of the "[y]es / [t]rust / cancel" question.
warn_style = "bold yellow"
# Emit OSC 133 (prompt/command/finished) and OSC 7 (cwd) marks to the terminal.
shell_integration_marks = true

[shell]
# Lines kept in attyguard's history file.
history_size = 50000
# What a warn verdict does where nobody can answer (-c, scripts, piped stdin):
# "run" runs it with one line on stderr; "refuse" exits 126 like a block.
noninteractive_warn = "run"
# Judge the rc files bash reads at start-up (~/.bashrc, ~/.profile…): a file with
# a line that would be refused is reported (file:line) and not sourced.
judge_rc_files = true

[guard]
# Unix socket of the attyguard daemon; empty means in-process verdicts only.
daemon_socket_path = ""
# How long to wait for the daemon before using the in-process verdict.
daemon_timeout_ms = 50
# The daemon's socket must be served by root or this user (checked with
# SO_PEERCRED), in a directory only they can write; otherwise it is not used.
daemon_user = ""

[terminal]
# Remove these escape sequences from programs' output before it reaches the
# terminal (README: "What reaches your terminal"). Clipboard writes (OSC 52):
strip_clipboard = false
# Palette and default-colour changes (OSC 4/104, 10-19/110-119):
strip_palette = false
# Other programs' shell-integration marks (OSC 133); attyguard's own are kept:
strip_shell_marks = false
"""


def toml_line_of(text: str, section: str, key: str | None) -> int | None:
    """Best-effort line of `key` in `[section]` (or of the header); tomllib gives none."""
    in_section = False
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if line.startswith("["):
            in_section = line.strip("[] ") == section
            if key is None and in_section:
                return number
            continue
        if in_section and key is not None and re.match(rf"{re.escape(key)}\s*=", line):
            return number
    return None


def parse_toml(text: str, path: str) -> tuple[dict[str, Any] | None, ConfigError | None]:
    """tomllib, with its error turned into a located ConfigError."""
    # Imported here, not at module level: most users have no config file, and
    # tomllib's import is a visible part of every `attyguard -c` start-up (ssh,
    # scp, git, editors; figure: bench/README.md, "Figures behind design choices").
    import tomllib

    try:
        return tomllib.loads(text), None
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"line (\d+)", str(exc))
        line = int(match.group(1)) if match else None
        message = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
        return None, ConfigError(path, line, f"not valid TOML: {message}")


def read_config_text(path: Path) -> str | ConfigError:
    """The file's text, or a located error; FileNotFoundError is the caller's to judge."""
    import os
    import stat

    try:
        # O_NONBLOCK: opening a FIFO for reading must not wait for a writer.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise
    except OSError as exc:
        return ConfigError(str(path), None, f"cannot read: {exc.strerror}")
    try:
        info = os.fstat(fd)
        # A character device is read with the same limit (`--config /dev/null`
        # is an empty config); a FIFO, socket or directory is not read at all.
        device = stat.S_ISCHR(info.st_mode)
        if not stat.S_ISREG(info.st_mode) and not device:
            return ConfigError(str(path), None, "cannot read: not a regular file")
        if info.st_size > MAX_CONFIG_BYTES:
            return ConfigError(str(path), None,
                               f"cannot read: larger than {MAX_CONFIG_BYTES} bytes")
        with os.fdopen(os.dup(fd), "rb") as f:
            raw = f.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        return ConfigError(str(path), None, f"cannot read: {exc.strerror}")
    finally:
        os.close(fd)
    if len(raw) > MAX_CONFIG_BYTES:  # (a device that never ends, or grew while we read it)
        what = "not a regular file, and" if device else "grew to"
        return ConfigError(str(path), None,
                           f"cannot read: {what} larger than {MAX_CONFIG_BYTES} bytes")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return ConfigError(str(path), raw[: exc.start].count(b"\n") + 1, "not valid UTF-8")


def _using_defaults(error: ConfigError) -> ConfigError:
    return replace(error, message=f"{error.message}; using defaults")


def parse_config(text: str, path: str = "<config>") -> tuple[Config, list[ConfigError]]:
    errors: list[ConfigError] = []
    data, error = parse_toml(text, path)
    if data is None:
        assert error is not None
        return Config(), [_using_defaults(error)]

    config = Config()
    sections = {f.name: f for f in fields(Config)}
    for section_name, section_value in data.items():
        if section_name not in sections:
            errors.append(
                ConfigError(path, toml_line_of(text, section_name, None),
                            f"unknown section [{section_name}] ignored")
            )
            continue
        if not isinstance(section_value, dict):
            errors.append(ConfigError(path, None, f"{section_name} must be a table"))
            continue
        current = getattr(config, section_name)
        updates: dict[str, Any] = {}
        known = {f.name: f for f in fields(current)}
        for key, value in section_value.items():
            line = toml_line_of(text, section_name, key)
            if key not in known:
                errors.append(ConfigError(path, line, f"unknown key {section_name}.{key} ignored"))
                continue
            default = getattr(current, key)
            if type(value) is not type(default):
                errors.append(
                    ConfigError(path, line,
                                f"{section_name}.{key} must be {type(default).__name__}, "
                                f"got {type(value).__name__}; using {default!r}")
                )
                continue
            choices = _CHOICES.get((section_name, key))
            if choices and value not in choices:
                errors.append(
                    ConfigError(path, line,
                                f"{section_name}.{key} must be one of {', '.join(choices)}; "
                                f"using {default!r}")
                )
                continue
            if isinstance(value, int) and not isinstance(value, bool) and value < 0:
                errors.append(ConfigError(path, line, f"{section_name}.{key} must be >= 0; "
                                          f"using {default!r}"))
                continue
            problem = _value_problem(section_name, key, value)
            if problem is not None:
                errors.append(ConfigError(path, line, f"{section_name}.{key}: {problem}; "
                                          f"using {default!r}"))
                continue
            updates[key] = value
        config = replace(config, **{section_name: replace(current, **updates)})
    return config, errors


def _value_problem(section: str, key: str, value: object) -> str | None:
    """What is wrong with a value of the right type, or None."""
    maximum = _MAXIMUM.get((section, key))
    if maximum is not None and isinstance(value, int) and value > maximum:
        return f"must be at most {maximum}"
    if isinstance(value, str):
        if any(ord(c) < 32 or ord(c) == 127 for c in value):
            return "must not contain control characters"
        if (section, key) in _STYLES:
            why = style_error(value)
            if why is not None:
                return f"not a style ({why})"
        if (section, key) == ("guard", "daemon_socket_path") and value \
                and not value.startswith("/"):
            return "must be an absolute path"
    return None


def load_config(path: Path | None = None) -> tuple[Config, list[ConfigError]]:
    """Read the config file; a missing file is the defaults, silently."""
    if path is None:
        from attyguard.paths import config_file

        path = config_file()
    try:
        text = read_config_text(path)
    except FileNotFoundError:
        return Config(), []
    if isinstance(text, ConfigError):
        return Config(), [_using_defaults(text)]
    return parse_config(text, str(path))
