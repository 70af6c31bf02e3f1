"""contrib/install.sh in a scratch root: files, owners, modes, idempotence, uninstall."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
INSTALL = ROOT / "contrib" / "install.sh"

pytestmark = [
    pytest.mark.root,
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="install.sh needs root (groupadd, chown root)"),
    pytest.mark.skipif(shutil.which("groupadd") is None, reason="groupadd (passwd package) absent"),
]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the wheel once; every install below uses it (building costs ~10 s)."""
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (whl,) = out.glob("attyguard-*.whl")
    return whl


def _make_scratch(path: Path) -> Path:
    etc = path / "etc"
    etc.mkdir(parents=True)
    (etc / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/bash\n"
    )
    (etc / "group").write_text("root:x:0:\nalice:x:1000:\n")
    (etc / "gshadow").write_text("root:*::\nalice:!::\n")
    (etc / "shells").write_text("/bin/sh\n/bin/bash\n")
    return path


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    """An empty root prefix with the account files groupadd --prefix edits."""
    return _make_scratch(tmp_path / "root")


@pytest.fixture(scope="module")
def _installed_once(tmp_path_factory: pytest.TempPathFactory, wheel: Path) -> tuple[Path, str]:
    root = _make_scratch(tmp_path_factory.mktemp("installed") / "root")
    return root, ok(run(root, "--login-shell", wheel=wheel))


@pytest.fixture
def installed(_installed_once: tuple[Path, str], tmp_path: Path) -> Path:
    """A private copy of a root where install.sh --login-shell has run (one real install)."""
    copy = tmp_path / "root"
    shutil.copytree(_installed_once[0], copy, symlinks=True)
    return copy


def run(
    root: Path, *args: str, wheel: Path | None = None, **extra_env: str
) -> subprocess.CompletedProcess[str]:
    argv = ["bash", str(INSTALL), "--root", str(root), *args]
    if wheel is not None:
        argv += ["--wheel", str(wheel)]
    # --no-deps: the tests check the installer, not PyPI; attyguard's own code
    # (and its shipped model) is what must land in the venv.
    env = {**os.environ, "ATTYGUARD_PIP_ARGS": "--no-deps", "ATTYGUARD_PYTHON": sys.executable}
    env.pop("VIRTUAL_ENV", None)
    env.pop("CC", None)
    env.update(extra_env)
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300)


def ok(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, (
        f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    )
    return proc.stdout


def group_line(root: Path, name: str = "atty") -> str | None:
    for line in (root / "etc" / "group").read_text().splitlines():
        if line.split(":")[0] == name:
            return line
    return None


def snapshot(root: Path) -> dict[str, tuple[int, int, int, str]]:
    """Mode, uid, gid and content hash of everything outside the venv's internals."""
    out: dict[str, tuple[int, int, int, str]] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if rel.startswith("opt/attyguard/venv/") or rel.endswith(
            "-"
        ):  # venv files; groupadd backups
            continue
        st = path.lstat()
        digest = ""
        if stat.S_ISREG(st.st_mode):
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
        elif stat.S_ISLNK(st.st_mode):
            digest = os.readlink(path)
        out[rel] = (st.st_mode, st.st_uid, st.st_gid, digest)
    return out


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_install_files_owners_modes(_installed_once: tuple[Path, str]) -> None:
    scratch, out = _installed_once
    assert "usermod -aG atty" in out
    assert "systemd is not running here" in out  # --root never touches systemd

    line = group_line(scratch)
    assert line is not None, (scratch / "etc" / "group").read_text()
    assert int(line.split(":")[2]) < 1000, "atty must be a system group"

    # The entry point is the compiled login launcher (tests/test_launcher.py checks
    # what it does), naming the target system's paths, not the scratch root's.
    entry = scratch / "usr/local/bin/attyguard"
    assert entry.is_file() and not entry.is_symlink()
    assert (mode(entry), entry.stat().st_uid, entry.stat().st_gid) == (0o755, 0, 0)
    binary = entry.read_bytes()
    assert binary.startswith(b"\x7fELF")
    assert b"/opt/attyguard/venv/bin/python\0" in binary
    assert b"/opt/attyguard/venv/bin/attyguard\0" in binary
    assert str(scratch).encode() not in binary
    assert "login launcher" in out
    assert (scratch / "opt/attyguard/venv/bin/attyguard").is_file()
    assert mode(scratch / "opt/attyguard") == 0o755

    unit = scratch / "etc/systemd/system/attyguard.service"
    assert unit.read_bytes() == (ROOT / "contrib/attyguard.service").read_bytes()
    conf = scratch / "etc/attyguard/attyguard.toml"
    assert "[daemon]" in conf.read_text()
    assert (mode(unit), mode(conf), mode(conf.parent)) == (0o644, 0o644, 0o755)
    for path in (unit, conf, conf.parent, scratch / "opt/attyguard"):
        st = path.stat()
        assert (st.st_uid, st.st_gid) == (0, 0), path
    assert (scratch / "etc/shells").read_text().splitlines().count("/usr/local/bin/attyguard") == 1

    # The config is the daemon's own commented default (install.sh asks the
    # installed attyguard for it), byte for byte.
    want = subprocess.run(
        [sys.executable, "-m", "attyguard", "daemon", "--print-default-config"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert want.returncode == 0, want.stderr
    assert conf.read_text() == want.stdout

    # The package landed whole: code, and the Tier-2 model beside it.
    venv_py = scratch / "opt/attyguard/venv/bin/python"
    probe = subprocess.run(
        [
            str(venv_py),
            "-c",
            "from attyguard.daemon.tier2.onnx import DEFAULT_MODEL; print(DEFAULT_MODEL.is_file())",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert probe.stdout.strip() == "True", probe.stderr


def test_install_twice_is_idempotent(installed: Path, wheel: Path) -> None:
    scratch = installed
    first = snapshot(scratch)
    ok(run(scratch, "--login-shell", wheel=wheel))
    second = snapshot(scratch)
    assert first == second
    assert (
        sum(1 for ln in (scratch / "etc/group").read_text().splitlines() if ln.startswith("atty:"))
        == 1
    )


def test_existing_config_is_kept(installed: Path, wheel: Path) -> None:
    scratch = installed
    conf = scratch / "etc/attyguard/attyguard.toml"
    conf.write_text('# mine\n[daemon]\ntier2 = "onnx"\n')
    out = ok(run(scratch, wheel=wheel))
    assert "kept existing /etc/attyguard/attyguard.toml" in out
    assert conf.read_text() == '# mine\n[daemon]\ntier2 = "onnx"\n'


def test_uninstall_keeps_config_then_purge(installed: Path) -> None:
    scratch = installed
    ok(run(scratch, "--uninstall"))
    assert not (scratch / "opt/attyguard").exists()
    assert not os.path.lexists(scratch / "usr/local/bin/attyguard")
    assert not (scratch / "etc/systemd/system/attyguard.service").exists()
    assert "/usr/local/bin/attyguard" not in (scratch / "etc/shells").read_text().splitlines()
    assert (scratch / "etc/shells").read_text() == "/bin/sh\n/bin/bash\n"
    assert (scratch / "etc/attyguard/attyguard.toml").is_file()
    assert group_line(scratch) is not None
    ok(run(scratch, "--uninstall"))  # again: nothing left to do, still fine
    ok(run(scratch, "--uninstall", "--purge"))
    assert not (scratch / "etc/attyguard").exists()
    assert group_line(scratch) is None


def test_without_compiler_falls_back_to_a_symlink(installed: Path, wheel: Path) -> None:
    scratch = installed
    entry = scratch / "usr/local/bin/attyguard"
    proc = run(scratch, "--login-shell", wheel=wheel, CC="/nonexistent/cc")
    ok(proc)
    assert entry.is_symlink()
    assert os.readlink(entry) == "/opt/attyguard/venv/bin/attyguard"  # the target system's path
    warnings = [ln for ln in proc.stderr.splitlines() if "warning" in ln]
    assert len(warnings) == 1 and "no C compiler (/nonexistent/cc)" in warnings[0], proc.stderr
    assert "-l" in warnings[0]
    # With a compiler again, the symlink becomes the launcher; uninstall removes either.
    ok(run(scratch, wheel=wheel))
    assert entry.is_file() and not entry.is_symlink()
    ok(run(scratch, "--uninstall"))
    assert not os.path.lexists(entry)


def test_uninstall_keeps_a_foreign_entry_point(installed: Path) -> None:
    scratch = installed
    entry = scratch / "usr/local/bin/attyguard"
    entry.unlink()
    entry.write_text("#!/bin/sh\n# someone else's attyguard\n")
    ok(run(scratch, "--uninstall"))
    assert entry.read_text() == "#!/bin/sh\n# someone else's attyguard\n"


def test_uninstall_refuses_while_it_is_a_login_shell(installed: Path) -> None:
    scratch = installed
    passwd = scratch / "etc/passwd"
    passwd.write_text(
        passwd.read_text().replace("/home/alice:/bin/bash", "/home/alice:/usr/local/bin/attyguard")
    )
    proc = run(scratch, "--uninstall")
    assert proc.returncode == 1
    assert "alice" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert (scratch / "opt/attyguard/venv").is_dir()


@pytest.mark.parametrize(
    ("args", "status", "needle"),
    [
        (["--bogus"], 2, "unknown argument: --bogus"),
        (["--purge"], 2, "--purge only goes with --uninstall"),
        (["--wheel", "/nonexistent/attyguard.whl"], 1, "no such file"),
    ],
)
def test_bad_usage_is_one_clear_line(
    scratch: Path, args: list[str], status: int, needle: str
) -> None:
    proc = run(scratch, *args)
    assert proc.returncode == status, proc.stderr
    assert needle in proc.stderr.splitlines()[0]
    assert "Traceback" not in proc.stderr


def test_root_must_be_a_directory(tmp_path: Path) -> None:
    proc = run(tmp_path / "missing")
    assert proc.returncode == 2
    assert "not a directory" in proc.stderr


def test_fallback_config_is_valid_for_the_daemon() -> None:
    """The minimal config install.sh writes when the daemon cannot print one must load."""
    from attyguard.daemon.config import parse_daemon_config

    text = INSTALL.read_text()
    start = text.index("cat <<'EOF'\n") + len("cat <<'EOF'\n")
    fallback = text[start : text.index("\nEOF\n", start)]
    assert "[daemon]" in fallback
    config, errors = parse_daemon_config(fallback, "install.sh fallback")
    assert errors == []
    assert config.daemon.group == "atty"


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="setpriv (util-linux) absent")
def test_refuses_without_root(scratch: Path) -> None:
    # The script goes in on stdin: the checkout (or pytest's tmp dir) may be
    # unreadable to uid 65534.
    proc = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "bash", "-s"],
        input=INSTALL.read_text(),
        capture_output=True,
        text=True,
        timeout=60,
        cwd="/",
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "install.sh: must run as root (it creates a system group and writes /opt, /etc, /usr/local)"
    ]
