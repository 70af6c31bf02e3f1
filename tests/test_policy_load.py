"""The policy file: schema, located errors, globs, network rules, the syscall table."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from attyguard.policy.load import (
    PolicyLoadError,
    compile_glob,
    load_policy,
    parse_net_rule,
    parse_policy,
)
from attyguard.policy.model import Mode
from attyguard.policy.syscalls import load_syscall_table

ATTYGUARD = Path(sys.executable).parent / "attyguard"

GOOD = """\
version: "1.0"
mode: alert
processes:
  worker:
    description: a batch worker
    match:
      exe: /opt/worker/bin/run
      sha256: "%s"
    allowed_exec: [sh, /usr/bin/**]
    blocked_syscalls: [ptrace, mount]
    allowed_files: ["/srv/data/**", "/etc/worker.conf"]
    blocked_files: ["/etc/shadow"]
    allowed_network: ["10.1.0.0/16:443", "[fd00::/8]:8000-8100"]
    blocked_network: ["*:25"]
    max_memory_mb: 256
    max_cpu_percent: 80
alerts:
  on_violation: [syslog, "jsonl:/var/log/v.jsonl"]
  on_critical: [shell, "webhook:http://127.0.0.1:8080/x"]
""" % ("ab" * 32)


def _errors(text: str) -> list[str]:
    with pytest.raises(PolicyLoadError) as info:
        parse_policy(text, "p.yaml")
    return [str(e) for e in info.value.errors]


def test_good_policy_parses_every_field() -> None:
    policy = parse_policy(GOOD, "p.yaml")
    assert policy.mode is Mode.ALERT and policy.version == "1.0"
    (w,) = policy.processes
    assert w.name == "worker" and w.source == "p.yaml:4"
    assert w.exe.pattern == "/opt/worker/bin/run" and w.sha256 == "ab" * 32
    assert [g.pattern for g in w.allowed_exec or ()] == ["sh", "/usr/bin/**"]
    assert w.blocked_syscalls == ("ptrace", "mount")
    assert [r.text for r in w.allowed_network or ()] == ["10.1.0.0/16:443",
                                                         "[fd00::/8]:8000-8100"]
    assert (w.max_memory_mb, w.max_cpu_percent) == (256, 80)
    assert policy.on_violation == ("syslog", "jsonl:/var/log/v.jsonl")
    assert policy.on_critical == ("shell", "webhook:http://127.0.0.1:8080/x")


def test_absent_allow_lists_are_unchecked_and_empty_means_nothing() -> None:
    policy = parse_policy("processes:\n  a:\n    match: {exe: /bin/a}\n"
                          "    allowed_network: []\n", "p.yaml")
    (a,) = policy.processes
    assert a.allowed_exec is None and a.allowed_files is None
    assert a.allowed_network == ()
    assert policy.mode is Mode.AUDIT  # the default


BASE = "processes:\n  a:\n    match: {exe: /bin/a}\n"


@pytest.mark.parametrize(("text", "expected"), [
    (BASE + "    colour: red\n", "p.yaml:4: processes.a: unknown key 'colour'"),
    ("mode: block\n" + BASE, "p.yaml:1: mode must be audit, alert or enforce, got 'block'"),
    (BASE + "    blocked_syscalls: [ptrace, frobnicate]\n",
     "p.yaml:4: processes.a.blocked_syscalls: unknown syscall 'frobnicate'"),
    (BASE + "    blocked_syscalls:\n      - ptrace\n      - ptrace\n",
     "p.yaml:6: processes.a.blocked_syscalls: 'ptrace' listed twice"),
    (BASE + "    allowed_files:\n      - /etc/x\n      - '/etc/[ab'\n",
     "p.yaml:6: processes.a.allowed_files: glob '/etc/[ab' has an unclosed '['"),
    (BASE + "    blocked_files: [etc/passwd]\n",
     "p.yaml:4: processes.a.blocked_files: glob 'etc/passwd' must be an absolute path"),
    (BASE + "    blocked_files: [/etc/../shadow]\n", "is not a normalised path"),
    (BASE + "    blocked_files: ['/tmp/x**']\n", "'**' must be a whole path segment"),
    (BASE + "    allowed_exec: [bin/sh]\n",
     "glob 'bin/sh' must be an absolute path or a bare program name"),
    (BASE + "    allowed_network: [10.0.0.1/8]\n",
     "p.yaml:4: processes.a.allowed_network: network rule '10.0.0.1/8': "
     "10.0.0.1/8 has host bits set"),
    (BASE + "    blocked_network: ['10.0.0.0/8:99999']\n", "port '99999' out of range"),
    (BASE + "    blocked_network: ['example.com:80']\n",
     "does not appear to be an IPv4 or IPv6 network"),
    (BASE + "    max_memory_mb: lots\n",
     "p.yaml:4: processes.a.max_memory_mb must be a whole number"),
    (BASE + "    max_cpu_percent: -5\n", "max_cpu_percent must be between 0 and"),
    ("processes:\n  a:\n    description: x\n", "p.yaml:2: processes.a: missing 'match'"),
    ("processes:\n  a:\n    match: {sha256: x}\n",
     "p.yaml:3: processes.a.match: missing 'exe'"),
    ("processes:\n  a:\n    match: {exe: /bin/a, sha256: xyz}\n",
     "p.yaml:3: processes.a.match.sha256 must be 64 hexadecimal digits"),
    (BASE + "  a:\n    match: {exe: /bin/b}\n", "p.yaml:4: processes: duplicate key 'a'"),
    (BASE + "alerts: {on_violation: [pager]}\n",
     "p.yaml:4: alerts.on_violation: unknown sink 'pager'"),
    (BASE + "alerts: {on_critical: ['jsonl:rel.jsonl']}\n", "jsonl: needs an absolute"),
    (BASE + "alerts: {on_critical: ['webhook:ftp://x']}\n", "needs an http:// or https://"),
    ("processes: {}\n", "p.yaml:1: processes is empty"),
    ("version: 1\n", "p.yaml:1: no 'processes'"),
    ("- a\n- b\n", "p.yaml:1: policy must be a mapping"),
    ("processes:\n  a: [\n", "p.yaml:3: YAML:"),
    ("", "p.yaml: empty policy file"),
])
def test_errors_are_located(text: str, expected: str) -> None:
    errors = _errors(text)
    assert any(expected in e for e in errors), errors


def test_every_error_is_reported_in_one_pass() -> None:
    errors = _errors(BASE + "    colour: red\n    max_memory_mb: x\n"
                     "  b:\n    match: {exe: rel}\n")
    assert len(errors) == 3, errors
    assert [e.split(":")[1] for e in errors] == ["4", "5", "7"]


@pytest.mark.parametrize(("pattern", "path", "hit"), [
    ("/etc/shadow", "/etc/shadow", True),
    ("/etc/shadow", "/etc/shadow-", False),
    ("/etc/*", "/etc/passwd", True),
    ("/etc/*", "/etc/ssh/sshd_config", False),  # * stays inside one segment
    ("/etc/**", "/etc/ssh/sshd_config", True),
    ("/home/**/.ssh/*", "/home/ann/.ssh/id_ed25519", True),
    ("/home/**/.ssh/*", "/home/ann/x/y/.ssh/known_hosts", True),
    ("/home/*/.ssh/*", "/home/ann/x/.ssh/known_hosts", False),
    ("/tmp/?.log", "/tmp/a.log", True),
    ("/tmp/?.log", "/tmp/ab.log", False),
    ("/dev/tty[0-9]", "/dev/tty7", True),
    ("/dev/tty[0-9]", "/dev/ttyS", False),
    ("/dev/tty[!0-9]", "/dev/ttyS", True),
    ("/srv/*", "/srv/.hidden", True),  # dot files are not special in a policy
    ("/usr/bin/python3*", "/usr/bin/python3.13", True),
    ("/usr/bin/python3*", "/opt/usr/bin/python3", False),  # anchored at the start
])
def test_globs(pattern: str, path: str, hit: bool) -> None:
    assert compile_glob(pattern).matches(path) is hit


def test_bare_exec_name_matches_the_basename_only() -> None:
    glob = compile_glob("sh", allow_basename=True)
    assert glob.matches("/bin/sh") and glob.matches("/usr/bin/sh")
    assert not glob.matches("/bin/bash")


@pytest.mark.parametrize(("rule", "address", "port", "hit"), [
    ("10.0.0.0/8", "10.2.3.4", 80, True),
    ("10.0.0.0/8", "11.0.0.1", 80, False),
    ("10.0.0.0/8:443", "10.2.3.4", 80, False),
    ("10.0.0.0/8:443", "10.2.3.4", 443, True),
    ("10.0.0.0/8:80-90,443", "10.2.3.4", 85, True),
    ("*:53", "8.8.8.8", 53, True),
    ("*:53", "2001:db8::1", 53, True),
    ("*", "1.2.3.4", 1, True),
    ("::1", "::1", 9, True),
    ("[fd00::/8]:443", "fd12::1", 443, True),
    ("[fd00::/8]:443", "10.0.0.1", 443, False),
    ("127.0.0.0/8", "::ffff:127.0.0.1", 80, True),
    ("127.0.0.1", "127.0.0.2", 80, False),
])
def test_network_rules(rule: str, address: str, port: int, hit: bool) -> None:
    assert parse_net_rule(rule).matches(address, port) is hit


def test_syscall_table_is_this_machines() -> None:
    table = load_syscall_table()
    if not table.numbers:
        pytest.skip(table.note)
    # x86-64 ABI numbers never change.
    assert table.number("read") == 0 and table.number("ptrace") == 101
    assert table.number("execve") == 59
    assert table.is_implemented("openat") in (True, None)


def test_unknown_syscall_table_is_an_error_not_a_dead_rule(tmp_path: Path) -> None:
    from attyguard.policy.syscalls import load_syscall_table as load

    empty = load((str(tmp_path / "none.h"),))
    with pytest.raises(PolicyLoadError, match="cannot check 'ptrace'"):
        parse_policy(BASE + "    blocked_syscalls: [ptrace]\n", "p.yaml", empty)


def test_load_policy_file_errors(tmp_path: Path) -> None:
    with pytest.raises(PolicyLoadError, match="No such file"):
        load_policy(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"processes:\n  a:\n    match: {exe: /bin/\xff}\n")
    with pytest.raises(PolicyLoadError, match=r"bad.yaml:3: not valid UTF-8"):
        load_policy(bad)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(ATTYGUARD), "policy", *args], capture_output=True, text=True,
                          timeout=60)


def test_policy_check_cli(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(GOOD)
    result = _cli("check", str(good))
    assert result.returncode == 0, result.stderr
    assert f"{good}: valid — version 1.0, mode alert, 1 process entry" in result.stdout
    assert "worker: /opt/worker/bin/run (sha256 abababababab…) and its descendants" \
        in result.stdout
    assert "connect blocked to: *:25" in result.stdout
    data = json.loads(_cli("check", "--json", str(good)).stdout)
    assert data["processes"][0]["blocked_syscalls"] == ["ptrace", "mount"]
    assert data["processes"][0]["allowed_network"] == ["10.1.0.0/16:443",
                                                        "[fd00::/8]:8000-8100"]


def test_policy_check_cli_reports_every_error_located(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(BASE + "    blocked_syscalls: [nosuchcall]\n    colour: 1\n")
    result = _cli("check", str(bad))
    assert result.returncode == 3
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 2 and all(line.startswith(f"attyguard policy: {bad}:")
                                   for line in lines), lines
    assert "Traceback" not in result.stderr


def test_policy_check_prints_the_planned_marks_and_the_syscall_path(tmp_path: Path) -> None:
    (tmp_path / "keys").mkdir()
    policy = tmp_path / "p.yaml"
    policy.write_text(f"""\
processes:
  svc:
    match: {{exe: /opt/svc}}
    blocked_syscalls: [unlinkat]
    blocked_files: ["{tmp_path}/keys/*"]
""")
    result = _cli("check", str(policy))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    hooks = ("syscalls/sys_enter_open, syscalls/sys_enter_openat, "
             "syscalls/sys_enter_openat2")
    assert "  matched by exe: tracepoints while one lives (every process pays): " + hooks \
        + ", syscalls/sys_enter_unlinkat" in lines
    assert ("  under `attyguard policy run svc -- CMD`: blocked syscalls through seccomp "
            "(x86-64 + ia32; enforce: EPERM, the call does not run); tracepoints: "
            + hooks) in lines
    assert f"  file gate (enforce): inode mark on {tmp_path}/keys ({tmp_path}/keys/*)" in lines
    data = json.loads(_cli("check", "--json", str(policy)).stdout)["processes"][0]
    assert data["launched_syscalls"] == "seccomp"
    assert data["file_gate"]["marks"] == [{"path": f"{tmp_path}/keys", "how": "inode",
                                           "why": f"{tmp_path}/keys/*"}]
