"""Fixtures and helpers for the login-shell reality tests: a real user, `su`, a real sshd, tmux.

Everything here is real, nothing is mocked: a throw-away Unix account whose
/etc/passwd shell is the shell under test (plain bash as the control, then
attyguard as an installation has it: contrib/login-launcher.c in front of this
tree's attyguard — run, when the test venv's interpreter is out of other
accounts' reach as pyenv's under /root is, by a same-version system interpreter
that sees the same packages), a private OpenSSH server on a free
loopback port with its own config and host key, and a private tmux server for
the interactive cases. Each fixture undoes what it did (account, /etc/shells
line, sshd, tmux server, the account's leftover processes — found by the
account's uid, which nothing else uses, and ended by pid).

These tests need root (useradd, su, sshd); they skip with the reason when not
root or when a tool is missing — CI runs as root with every tool installed by
contrib/dev.sh.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import json
import os
import pwd
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest

__all__ = [
    "LOGIN_SHELLS",
    "PROFILE_MARK",
    "PROMPT",
    "EngineSaid",
    "LoginUser",
    "Sshd",
    "Tmux",
    "engine_verdict",
    "login_shell",
    "login_user",
    "sshd",
    "tmux",
    "wait_until",
]

# A prompt no program prints by accident, set in the test user's ~/.bashrc, so
# waiting for "the prompt" is waiting for one exact string (bash and attyguard
# both show the user's PS1).
PROMPT = "agtest-ready$ "
# Exported by the test user's ~/.profile: only a login shell reads that file.
PROFILE_MARK = "profile-was-read"

_ETC_SHELLS = Path("/etc/shells")
# Serialises our edits of /etc/shells with other test runs on this machine
# (several worktrees may run their suites at once).
_ETC_SHELLS_LOCK = Path("/run/lock/attyguard-tests-etc-shells.lock")

# Printed by the tmux wrapper after the program under test ends, then its status.
EXIT_TAG = "agtest-exited:"

SSHD = Path("/usr/sbin/sshd")
SFTP_SERVER = Path("/usr/lib/openssh/sftp-server")


def wait_until(
    predicate: Callable[[], bool],
    what: str,
    timeout: float = 15.0,
    explain: Callable[[], str] | None = None,
) -> None:
    """Poll `predicate` until true; on timeout fail saying what and showing `explain()`."""
    deadline = time.monotonic() + timeout
    delay = 0.005
    while True:
        if predicate():
            return
        if time.monotonic() > deadline:
            detail = explain() if explain else ""
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}\n{detail}")
        time.sleep(delay)  # polling interval of a condition wait, not a synchronisation sleep
        delay = min(delay * 2, 0.05)


def _need_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("login-shell tests need root (useradd, su, sshd); CI runs as root")


def _need_tool(path: str | Path, why: str) -> str:
    found = shutil.which(str(path))
    if found is None:
        pytest.skip(f"{path} is not installed ({why}); contrib/dev.sh installs it")
    return found


# --------------------------------------------------------------------------- the shell


def _attyguard_path() -> Path:
    return Path(sys.executable).parent / "attyguard"


def _reachable_by_others(path: Path) -> bool:
    """Whether an account other than root can execute `path` (every parent searchable)."""
    real = Path(os.path.realpath(path))
    if not real.exists() or not real.stat().st_mode & 0o001:
        return False
    return all(parent.stat().st_mode & 0o001 for parent in real.parents)


# The launcher /etc/passwd names (a #! script would lose argv[0]'s login mark).
_BUILD_LAUNCHER = Path(__file__).resolve().parents[3] / "contrib" / "build-launcher.sh"

_SHIM_PTH = "import site; site.addsitedir({site_dir!r})\n"
_SHIM_SCRIPT = """#!{python}
# attyguard login tests: this tree's attyguard, run by an interpreter that other
# accounts can reach (the test venv's lives under /root, as pyenv's does).
import sys

from attyguard.cli import main

sys.exit(main())
"""


def _shim_venv(venv: Path) -> Path:
    """A venv of a same-version system interpreter that sees the test venv's packages.

    The test venv's interpreter is out of other accounts' reach; this one runs the
    same attyguard code (the editable install) and the same libraries.
    """
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    pythons = [Path(d) / version for d in ("/usr/bin", "/usr/local/bin", "/bin")]
    python = next((p for p in pythons if _reachable_by_others(p)), None)
    if python is None:
        pytest.skip(
            f"{sys.executable} cannot be run by other accounts and no {version} that "
            "they can run was found"
        )
    site_dirs = [p for p in sys.path if p.endswith("site-packages") and Path(p).is_dir()]
    if not site_dirs or not _reachable_by_others(Path(site_dirs[0])):
        pytest.skip("the test venv's site-packages cannot be read by other accounts")
    made = subprocess.run(
        [str(python), "-m", "venv", "--without-pip", str(venv)], capture_output=True, text=True
    )
    if made.returncode != 0:
        pytest.skip(f"cannot make a venv with {python}: {made.stderr.strip()[-200:]}")
    (venv / "lib" / version / "site-packages" / "_agtest_shim.pth").write_text(
        _SHIM_PTH.format(site_dir=site_dirs[0])
    )
    script = venv / "bin" / "attyguard"
    script.write_text(_SHIM_SCRIPT.format(python=venv / "bin" / "python"))
    script.chmod(0o755)
    return venv


def _venv_for_other_accounts(workdir: Path) -> Path:
    """The test venv if the test account can run its interpreter, else a shim of it."""
    if _reachable_by_others(Path(sys.executable)):
        return Path(sys.executable).parent.parent
    return _shim_venv(workdir / "venv")


def _login_launcher(workdir: Path) -> Path:
    """contrib/login-launcher.c built for a venv that the test account can run."""
    if not _BUILD_LAUNCHER.exists():
        pytest.skip(f"{_BUILD_LAUNCHER} is not in this tree")
    _need_tool(os.environ.get("CC", "cc"), "builds contrib/login-launcher.c")
    venv = _venv_for_other_accounts(workdir)
    launcher = workdir / "attyguard"
    built = subprocess.run(
        ["bash", str(_BUILD_LAUNCHER), str(launcher), str(venv)], capture_output=True, text=True
    )
    if built.returncode != 0:
        pytest.fail(f"contrib/build-launcher.sh failed: {built.stderr.strip()}")
    return launcher


# bash: the control — the same test passing with bash and failing with attyguard
#   points at attyguard, not at the harness.
# attyguard-launcher: what contrib/install.sh puts in /etc/passwd, the compiled
#   login launcher in front of the console script.
# attyguard-script: what `chsh -s $(which attyguard)` after a pip install gives,
#   the #! console script itself (argv[0]'s "-" is lost: the shell must infer a
#   login from its context).
LOGIN_SHELLS = ["bash", "attyguard-launcher", "attyguard-script"]


@pytest.fixture(scope="session", params=LOGIN_SHELLS)
def login_shell(request: pytest.FixtureRequest) -> Iterator[Path]:
    """The absolute path of the login shell under test (named attyguard for attyguard).

    attyguard runs this tree's code, by an interpreter the test account can reach.
    """
    _need_root()
    if request.param == "bash":
        yield Path("/bin/bash")
        return
    if not _attyguard_path().exists():
        pytest.skip(f"{_attyguard_path()} is not installed: run the tests from the venv")
    if importlib.util.find_spec("attyguard.shell.main") is None:
        pytest.skip("the guarded shell (attyguard.shell.main) is not in this tree yet")
    workdir = Path(tempfile.mkdtemp(prefix="agtest-shell-"))
    workdir.chmod(0o755)
    try:
        if request.param == "attyguard-launcher":
            yield _login_launcher(workdir)
        else:
            yield _venv_for_other_accounts(workdir) / "bin" / "attyguard"
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@dataclass(frozen=True)
class EngineSaid:
    action: str  # "allow" | "warn" | "block", or "" when attyguard check gave no verdict
    text: str  # one line: exit status and the last line printed


def engine_verdict(line: str) -> EngineSaid:
    """What `attyguard check --json -- LINE` says about `line`."""
    path = _attyguard_path()
    if not path.exists():
        return EngineSaid("", f"{path} is not installed")
    done = subprocess.run(
        [str(path), "check", "--json", "--", line],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=30,
    )
    output = (done.stdout + done.stderr).strip().splitlines()
    said = f"exit {done.returncode}: {output[-1][:200] if output else 'no output'}"
    try:
        verdict = json.loads(done.stdout)
    except ValueError:
        return EngineSaid("", said)
    action = verdict.get("action") if isinstance(verdict, dict) else None
    return EngineSaid(
        action if isinstance(action, str) else "", f"exit {done.returncode}: {action}"
    )


@contextlib.contextmanager
def _etc_shells_lock() -> Iterator[None]:
    _ETC_SHELLS_LOCK.parent.mkdir(parents=True, exist_ok=True)
    with _ETC_SHELLS_LOCK.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _etc_shells_lines() -> list[str]:
    return _ETC_SHELLS.read_text().splitlines() if _ETC_SHELLS.exists() else []


def _write_etc_shells(lines: list[str]) -> None:
    # Replace atomically so a concurrent reader (login, su, chsh) never sees half a file.
    tmp = _ETC_SHELLS.with_name(f".shells.{os.getpid()}")
    tmp.write_text("".join(line + "\n" for line in lines))
    tmp.chmod(0o644)
    tmp.replace(_ETC_SHELLS)


@contextlib.contextmanager
def listed_in_etc_shells(shell: Path) -> Iterator[None]:
    """List `shell` in /etc/shells for the duration (a login shell must be listed)."""
    with _etc_shells_lock():
        added = str(shell) not in _etc_shells_lines()
        if added:
            _write_etc_shells([*_etc_shells_lines(), str(shell)])
    try:
        yield
    finally:
        if added:
            with _etc_shells_lock():
                _write_etc_shells([ln for ln in _etc_shells_lines() if ln != str(shell)])


# --------------------------------------------------------------------------- the user


@dataclass(frozen=True)
class LoginUser:
    name: str
    home: Path
    uid: int
    gid: int
    shell: Path

    def file(self, relative: str, content: bytes, mode: int = 0o644) -> Path:
        """Create a file in the user's home, owned by the user."""
        path = self.home / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        os.chown(path, self.uid, self.gid)
        path.chmod(mode)
        return path


def _retry_account_tool(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
    """Run useradd/userdel, retrying while another run holds the passwd lock."""
    deadline = time.monotonic() + 20
    while True:
        done = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        # exit 10 = "cannot lock /etc/passwd" (useradd/userdel): another process is editing it.
        if done.returncode != 10 or time.monotonic() > deadline:
            return done
        time.sleep(0.1)  # back-off before retrying a lock held by another process


def _end_processes_of(uid: int) -> None:
    """End the processes left running as the test account (only ever ours), by pid."""
    procs = [
        p for p in psutil.process_iter(["uids"]) if p.info["uids"] and p.info["uids"].real == uid
    ]
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.send_signal(signal.SIGHUP)
            proc.terminate()
    _gone, alive = psutil.wait_procs(procs, timeout=3)
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(alive, timeout=3)


_BASHRC = f"""
# added by the attyguard login tests: one exact prompt to wait for
PS1='{PROMPT}'
HISTFILE=~/.bash_history_agtest
"""


@pytest.fixture(scope="session")
def login_user(login_shell: Path) -> Iterator[LoginUser]:
    """A fresh account whose login shell is `login_shell`, home in a tmp dir, removed after."""
    _need_tool("useradd", "creates the test account")
    name = f"agtest{secrets.token_hex(4)}"
    base = Path(tempfile.mkdtemp(prefix="agtest-home-", dir="/tmp"))
    # mkdtemp makes it 0700 root: the account must be able to reach its home.
    base.chmod(0o755)
    home = base / name
    with listed_in_etc_shells(login_shell):
        made = _retry_account_tool(
            [
                "useradd",
                "--create-home",
                "--home-dir",
                str(home),
                "--shell",
                str(login_shell),
                "--comment",
                "attyguard login test",
                name,
            ]
        )
        if made.returncode != 0:
            shutil.rmtree(base, ignore_errors=True)
            pytest.fail(f"useradd failed ({made.returncode}): {made.stderr.strip()}")
        try:
            # A "!" password means "locked", and sshd without PAM refuses locked accounts
            # even with a key; "*" means "no password login" but leaves keys working.
            subprocess.run(["usermod", "--password", "*", name], check=True, capture_output=True)
            entry = pwd.getpwnam(name)
            user = LoginUser(name, home, entry.pw_uid, entry.pw_gid, login_shell)
            bashrc = home / ".bashrc"
            old = bashrc.read_bytes() if bashrc.exists() else b""
            user.file(".bashrc", old + _BASHRC.encode())
            # Login shells read ~/.profile (Debian's skel one sources ~/.bashrc); the
            # marker it exports shows whether a session was started as a login shell.
            profile = home / ".profile"
            old = profile.read_bytes() if profile.exists() else b'. "$HOME/.bashrc"\n'
            user.file(".profile", old + f"export AGTEST_PROFILE={PROFILE_MARK}\n".encode())
            yield user
        finally:
            _end_processes_of(pwd.getpwnam(name).pw_uid)
            gone = _retry_account_tool(["userdel", name])
            shutil.rmtree(base, ignore_errors=True)
            if gone.returncode not in (0, 12):  # 12: could not remove home (already gone: fine)
                print(f"userdel {name} failed ({gone.returncode}): {gone.stderr.strip()}")


# --------------------------------------------------------------------------- sshd


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _banner(port: int) -> bool:
    """True once something on `port` answers with an SSH banner."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
            return conn.recv(64).startswith(b"SSH-2.0-")
    except OSError:
        return False


@dataclass
class Sshd:
    """A private sshd and the ssh/scp/rsync command lines that reach `user` through it."""

    port: int
    user: LoginUser
    workdir: Path
    proc: subprocess.Popen[bytes]
    log_path: Path
    client_opts: list[str] = field(default_factory=list)

    @property
    def target(self) -> str:
        return f"{self.user.name}@127.0.0.1"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def ssh_argv(self, *extra: str) -> list[str]:
        return ["ssh", *self.client_opts, "-p", str(self.port), *extra, self.target]

    def ssh_command_for_rsync(self) -> str:
        return " ".join(["ssh", *self.client_opts, "-p", str(self.port)])

    def ssh(
        self, command: str, *, input: bytes | None = None, timeout: float = 30
    ) -> subprocess.CompletedProcess[bytes]:
        """`ssh USER@127.0.0.1 COMMAND` with no tty: sshd runs `SHELL -c COMMAND`."""
        return subprocess.run(
            [*self.ssh_argv("-T"), command],
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
        )

    def ssh_stdin(
        self, script: bytes, *, timeout: float = 30
    ) -> subprocess.CompletedProcess[bytes]:
        """`ssh USER@127.0.0.1 < script` with no command and no tty."""
        return subprocess.run(
            self.ssh_argv("-T"), input=script, capture_output=True, timeout=timeout
        )

    def explain(self, done: subprocess.CompletedProcess[Any] | None = None) -> str:
        parts = []
        if done is not None:
            parts.append(f"argv: {done.args!r}\nexit: {done.returncode}")
            for name, data in (("stdout", done.stdout), ("stderr", done.stderr)):
                text = data.decode(errors="replace") if isinstance(data, bytes) else str(data)
                parts.append(f"{name}:\n{text[-4000:]}")
        parts.append("sshd log:\n" + self.log()[-4000:])
        return "\n".join(parts)


_SSHD_CONFIG = """\
# Written by the attyguard login tests: a private server for one test account.
Port {port}
ListenAddress 127.0.0.1
HostKey {workdir}/ssh_host_ed25519_key
PidFile {workdir}/sshd.pid
AllowUsers {user}
PermitRootLogin no
PubkeyAuthentication yes
AuthorizedKeysFile .ssh/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
# No PAM: the test must not depend on (or change) the machine's PAM stack. sshd
# then sets the session environment itself (USER, HOME, SHELL, PATH, ...).
UsePAM no
# StrictModes stays on: the fixture gives the home, ~/.ssh and the key file the
# ownership and modes a real account has, so the check passes for real.
StrictModes yes
PrintMotd no
PrintLastLog no
# An external sftp-server is started as `$SHELL -c /usr/lib/openssh/sftp-server`,
# so scp (SFTP protocol since OpenSSH 9) goes through the login shell as well.
Subsystem sftp {sftp_server}
LogLevel VERBOSE
"""


@pytest.fixture(scope="session")
def sshd(login_user: LoginUser) -> Iterator[Sshd]:
    """A real OpenSSH server on a free loopback port that lets `login_user` in by key."""
    if not SSHD.exists():
        pytest.skip(f"{SSHD} is not installed (Debian openssh-server); contrib/dev.sh installs it")
    for tool in ("ssh", "ssh-keygen", "scp"):
        _need_tool(tool, "the OpenSSH client talks to the test sshd")
    workdir = Path(tempfile.mkdtemp(prefix="agtest-sshd-"))
    keygen = ["ssh-keygen", "-q", "-t", "ed25519", "-N", ""]
    subprocess.run([*keygen, "-f", str(workdir / "ssh_host_ed25519_key")], check=True)
    subprocess.run([*keygen, "-f", str(workdir / "client_key")], check=True)

    ssh_dir = login_user.home / ".ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    os.chown(ssh_dir, login_user.uid, login_user.gid)
    login_user.file(".ssh/authorized_keys", (workdir / "client_key.pub").read_bytes(), mode=0o600)
    # sshd's privilege-separation directory (made by the Debian service, which we do not run).
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)

    port = _free_port()
    config = workdir / "sshd_config"
    config.write_text(
        _SSHD_CONFIG.format(
            port=port, workdir=workdir, user=login_user.name, sftp_server=SFTP_SERVER
        )
    )
    checked = subprocess.run([str(SSHD), "-t", "-f", str(config)], capture_output=True, text=True)
    if checked.returncode != 0:
        pytest.fail(f"sshd -t rejected the test config: {checked.stderr.strip()}")

    host_pub = (workdir / "ssh_host_ed25519_key.pub").read_text().split()
    known_hosts = workdir / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{port} {host_pub[0]} {host_pub[1]}\n")
    client_opts = [
        "-F", "/dev/null",  # ignore root's ~/.ssh/config and the system client config
        "-i", str(workdir / "client_key"),
        "-o", "IdentitiesOnly=yes",
        "-o", "BatchMode=yes",
        "-o", "StrictHostKeyChecking=yes",
        "-o", f"UserKnownHostsFile={known_hosts}",
        "-o", "GlobalKnownHostsFile=/dev/null",
        "-o", "LogLevel=ERROR",
        "-o", "ConnectTimeout=10",
    ]  # fmt: skip

    log_path = workdir / "sshd.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [str(SSHD), "-D", "-e", "-f", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = Sshd(port, login_user, workdir, proc, log_path, client_opts)
    try:
        wait_until(
            lambda: proc.poll() is not None or _banner(port),
            "sshd to accept connections",
            explain=server.explain,
        )
        if proc.poll() is not None:
            pytest.fail(f"sshd exited with {proc.returncode}\n{server.explain()}")
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(workdir, ignore_errors=True)


# --------------------------------------------------------------------------- tmux


@dataclass
class Tmux:
    """A private tmux server (own socket) running one session for an interactive check."""

    socket_path: Path

    def cmd(self, *args: str, check: bool = True) -> str:
        done = subprocess.run(
            ["tmux", "-S", str(self.socket_path), *args],
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
        )
        if check and done.returncode != 0:
            pytest.fail(f"tmux {' '.join(args)} failed: {done.stderr.strip()}")
        return done.stdout

    def start(self, argv: Sequence[str]) -> None:
        """Run `argv` in a new session; a wrapper prints its exit status when it ends.

        The status is read from the screen rather than from tmux's pane_dead_status:
        under load tmux was seen to report the pane dead with no status for 15 s.
        remain-on-exit (set in the server's config file, so before the program can
        end) keeps the last screen for the failure report.
        """
        conf = self.socket_path.with_name("tmux.conf")
        conf.write_text("set -g remain-on-exit on\nset -g history-limit 5000\n")
        command = " ".join(shlex.quote(a) for a in argv)
        wrapped = f"{command}; echo; echo {EXIT_TAG}$?"
        self.cmd(
            "-f", str(conf), "new-session", "-d", "-s", "t", "-x", "120", "-y", "40",
            "/bin/sh", "-c", wrapped,
        )  # fmt: skip

    def screen(self) -> str:
        return self.cmd("capture-pane", "-p", "-J", "-S", "-200", "-t", "t", check=False)

    def send(self, text: str) -> None:
        self.cmd("send-keys", "-t", "t", "-l", text)
        self.cmd("send-keys", "-t", "t", "Enter")

    def pane(self, fmt: str) -> str:
        return self.cmd("display-message", "-p", "-t", "t", fmt, check=False).strip()

    def exit_status(self) -> str | None:
        """The program's exit status as printed by the wrapper, None while it runs."""
        found = re.findall(rf"^{EXIT_TAG}(\d+)$", self.screen(), re.MULTILINE)
        return found[-1] if found else None

    def wait_exit(self, what: str, timeout: float = 15) -> str:
        """Wait for the pane's program to end; return its exit status."""
        wait_until(lambda: self.exit_status() is not None, what, timeout, explain=self.explain)
        return self.exit_status() or ""

    def explain(self) -> str:
        """The screen and the processes still on the pane's terminal."""
        tty = self.pane("#{pane_tty}")
        ps = (
            subprocess.run(
                ["ps", "-o", "pid,ppid,user,stat,wchan:20,args", "-t", tty.removeprefix("/dev/")],
                capture_output=True,
                text=True,
            ).stdout
            if tty
            else ""
        )
        state = self.pane("dead=#{pane_dead} status=#{pane_dead_status} pid=#{pane_pid}")
        pid = self.pane("#{pane_pid}")
        if pid.isdigit():
            ps += subprocess.run(
                ["ps", "-o", "pid,ppid,user,stat,wchan:20,args", "--pid", pid, "--ppid", pid],
                capture_output=True,
                text=True,
            ).stdout
        return f"screen:\n{self.screen()}\npane: {state} tty={tty}\nprocesses on it:\n{ps}"

    def wait_screen(self, predicate: Callable[[str], bool], what: str, timeout: float = 15) -> str:
        wait_until(
            lambda: predicate(self.screen()),
            what,
            timeout,
            explain=self.explain,
        )
        return self.screen()


@pytest.fixture
def tmux() -> Iterator[Tmux]:
    _need_tool("tmux", "drives the interactive logins")
    workdir = Path(tempfile.mkdtemp(prefix="agtest-tmux-"))
    # The session's programs include `su -`/`ssh` to a test account; the socket
    # lives in root's private dir, only the tmux client (root) needs it.
    server = Tmux(workdir / "sock")
    try:
        yield server
    finally:
        server.cmd("kill-server", check=False)
        shutil.rmtree(workdir, ignore_errors=True)
