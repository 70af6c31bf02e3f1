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
# 1.8 before the kernel layer's calls were really allowed: the deny line used to
# remove bpf, perf_event_open and fanotify_* again (they are in @privileged and
# @debug), which the score counted as hardening. Allowing them (+0.4) and
# PrivateTmp=no for the mount watcher (+0.2) give 2.2 (see the unit's comments).
MAX_EXPOSURE = 2.2
# The calls the kernel layer makes beyond plain file and socket I/O.
SENSOR_SYSCALLS = {"bpf", "perf_event_open", "fanotify_init", "fanotify_mark", "ioctl",
                   "epoll_create1", "epoll_ctl", "epoll_wait", "mmap", "kill", "poll"}


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


def _expand(name: str, seen: set[str] | None = None) -> set[str]:
    """A syscall or @group, expanded by systemd-analyze itself (groups nest)."""
    if not name.startswith("@"):
        return {name}
    seen = set() if seen is None else seen
    if name in seen:
        return set()
    seen.add(name)
    proc = subprocess.run([str(ANALYZE), "syscall-filter", name], capture_output=True,
                          text=True, timeout=60, check=True)
    out: set[str] = set()
    for line in proc.stdout.splitlines()[1:]:
        item = line.strip()
        if item and not item.startswith("#"):
            out |= _expand(item, seen)
    return out


@needs_analyze
def test_the_syscall_filter_lets_the_kernel_layer_work() -> None:
    """SystemCallFilter= lines apply in turn: what the sensors need must survive them all."""
    lines = [ln.split("=", 1)[1] for ln in UNIT.read_text().splitlines()
             if ln.startswith("SystemCallFilter=")]
    assert lines and not lines[0].startswith("~")  # an allow list
    allowed: set[str] = set()
    for line in lines:
        deny = line.startswith("~")
        names: set[str] = set()
        for word in line.lstrip("~").split():
            names |= _expand(word)
        if deny:
            allowed -= names
        else:
            allowed |= names
    missing = SENSOR_SYSCALLS - allowed
    assert not missing, f"the unit's SystemCallFilter= denies {sorted(missing)}"
    assert "mount" not in allowed and "reboot" not in allowed and "init_module" not in allowed


def test_unit_has_a_watchdog_and_what_the_kernel_layer_needs() -> None:
    unit = _unit()
    svc = unit["Service"]
    assert svc["Type"] == "notify" and svc["NotifyAccess"] == "main"
    seconds = float(svc["WatchdogSec"].rstrip("s"))
    assert 0 < seconds <= 10  # every exec on a marked filesystem waits at most this long
    assert svc["WatchdogSignal"] == "SIGKILL"  # a SIGSTOPped daemon acts on nothing else
    assert "sys-kernel-tracing.mount" in unit["Unit"]["Wants"]
    assert "sys-kernel-tracing.mount" in unit["Unit"]["After"]
    assert svc["PrivateTmp"] == "no"
    assert "AF_NETLINK" in svc["RestrictAddressFamilies"]
