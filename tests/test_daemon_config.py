"""The daemon's TOML config: the documented defaults, strict checks with file:line."""

from __future__ import annotations

from pathlib import Path

import pytest

from attyguard.daemon.config import (
    DEFAULT_DAEMON_CONFIG_TEXT,
    DaemonConfig,
    load_daemon_config,
    parse_daemon_config,
)


def test_default_text_is_exactly_the_defaults() -> None:
    config, errors = parse_daemon_config(DEFAULT_DAEMON_CONFIG_TEXT)
    assert errors == []
    assert config == DaemonConfig()
    assert config.accumulator.auto_block is False
    assert config.accumulator.block_threshold == 0.95


def test_values_are_read() -> None:
    config, errors = parse_daemon_config(
        "[daemon]\nmode = \"warn\"\nidle_timeout_s = 5\n"
        "[accumulator]\nauto_block = true\nblock_threshold = 0.9\n")
    assert errors == []
    assert config.daemon.mode == "warn" and config.daemon.idle_timeout_s == 5.0
    assert config.accumulator.auto_block and config.accumulator.block_threshold == 0.9


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("[daemon]\nmode = \"loud\"\n", 2, "mode must be one of enforce, warn"),
        ("[daemon]\n\nsocket = 5\n", 3, "daemon.socket must be str"),
        ("[accumulator]\nblock_threshold = 1.5\n", 2, "between 0 and 1"),
        ("[accumulator]\nauto_block = \"yes\"\n", 2, "true or false"),
        ("[accumulator]\nauto_blok = true\n", 2, "unknown key accumulator.auto_blok"),
        ("\n[deamon]\n", 2, "unknown section [deamon]"),
        ("[daemon]\nmode = \n", 2, "not valid TOML"),
        ("[daemon]\nmax_connections = 2\n", 2, "between 4 and"),
        ("[accumulator]\nlevel_low = 0.9\n", 2, "levels must rise"),
    ],
)
def test_errors_are_located(text: str, line: int, message: str) -> None:
    config, errors = parse_daemon_config(text, "/etc/attyguard/attyguard.toml")
    assert config == DaemonConfig()  # any error: nothing half-applied
    assert errors, text
    assert errors[0].line == line
    assert message in errors[0].message
    assert str(errors[0]).startswith(f"/etc/attyguard/attyguard.toml:{line}: ")


def test_missing_default_file_is_defaults_but_missing_explicit_file_is_an_error(
        tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    assert load_daemon_config(missing, missing_ok=True) == (DaemonConfig(), [])
    _, errors = load_daemon_config(missing, missing_ok=False)
    assert errors and "no such file" in str(errors[0])


def test_non_utf8_is_located(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_bytes(b"[daemon]\nmode = \"\xff\"\n")
    _, errors = load_daemon_config(path, missing_ok=False)
    assert errors and errors[0].line == 2


# --- the exec guard's keys (issue 10)

@pytest.mark.parametrize(("text", "line", "message"), [
    ('[daemon]\nebpf_mode = "on"\n', 2, "daemon.ebpf_mode must be one of off, warn, enforce"),
    ('[daemon]\nexec_scope = "everyone"\n', 2, "daemon.exec_scope must be one of"),
    ('[daemon]\nexec_scope = "group"\n', 2, "needs daemon.exec_group"),
    ('[daemon]\nexec_deadline_ms = 1\n', 2, "between 10 and 10000"),
    ('[daemon]\nexec_rung = "bpf"\n', 2, "daemon.exec_rung must be one of"),
])
def test_exec_guard_keys_are_checked(text: str, line: int, message: str) -> None:
    from attyguard.daemon.config import parse_daemon_config

    _config, errors = parse_daemon_config(text, "x.toml")
    assert len(errors) == 1 and str(errors[0]).startswith(f"x.toml:{line}:"), errors
    assert message in str(errors[0])


def test_exec_guard_is_off_by_default() -> None:
    from attyguard.daemon.config import DEFAULT_DAEMON_CONFIG_TEXT, parse_daemon_config

    config, errors = parse_daemon_config(DEFAULT_DAEMON_CONFIG_TEXT)
    assert errors == [] and config.daemon.ebpf_mode == "off"
    assert config.daemon.exec_scope == "sessions"
