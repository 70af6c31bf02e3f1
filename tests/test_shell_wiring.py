from __future__ import annotations

from dataclasses import replace

from attyguard.config import Config
from attyguard.engine.verdict import Action, Source
from attyguard.shell.wiring import GuardLoader, build_guard


def test_guard_without_daemon_uses_engine_and_trust(tmp_path, monkeypatch):
    monkeypatch.setenv("ATTYGUARD_HOME", str(tmp_path))
    wired = build_guard(Config())
    try:
        assert wired.daemon is None and wired.daemon_state == ""
        verdict = wired.guard.decide("ls -l")
        assert verdict.action is Action.ALLOW and verdict.source is Source.LOCAL
    finally:
        wired.close()


def test_absent_daemon_falls_back_without_hanging(tmp_path, monkeypatch):
    monkeypatch.setenv("ATTYGUARD_HOME", str(tmp_path))
    config = Config()
    config = replace(config, guard=replace(config.guard,
                                           daemon_socket_path=str(tmp_path / "no.sock"),
                                           daemon_timeout_ms=50))
    loader = GuardLoader(config)
    wired = loader.get()
    try:
        assert wired.daemon is not None
        verdict = wired.guard.decide("ls -l")
        assert verdict.action is Action.ALLOW and verdict.source is Source.LOCAL
        assert wired.daemon_state != "connected"
    finally:
        wired.close()
