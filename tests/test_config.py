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
