"""Real Sigma rules firing on exec events of real processes (the daemon's exec guard).

The real daemon (the fanotify rung in enforce and in warn mode: argv from the execve
tracepoint, so even a program that ends at once is seen whole; root) with a feed
bundle compiled from the SigmaHQ snapshot; a child registers as a shell would
and runs harmless programs that Sigma rules describe. Their exec records (what
`attyguard events` shows) carry the `sigma:` rule ids.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemon_harness import ATTYGUARD, RunningDaemon, remove_tmpdirs, short_tmpdir, wait_for
from tests.test_feeds import GTFO, SIGMA, needs_snapshots

pytestmark = [needs_snapshots,
              pytest.mark.skipif(os.geteuid() != 0,
                                 reason="the kernel layer needs root")]

CHILD = """
import json, os, subprocess, sys
from attyguard.daemon.client import DaemonClient
client = DaemonClient(sys.argv[1], 5000)
reg = client.register()
subprocess.run(["bash", "-c", sys.argv[2]], check=False)
print(json.dumps({"pid": os.getpid(), "register": reg}))
"""


@pytest.fixture(autouse=True)
def _clean() -> Iterator[None]:
    yield
    remove_tmpdirs()


@pytest.mark.parametrize("mode", ["enforce", "warn"])
def test_sigma_rules_fire_on_real_execs(tmp_path: Path, mode: str) -> None:
    env = {**os.environ, "ATTYGUARD_HOME": str(tmp_path / "home")}
    built = subprocess.run([str(ATTYGUARD), "feeds", "update", "--sigma", str(SIGMA),
                            "--gtfobins", str(GTFO)], env=env, capture_output=True, text=True,
                           timeout=120, stdin=subprocess.DEVNULL)
    assert built.returncode == 0, built.stderr
    work = tmp_path / "w"
    work.mkdir()
    (work / "blob").write_text("aGk=\n")
    # enforce holds every guarded exec until judged; warn judges each exec that ran
    # from its sched_process_exec record (base64 is bash's own second exec, in
    # place). The Sigma rules here all map to allow, so nothing is denied either way.
    d = RunningDaemon(short_tmpdir(), ["--ebpf-mode", mode],
                      '[daemon]\nexec_rung = "fanotify"\n', env=env)
    try:
        d.start()
        wait_for(lambda: "exec guard: rung" in d.log(), 10, "the exec guard", d.log)
        done = subprocess.run(
            [sys.executable, "-c", CHILD, d.socket,
             f"mkfifo {work}/pipe; base64 --decode {work}/blob >/dev/null"],
            capture_output=True, text=True, timeout=60, env=env, cwd="/")
        assert done.returncode == 0, done.stderr
        shell = json.loads(done.stdout)["pid"]

        def sigma_records() -> list[dict[str, object]]:
            reply = d.call("events", limit=1000)
            return [r for r in reply["events"] if r.get("shell") == shell
                    and any(str(x).startswith("sigma:") for x in r["rules"])]

        def both() -> list[dict[str, object]]:
            # the two execs' own records (bash's, whose -c text names base64, may come first)
            found = sigma_records()
            names = {str(r["program"]).rsplit("/", 1)[-1] for r in found}
            return found if {"mkfifo", "base64"} <= names else []

        found = wait_for(both, 15, "exec records with Sigma hits",
                         lambda: d.log() + "\n--- events ---\n" + "\n".join(
                             json.dumps(r) for r in d.call("events", limit=1000)["events"]))
    finally:
        d.stop()
    programs = {str(r["program"]).rsplit("/", 1)[-1] for r in found}
    assert {"mkfifo", "base64"} <= programs, found
    # A Sigma rule lowered to allow (status test, known false positives) names
    # itself in the record and denies nothing.
    assert all(r["action"] == "allow" for r in found), found
