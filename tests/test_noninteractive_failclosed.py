"""`attyguard -c CMD` fails closed when the classifier cannot be imported or loaded:
one line on stderr, exit 126, nothing run, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from attyguard.engine import classify as classify_module
from attyguard.engine.rules import RuleError
from attyguard.shell.args import parse_args
from attyguard.shell.noninteractive import run_noninteractive


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home),
            "ATTYGUARD_HOME": str(tmp_path / "aghome"), "LANG": "C.UTF-8", **extra}


def test_engine_that_cannot_import_refuses(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "attyguard"
    if not script.exists():
        pytest.skip(f"attyguard console script not installed in this venv ({script})")
    # A broken install: a dependency of the rule loader that fails to import.
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "yaml.py").write_text("raise ImportError('simulated broken install')\n")
    marker = tmp_path / "ran"
    p = subprocess.run([str(script), "-c", f"touch {marker}"], capture_output=True,
                       env=_env(tmp_path, PYTHONPATH=str(broken)), cwd=tmp_path,
                       stdin=subprocess.DEVNULL, timeout=60, check=False)
    stderr = p.stderr.decode()
    assert p.returncode == 126, stderr
    assert not marker.exists()
    assert stderr.count("\n") == 1 and "Traceback" not in stderr, stderr
    assert "classifier unavailable" in stderr and "simulated broken install" in stderr, stderr


def test_rules_that_cannot_load_refuse(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    def broken_rules(*_args: object, **_kwargs: object) -> None:
        raise RuleError("patterns/demo.yaml:3", "invalid YAML: simulated")

    ran: list[list[str]] = []
    monkeypatch.setattr(os, "execvpe", lambda _file, argv, _env: ran.append(argv))
    for key, value in _env(tmp_path).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(classify_module, "load_rules", broken_rules)
    classify_module.reset_default_engine()
    try:
        status = run_noninteractive(parse_args(["-c", "true"]), ["-c", "true"])
    finally:
        classify_module.reset_default_engine()
    err = capsys.readouterr().err
    assert status == 126, err
    assert ran == []
    assert err.count("\n") == 1 and "patterns/demo.yaml:3" in err, err
