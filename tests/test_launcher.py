"""contrib/login-launcher.c via contrib/build-launcher.sh: login flag, pass-through, errors.

The launcher is what /etc/passwd names as the shell: login(1) and sshd start it
with argv[0] = "-attyguard", and it must turn that into an explicit `-l` for
the real (#! script) entry point, changing nothing else. Most tests build it
against a fake venv whose bin/attyguard reports what it was given, so they
check the launcher alone, not the shell behind it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "contrib" / "build-launcher.sh"
CC = os.environ.get("CC", "cc")

pytestmark = pytest.mark.skipif(
    shutil.which(CC) is None, reason=f"no C compiler ({CC}); contrib/dev.sh installs gcc"
)

# Stands in for pip's console script: reports argv, pid and one env variable,
# then exits with the status it is asked for.
PROBE = """\
import json, os, sys
json.dump({"argv": sys.argv, "pid": os.getpid(), "env": os.environ.get("PROBE_ENV")}, sys.stdout)
sys.exit(int(os.environ.get("PROBE_EXIT", "0")))
"""


def build(out: Path, venv: Path, as_dir: Path | None = None) -> subprocess.CompletedProcess[str]:
    argv = ["bash", str(BUILD), str(out), str(venv)]
    if as_dir is not None:
        argv.append(str(as_dir))
    return subprocess.run(argv, capture_output=True, text=True, timeout=120)


def make_fake_venv(path: Path) -> Path:
    (path / "bin").mkdir(parents=True)
    (path / "bin" / "python").symlink_to(os.path.realpath(sys.executable))
    (path / "bin" / "attyguard").write_text(PROBE)
    return path


@pytest.fixture(scope="module")
def fake_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_fake_venv(tmp_path_factory.mktemp("fake") / "venv")


@pytest.fixture(scope="module")
def launcher(tmp_path_factory: pytest.TempPathFactory, fake_venv: Path) -> Path:
    out = tmp_path_factory.mktemp("launcher") / "attyguard"
    proc = build(out, fake_venv)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out


def start(
    launcher: Path, argv0: str, *args: str, **env: str
) -> tuple[subprocess.CompletedProcess[str], dict[str, object]]:
    """Run the launcher with argv[0] = argv0 (as login/sshd do) and decode the probe's report."""
    proc = subprocess.run(
        [argv0, *args],
        executable=str(launcher),
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=60,
    )
    report = json.loads(proc.stdout) if proc.stdout else {}
    return proc, report


@pytest.mark.parametrize("argv0", ["-attyguard", "-", "-/usr/local/bin/attyguard"])
def test_dash_argv0_adds_login_flag_first(launcher: Path, fake_venv: Path, argv0: str) -> None:
    proc, report = start(launcher, argv0, "-c", "true")
    assert proc.returncode == 0, proc.stderr
    assert report["argv"] == [str(fake_venv / "bin" / "attyguard"), "-l", "-c", "true"]


@pytest.mark.parametrize("argv0", ["attyguard", "/usr/local/bin/attyguard", "", "x-attyguard"])
def test_other_argv0_adds_nothing(launcher: Path, fake_venv: Path, argv0: str) -> None:
    proc, report = start(launcher, argv0, "-c", "true")
    assert proc.returncode == 0, proc.stderr
    assert report["argv"] == [str(fake_venv / "bin" / "attyguard"), "-c", "true"]


@pytest.mark.parametrize("argv0", ["-attyguard", "attyguard"])
def test_arguments_pass_through_unchanged(launcher: Path, argv0: str) -> None:
    args = ["-c", "echo 'a  b'\nexit 3", "", " ", "-l", "--", "ünï\tcode", "*", "$HOME"]
    proc, report = start(launcher, argv0, *args)
    assert proc.returncode == 0, proc.stderr
    argv = report["argv"]
    assert isinstance(argv, list)
    assert argv[1:] == (["-l"] if argv0.startswith("-") else []) + args


@pytest.mark.parametrize("status", [0, 1, 3, 126, 255])
def test_exit_status_and_environment_pass_through(launcher: Path, status: int) -> None:
    proc, report = start(launcher, "-attyguard", PROBE_EXIT=str(status), PROBE_ENV="kept value")
    assert proc.returncode == status, proc.stderr
    assert report["env"] == "kept value"


def test_it_execs_in_place(launcher: Path) -> None:
    """No wrapper process: signals and the terminal's job control reach attyguard itself."""
    child = subprocess.Popen(
        ["-attyguard"], executable=str(launcher), stdout=subprocess.PIPE, text=True
    )
    out, _ = child.communicate(timeout=60)
    assert child.returncode == 0
    assert json.loads(out)["pid"] == child.pid


def test_missing_interpreter_is_127_with_one_line(tmp_path: Path) -> None:
    venv = tmp_path / "gone"
    venv.mkdir()
    out = tmp_path / "attyguard"
    assert build(out, venv).returncode == 0
    proc = subprocess.run(
        ["-attyguard"], executable=str(out), capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 127
    assert proc.stderr.splitlines() == [
        f"attyguard: cannot run {venv}/bin/python: No such file or directory"
    ]


def test_unrunnable_interpreter_is_126(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").write_text("not a program\n")  # mode 0644: not executable
    out = tmp_path / "attyguard"
    assert build(out, venv).returncode == 0
    proc = subprocess.run(
        ["attyguard"], executable=str(out), capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 126
    assert proc.stderr.startswith(f"attyguard: cannot run {venv}/bin/python: "), proc.stderr


def test_as_dir_bakes_the_final_path_not_the_staging_one(tmp_path: Path, fake_venv: Path) -> None:
    """install.sh --root builds against DIR/opt/… but the binary must name /opt/…."""
    staging = tmp_path / "staging" / "venv"
    staging.mkdir(parents=True)
    out = tmp_path / "attyguard"
    proc = build(out, staging, fake_venv)
    assert proc.returncode == 0, proc.stderr
    assert str(staging).encode() not in out.read_bytes()
    run, report = start(out, "-attyguard")
    assert run.returncode == 0, run.stderr
    assert report["argv"] == [str(fake_venv / "bin" / "attyguard"), "-l"]


def test_rebuild_is_byte_identical(tmp_path: Path, fake_venv: Path) -> None:
    """install.sh re-runs must leave the installed file unchanged."""
    a, b = tmp_path / "a", tmp_path / "b"
    assert build(a, fake_venv).returncode == 0
    assert build(b, fake_venv).returncode == 0
    assert a.read_bytes() == b.read_bytes()
    assert a.stat().st_mode & 0o777 == 0o755


@pytest.mark.parametrize(
    ("args", "status", "needle"),
    [
        ([], 2, "usage:"),
        (["{out}", "{tmp}/missing"], 1, "not a directory"),
        (["{out}", "{tmp}", "relative/venv"], 2, "must be an absolute path"),
        (["{out}", "{tmp}", '/opt/a"b'], 1, "not supported"),
    ],
)
def test_build_bad_usage_is_one_clear_line(
    tmp_path: Path, args: list[str], status: int, needle: str
) -> None:
    argv = [a.format(out=tmp_path / "out", tmp=tmp_path) for a in args]
    proc = subprocess.run(["bash", str(BUILD), *argv], capture_output=True, text=True, timeout=60)
    assert proc.returncode == status, proc.stderr
    assert len(proc.stderr.splitlines()) == 1 and needle in proc.stderr, proc.stderr
    assert not (tmp_path / "out").exists()


def test_build_without_compiler_says_so(tmp_path: Path) -> None:
    proc = subprocess.run(
        ["bash", str(BUILD), str(tmp_path / "out"), str(tmp_path)],
        capture_output=True,
        text=True,
        env={**os.environ, "CC": "/nonexistent/cc"},
        timeout=60,
    )
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == ["build-launcher: no C compiler (/nonexistent/cc)"]
    assert list(tmp_path.iterdir()) == []


def test_real_entry_point_through_the_launcher(tmp_path: Path) -> None:
    """Against this test run's own venv: the launcher reaches the real console script."""
    venv = Path(sys.executable).parent.parent
    if not (venv / "bin" / "attyguard").is_file():
        pytest.skip(f"{venv} has no bin/attyguard (tests not run from an installed venv)")
    out = tmp_path / "attyguard"
    proc = build(out, venv)
    assert proc.returncode == 0, proc.stderr
    run = subprocess.run(
        ["attyguard", "--version"], executable=str(out), capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("attyguard "), run.stdout
