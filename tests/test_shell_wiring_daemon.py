"""The shell's daemon wiring: the fallback engine is ready before the first line."""

from __future__ import annotations

from pathlib import Path

import attyguard.engine.classify as classify_mod
from attyguard.config import Config, GuardConfig
from attyguard.shell.wiring import GuardLoader


def test_daemon_configured_loader_warms_the_in_process_engine(tmp_path: Path,
                                                              monkeypatch) -> None:
    # With a daemon answering, the local rules are otherwise first loaded by
    # the first fallback, which then costs far more than the daemon deadline.
    monkeypatch.setenv("ATTYGUARD_HOME", str(tmp_path))
    classify_mod.reset_default_engine()
    config = Config(guard=GuardConfig(daemon_socket_path=str(tmp_path / "no.sock")))
    loader = GuardLoader(config)
    wired = loader.get()
    try:
        assert wired.daemon is not None
        assert classify_mod._DEFAULT is not None
    finally:
        wired.close()
