"""contrib/attyguard.service (systemd-analyze verify, exposure <= 2.0); scripts' shellcheck."""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parents[1] / "contrib" / "attyguard.service"
ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(
    ANALYZE is None,
    reason="systemd-analyze absent (Debian package `systemd`; contrib/dev.sh installs it)",
)
MAX_EXPOSURE = 2.0


def _unit() -> configparser.ConfigParser:
    # strict=False: systemd allows repeated keys (SystemCallFilter= twice).
    cp = configparser.ConfigParser(strict=False, interpolation=None)
    cp.optionxform = str  # type: ignore[assignment,method-assign]
    cp.read_string(UNIT.read_text())
    return cp


@needs_analyze
def test_verify_is_clean(tmp_path: Path) -> None:
    # `verify` insists that ExecStart's binary exists, and /usr/local/bin/attyguard
    # exists only once install.sh has run. So verify a scratch copy whose ExecStart
    # names a binary that surely exists, keeping every other line as shipped.
    text = UNIT.read_text()
    assert text.count("ExecStart=/usr/local/bin/attyguard ") == 1
    copy = tmp_path / "attyguard.service"
    copy.write_text(text.replace("ExecStart=/usr/local/bin/attyguard ", "ExecStart=/bin/true "))
    proc = subprocess.run(
        [str(ANALYZE), "verify", str(copy)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0 and not proc.stderr.strip(), proc.stdout + proc.stderr


@needs_analyze
def test_security_exposure_is_low() -> None:
    proc = subprocess.run(
        [str(ANALYZE), "security", "--offline=true", "--no-pager", str(UNIT)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = proc.stdout + proc.stderr
    m = re.search(r"Overall exposure level for attyguard\.service:\s*([0-9.]+)", out)
    assert m, out
    assert float(m.group(1)) <= MAX_EXPOSURE, out


def test_unit_keeps_what_the_daemon_and_sensors_need() -> None:
    svc = _unit()["Service"]
    assert svc["Type"] == "notify"
    assert svc["RuntimeDirectory"] == "attyguard"
    assert "-HUP" in svc["ExecReload"] and "$MAINPID" in svc["ExecReload"]
    assert svc["Group"] == "atty"
    caps = set(svc["CapabilityBoundingSet"].split())
    assert {"CAP_BPF", "CAP_PERFMON", "CAP_SYS_ADMIN"} <= caps
    assert svc["ExecStart"].startswith("/usr/local/bin/attyguard daemon ")
    assert svc["NoNewPrivileges"] == "yes"
    assert _unit()["Install"]["WantedBy"] == "multi-user.target"


@pytest.mark.skipif(
    shutil.which("shellcheck") is None, reason="shellcheck absent (contrib/dev.sh installs it)"
)
@pytest.mark.parametrize("name", ["install.sh", "build-launcher.sh"])
def test_install_script_passes_shellcheck(name: str) -> None:
    script = UNIT.parent / name
    proc = subprocess.run(
        ["shellcheck", "--severity=style", str(script)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
