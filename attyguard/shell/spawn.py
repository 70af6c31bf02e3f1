"""Starting the interactive bash child, before anything else is imported.

bash reads the user's rc files (bash-completion, version managers: tens to
hundreds of ms) while attyguard imports its own modules, so the child starts
first, from this module alone: only `os` and C-level modules, no pathlib or
dataclasses (the imports between the entry point and `session.py` then
overlap with bash's start-up; bench/shell_imports.py). `BashChild.adopt`
takes the started child over; `BashChild.spawn` is this plus that.
"""

from __future__ import annotations

import binascii
import fcntl
import os
import struct
import termios

__all__ = ["Started", "attyguard_path", "clean_up_on_signals", "ignore_terminal_signals",
           "interactive_env", "line_token", "remove_session_dir", "shellrc_dir", "start_bash",
           "terminal_size"]


class Started:
    """A bash child just started (a plain class: typing/dataclasses cost ms here)."""

    __slots__ = ("argv", "master", "nonce", "pid", "rcdir", "session_dir", "token")

    def __init__(self, pid: int, master: int, session_dir: str, nonce: str, rcdir: str,
                 argv: list[str] | None = None, token: str = "") -> None:
        self.token = token  # the first line's token (hooks.bash: __ag_accept)
        self.pid = pid
        self.argv = argv  # as exec'd: /proc/PID/cmdline until bash is exec'd away
        self.master = master  # the pty's master side, non-blocking
        self.session_dir = session_dir  # 0700 directory holding the side-channel FIFO "ch"
        self.nonce = nonce
        self.rcdir = rcdir  # shellrc/: attyguard.bash and hooks.bash


def shellrc_dir() -> str:
    """attyguard's shellrc/ (the rule of `attyguard.resources.data_path`, without pathlib)."""
    pkg = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
    packaged = os.path.join(pkg, "_data", "shellrc")
    if os.path.isdir(packaged):
        return packaged
    return os.path.join(os.path.dirname(pkg), "shellrc")


def start_bash(rcdir: str, *, login: bool = False, size: tuple[int, int] | None = None,
               bash: str = "/bin/bash", env: dict[str, str] | None = None,
               rc_judge: bool = False) -> Started:
    """`bash --rcfile <rcdir>/attyguard.bash -i` on a new pty, with its side channel.

    `rc_judge`: bash waits for attyguard.rcjudge's answer (FIFO "rc") before
    sourcing the user's start-up files; the caller must start the judge.
    """
    nonce = os.urandom(8).hex()
    token = line_token()  # the first line's token (hooks.bash: __ag_accept)
    session_dir = _private_dir()
    os.mkfifo(os.path.join(session_dir, "ch"), 0o600)
    # The secrets go through a pipe bash reads and closes first thing, never
    # the environment (readable in /proc/PID/environ by any of its children).
    secrets_r, secrets_w = os.pipe()
    os.write(secrets_w, f"{nonce}\0{session_dir}\0{token}\0".encode())
    os.close(secrets_w)
    child_env = dict(os.environ if env is None else env)
    child_env.update(__AG_FD=str(secrets_r), __AG_LOGIN="native" if login else "")
    if rc_judge:
        os.mkfifo(os.path.join(session_dir, "rc"), 0o600)
        child_env["__AG_RCJUDGE"] = "1"
    rc = os.path.join(rcdir, "attyguard.bash")
    if not os.path.exists(bash):
        bash = "bash"
    # A login shell is a real one, as login(1) and `su -` start it: argv[0]
    # "-bash" ($0 is -bash, `shopt login_shell` is on, `logout` works).
    # --noprofile: the profile files are read by attyguard.bash, each one judged
    # first (attyguard/rcjudge.py), never by bash unjudged. A login shell
    # ignores --rcfile, so attyguard.bash comes in through the first
    # PROMPT_COMMAND (set in the child below), the first code this bash runs:
    # before it nothing could read the secrets' pipe. Only this bash runs it:
    # children that inherit the variable do not.
    argv = ["-bash", "--noprofile", "-i"] if login else [bash, "--rcfile", rc, "-i"]
    pid, master = os.forkpty()
    if pid == 0:  # child
        try:
            os.set_inheritable(secrets_r, True)
            if size is not None:
                set_size(0, size)
            if login:
                child_env["PROMPT_COMMAND"] = (
                    f"[[ $$ == {os.getpid()} ]] && . {_sq(rc)}")
            os.execvpe(bash, argv, child_env)
        finally:
            os._exit(127)
    os.close(secrets_r)
    os.set_blocking(master, False)
    return Started(pid, master, session_dir, nonce, rcdir, argv, token)


def line_token() -> str:
    """A one-time line token (hooks.bash: __ag_accept): 128 random bits in 22 base64 characters.

    bash's readline takes each character of a line with a select and a read
    of its own: 22 characters instead of 32 hex digits, twice per line (the
    token and the next one), are 40 fewer system calls per Enter in bash.
    """
    return binascii.b2a_base64(os.urandom(16), newline=False).decode("ascii").rstrip("=")


def _sq(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def interactive_env(*, norc: bool = False, noprofile: bool = False) -> dict[str, str]:
    """The environment of the interactive child (shellrc/attyguard.bash reads the flags)."""
    env = dict(os.environ)
    # Programs that start "the user's shell" (script, an editor's :sh, tmux)
    # start a guarded one (issue 9, family 8; shell/nested.py for bare `bash`).
    path = attyguard_path()
    if path is not None:
        env["SHELL"] = path
    if norc:
        env["__AG_NORC"] = "1"
    if noprofile:
        env["__AG_NOPROFILE"] = "1"
    return env


def attyguard_path() -> str | None:
    """This attyguard's executable (the console script), None if it cannot be told."""
    import sys

    candidates = [sys.argv[0]] if sys.argv and sys.argv[0] else []
    candidates.append(os.path.join(os.path.dirname(sys.executable), "attyguard"))
    for exe in candidates:
        if os.path.basename(exe).lstrip("-") == "attyguard" and os.path.isfile(exe) \
                and os.access(exe, os.X_OK):
            return os.path.abspath(exe)
    return None


def ignore_terminal_signals() -> None:
    """Right after the child starts: ^C/^Z/^\\ must not kill or stop attyguard itself.

    The terminal is raw whenever a key could matter (prompt, passthrough),
    so they arrive as bytes; in the short cooked gaps between the two they
    would signal the login shell (bash has its own session on the pty).
    """
    import signal

    for sig in (signal.SIGINT, signal.SIGQUIT, signal.SIGTSTP):
        signal.signal(sig, signal.SIG_IGN)


def clean_up_on_signals(started: Started) -> None:
    """SIGHUP (a dropped ssh) and SIGTERM end attyguard without leaving anything behind.

    By default they kill the process where it stands: the session directory
    stayed in /tmp, bash lived on and the terminal stayed raw. Now the
    handler hangs up bash, removes the directory, gives the terminal its
    start-up modes back and then dies of the same signal (so the parent sees
    what happened). It does only system calls: it may run at any point of
    the shell's life, also before the session has been built.
    """
    import signal

    try:
        saved = termios.tcgetattr(0) if os.isatty(0) else None
    except termios.error:
        saved = None

    def die(signum: int, _frame: object) -> None:
        try:  # noqa: SIM105 (no contextlib on the start-up path: see the module docstring)
            os.kill(started.pid, signal.SIGHUP)
        except OSError:
            pass
        remove_session_dir(started.session_dir)
        if saved is not None:
            try:
                os.write(1, b"\x1b[?2004l")  # (prompt_toolkit's bracketed paste)
                termios.tcsetattr(0, termios.TCSANOW, saved)
            except OSError:
                pass  # (a hung-up terminal is gone)
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    for sig in (signal.SIGHUP, signal.SIGTERM):
        signal.signal(sig, die)


def remove_session_dir(path: str) -> None:
    """The side channel's directory and everything bash and the front end put in it.

    That includes the judged copies of rc files and of files a line sources
    (rcjudge, filejudge: subdirectories, so a session has one private
    directory and a signal leaves none behind). Symbolic links are removed,
    never followed. No shutil: this runs in a signal handler on the start-up
    path (see the module docstring).
    """
    try:
        entries = list(os.scandir(path))
    except OSError:
        entries = []
    for entry in entries:
        try:
            if entry.is_dir(follow_symlinks=False):
                remove_session_dir(entry.path)
            else:
                os.unlink(entry.path)
        except OSError:
            pass
    try:  # noqa: SIM105 (as above)
        os.rmdir(path)
    except OSError:
        pass


def terminal_size(fd: int) -> tuple[int, int] | None:
    """(rows, columns) of the terminal on `fd`, None if it is not one."""
    try:
        size = os.get_terminal_size(fd)
    except OSError:
        return None
    return size.lines, size.columns


def set_size(fd: int, size: tuple[int, int]) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", size[0], size[1], 0, 0))


def _private_dir() -> str:
    """A fresh 0700 directory for the FIFO (not tempfile: its imports are on the start-up path).

    In memory where possible (XDG_RUNTIME_DIR, else /dev/shm): the hooks
    rewrite small files in it at every prompt and state lookup, and on ext4
    rewriting a file (O_TRUNC) flushes it to disk (auto_da_alloc): milliseconds
    per write against microseconds on tmpfs (bench/README.md, "Figures behind
    design choices").
    """
    base = os.environ.get("XDG_RUNTIME_DIR") or ""
    if not base or not os.access(base, os.W_OK):
        base = "/dev/shm"
    if not os.access(base, os.W_OK):
        base = os.environ.get("TMPDIR") or "/tmp"
    if not os.access(base, os.W_OK):
        base = "/tmp"
    for _ in range(100):
        path = os.path.join(base, f"attyguard-{os.urandom(6).hex()}")
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            continue
        return path
    raise OSError("cannot create a private directory")
