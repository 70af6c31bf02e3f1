"""The non-interactive paths (-c, scripts, stdin) must not import the UI."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import os, sys
def fake_exec(path, argv, env=None):
    heavy = sorted(m for m in ("prompt_toolkit", "rich", "pexpect") if m in sys.modules)
    print("heavy:" + ",".join(heavy), "argv:" + " ".join(argv[1:]))
    sys.stdout.flush()
    os._exit(0)
os.execvp = os.execvpe = fake_exec
from attyguard.cli import main
main(["-c", "echo hi", "name"])
"""


def test_dash_c_imports_no_ui(tmp_path):
    env = {"ATTYGUARD_HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                         env=env, timeout=60)
    assert out.stdout.strip() == "heavy: argv:-c echo hi name", out
