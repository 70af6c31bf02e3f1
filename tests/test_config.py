from __future__ import annotations

from pathlib import Path

import pytest

from attyguard.config import DEFAULT_CONFIG_TEXT, Config, load_config, parse_config


def test_default_text_is_the_defaults() -> None:
    config, errors = parse_config(DEFAULT_CONFIG_TEXT)
    assert errors == []
    assert config == Config()


def test_readme_documents_the_default_config() -> None:
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    body = DEFAULT_CONFIG_TEXT.split("\n\n", 1)[1]
    assert body.strip() in readme


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("[ui]\nstatus_bar = 3\n", 2, "ui.status_bar must be bool"),
        ("[ui]\n\nnope = 1\n", 3, "unknown key ui.nope"),
        ("[bogus]\n", 1, "unknown section [bogus]"),
        ("[ui\n", 1, "not valid TOML"),
        ('[shell]\nnoninteractive_warn = "maybe"\n', 2, "must be one of run, refuse"),
    ],
)
def test_errors_are_located_and_not_fatal(text: str, line: int, fragment: str) -> None:
    config, errors = parse_config(text, "c.toml")
    assert len(errors) == 1
    assert errors[0].line == line
    assert fragment in str(errors[0])
    assert str(errors[0]).startswith(f"c.toml:{line}: ")
    assert isinstance(config, Config)


def test_valid_values_apply() -> None:
    text = '[ui]\nrefused_style = "bold magenta"\n[guard]\ndaemon_timeout_ms = 5\n'
    config, errors = parse_config(text)
    assert errors == []
    assert config.ui.refused_style == "bold magenta"
    assert config.guard.daemon_timeout_ms == 5


def test_missing_file_is_defaults(tmp_path: Path) -> None:
    assert load_config(tmp_path / "none.toml") == (Config(), [])


def test_invalid_utf8_is_located(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_bytes(b"[ui]\nrefused_style = \"\xff\"\n")
    config, errors = load_config(path)
    assert config == Config()
    assert errors[0].line == 2


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('[ui]\nrefused_style = "bold notacolor"\n', "ui.refused_style: not a style"),
        ('[ui]\nwarn_style = "bold on nocolour"\n', "ui.warn_style: not a style"),
        ("[guard]\ndaemon_timeout_ms = 600000\n", "must be at most 10000"),
        ("[shell]\nhistory_size = 99999999999\n", "must be at most"),
        ('[guard]\ndaemon_socket_path = "relative.sock"\n', "must be an absolute path"),
        ('[ui]\nwarn_style = "bold\\u001b[31m"\n', "must not contain control characters"),
    ],
)
def test_bad_values_are_located_and_the_default_kept(text: str, fragment: str) -> None:
    config, errors = parse_config(text, "c.toml")
    assert [str(e) for e in errors] and fragment in str(errors[0]), errors
    assert str(errors[0]).startswith("c.toml:2: ")
    assert "using " in str(errors[0])
    assert config == Config()


def test_every_style_the_config_accepts_draws() -> None:
    # What load accepts must be what prompt_toolkit can draw (the shell died
    # on the first REFUSED line with a style it could not parse).
    from prompt_toolkit.styles import Style

    from attyguard.config import pt_style

    config, errors = parse_config('[ui]\nrefused_style = "italic ansired on white"\n')
    assert errors == []
    Style([("x", pt_style(config.ui.refused_style))])


def test_fifo_is_not_read(tmp_path: Path) -> None:
    import os

    path = tmp_path / "c.toml"
    os.mkfifo(path)
    config, errors = load_config(path)  # returns at once: no writer is waited for
    assert config == Config()
    assert "not a regular file" in str(errors[0])


def test_device_is_not_read(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.symlink_to("/dev/zero")
    config, errors = load_config(path)
    assert config == Config()
    assert "not a regular file" in str(errors[0])


def test_huge_file_is_not_read(tmp_path: Path) -> None:
    from attyguard.config import MAX_CONFIG_BYTES

    path = tmp_path / "c.toml"
    with path.open("wb") as f:
        f.truncate(MAX_CONFIG_BYTES + 1)
    config, errors = load_config(path)
    assert config == Config()
    assert "larger than" in str(errors[0])


def test_dev_null_is_an_empty_config() -> None:
    assert load_config(Path("/dev/null")) == (Config(), [])
