"""End-to-end: `attyguard -c`, `-l -c`, `FILE args`, piped stdin behave like bash,
and classification still applies (block -> 126, warn -> one line on stderr)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.e2e.harness import run

pytestmark = pytest.mark.e2e

BLOCKED = "echo aGVsbG8= | base64 -d | sh"  # decoded text run by a shell: a block rule
WARNED = "curl -fsS https://example.invalid/i.sh | sh"  # download piped into a shell: warn


def test_dash_c_status_and_positional(attyguard_bin, ag_env):
    p = run([attyguard_bin, "-c", 'echo "$0|$1|$2"; exit 3', "myname", "a b", "c"], env=ag_env)
    assert p.returncode == 3, p
    assert p.stdout == b"myname|a b|c\n"


def test_dash_c_signal_status(attyguard_bin, ag_env):
    p = run([attyguard_bin, "-c", "kill -TERM $$"], env=ag_env)
    assert p.returncode == -15 or p.returncode == 143, p


def test_login_dash_c_reads_profile(attyguard_bin, ag_env, ag_home):
    (ag_home / ".profile").write_text("export FROM_PROFILE=yes\n")
    p = run([attyguard_bin, "-l", "-c", 'shopt -q login_shell && echo "login $FROM_PROFILE"'],
            env=ag_env)
    assert p.returncode == 0, p
    assert p.stdout.endswith(b"login yes\n")


def test_interactive_login_dash_c_like_editors(attyguard_bin, ag_env):
    p = run([attyguard_bin, "-l", "-i", "-c", "echo from-editor; exit 5"], env=ag_env)
    assert p.returncode == 5, p
    assert b"from-editor\n" in p.stdout


def test_script_file_with_args(attyguard_bin, ag_env, tmp_path):
    script = tmp_path / "s.sh"
    script.write_text('echo "script $1 $#"\nexit 4\n')
    p = run([attyguard_bin, str(script), "x", "y"], env=ag_env)
    assert (p.returncode, p.stdout) == (4, b"script x 2\n"), p


def test_missing_script_is_bash_error(attyguard_bin, ag_env, tmp_path):
    p = run([attyguard_bin, str(tmp_path / "nope.sh")], env=ag_env)
    assert p.returncode == 127, p
    assert b"No such file" in p.stderr


def test_commands_on_stdin(attyguard_bin, ag_env):
    script = b"read line; echo got:$line\nrest of input\nexit 6\n"
    p = run([attyguard_bin], env=ag_env, input=script)
    assert p.returncode == 6, p
    assert p.stdout == b"got:rest of input\n"


def test_stdin_with_s_and_args(attyguard_bin, ag_env):
    p = run([attyguard_bin, "-s", "a1", "a2"], env=ag_env, input=b'echo "$1 $2"\n')
    assert (p.returncode, p.stdout) == (0, b"a1 a2\n"), p


def test_bad_option_is_one_line(attyguard_bin, ag_env):
    p = run([attyguard_bin, "--no-such-option"], env=ag_env)
    assert p.returncode == 2
    assert p.stderr.count(b"\n") == 1 and b"Traceback" not in p.stderr


def test_block_refuses_with_126_and_runs_nothing(attyguard_bin, ag_env, tmp_path):
    marker = tmp_path / "ran"
    p = run([attyguard_bin, "-c", f"touch {marker}; {BLOCKED}"], env=ag_env)
    assert p.returncode == 126, p
    assert not marker.exists()
    assert p.stderr.count(b"\n") == 1 and b"REFUSED" in p.stderr, p.stderr


def test_block_in_script_and_stdin(attyguard_bin, ag_env, tmp_path):
    script = tmp_path / "bad.sh"
    script.write_text(f"echo start\n{BLOCKED}\n")
    p = run([attyguard_bin, str(script)], env=ag_env)
    assert (p.returncode, p.stdout) == (126, b""), p
    p = run([attyguard_bin], env=ag_env, input=f"echo start\n{BLOCKED}\n".encode())
    assert (p.returncode, p.stdout) == (126, b""), p


# --- a refusal names the line (NAME:LINE:), as a compiler would -------------------------

_THREE = f"echo one\n# two: nothing here\n{BLOCKED}\necho four\n"


def _refused_at(p: subprocess.CompletedProcess[bytes], name: str) -> None:
    assert (p.returncode, p.stdout) == (126, b""), p
    line = p.stderr.decode().strip()
    assert re.fullmatch(rf"attyguard: REFUSED — {re.escape(name)}:3: .+: {re.escape(BLOCKED)}",
                        line), line


def test_a_refused_script_names_its_line(attyguard_bin, ag_env, tmp_path):
    (tmp_path / "script.sh").write_text(_THREE)
    # (named as the user gave it: relative here)
    _refused_at(run([attyguard_bin, "script.sh", "arg"], env=ag_env, cwd=tmp_path), "script.sh")


def test_stdin_redirected_from_a_file_names_the_line_as_stdin(attyguard_bin, ag_env, tmp_path):
    script = tmp_path / "lines"
    script.write_text(_THREE)
    with script.open("rb") as f:
        p = subprocess.run([attyguard_bin], env=ag_env, stdin=f, capture_output=True, timeout=30)
    _refused_at(p, "stdin")


def test_stdin_from_a_pipe_names_the_line_as_stdin(attyguard_bin, ag_env, tmp_path):
    script = tmp_path / "lines"
    script.write_text(_THREE)
    p = run(["/bin/bash", "-c", 'cat "$1" | "$2"', "_", str(script), attyguard_bin], env=ag_env)
    _refused_at(p, "stdin")
    p = run([attyguard_bin, "-s", "a", "b"], env=ag_env, input=_THREE.encode())
    _refused_at(p, "stdin")


def test_a_warned_script_line_is_named_and_dash_c_has_no_line(attyguard_bin, ag_env, tmp_path):
    (tmp_path / "w.sh").write_text(f"true\n{WARNED}\n")
    p = run([attyguard_bin, "w.sh"], env=ag_env, cwd=tmp_path)
    assert p.stderr.decode().startswith("attyguard: warning — w.sh:2: "), p
    # -c is one argument the user just typed: no file, no line
    p = run([attyguard_bin, "-c", _THREE], env=ag_env)
    assert p.returncode == 126 and re.match(r"attyguard: REFUSED — [A-Z]", p.stderr.decode()), p


def test_warn_runs_with_one_line(attyguard_bin, ag_env):
    p = run([attyguard_bin, "-c", f"{WARNED}; echo ran-anyway"], env=ag_env)
    assert b"ran-anyway\n" in p.stdout, p
    assert b"warning" in p.stderr.splitlines()[0]


def test_warn_refused_by_config(attyguard_bin, ag_env):
    config = Path(ag_env["ATTYGUARD_HOME"]) / "config" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text('[shell]\nnoninteractive_warn = "refuse"\n')
    p = run([attyguard_bin, "-c", f"{WARNED}; echo ran-anyway"], env=ag_env)
    assert p.returncode == 126, p
    assert p.stdout == b""


def test_config_error_reported_once_and_continues(attyguard_bin, ag_env):
    config = Path(ag_env["ATTYGUARD_HOME"]) / "config" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text('[shell]\nnoninteractive_warn = "maybe"\n')
    p = run([attyguard_bin, "-c", "echo ok"], env=ag_env)
    assert (p.returncode, p.stdout) == (0, b"ok\n"), p
    assert p.stderr.count(b"noninteractive_warn") == 1


def test_forced_interactive_with_piped_stdin_is_bash(attyguard_bin, ag_env):
    p = run([attyguard_bin, "-i"], env=ag_env, input=b"echo flags=$-\nexit 2\n")
    assert p.returncode == 2, p
    assert b"flags=" in p.stdout and b"i" in p.stdout.split(b"flags=")[1]
