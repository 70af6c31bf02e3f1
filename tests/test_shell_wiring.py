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


def _counting(verdicts):
    calls: list[str] = []

    def engine(line: str):
        calls.append(line)
        return verdicts(line)

    return engine, calls


def test_remembering_asks_the_engine_once_per_line():
    from attyguard.engine.verdict import Verdict
    from attyguard.shell.wiring import Remembering

    engine, calls = _counting(lambda line: Verdict(Action.ALLOW))
    remembering = Remembering(engine)
    assert remembering("ls -l").action is Action.ALLOW
    assert remembering("ls -l").action is Action.ALLOW
    assert remembering("git status").action is Action.ALLOW
    assert calls == ["ls -l", "git status"]


def test_remembering_never_keeps_a_verdict_of_the_moment():
    """A deadline hit (loaded machine) or rules that failed to load: ask again next time."""
    from attyguard.engine.classify import BOUNDED_RULE_ID, UNAVAILABLE_RULE_ID
    from attyguard.engine.verdict import RuleHit, Severity, Verdict
    from attyguard.shell.wiring import Remembering

    def hit(rule_id: str) -> RuleHit:
        return RuleHit(rule_id=rule_id, title="t", severity=Severity.LOW, action=Action.WARN,
                       probability=0.0, explanation="e", remediation="r")

    for verdict in (Verdict(Action.WARN, rules=(hit(BOUNDED_RULE_ID),)),
                    Verdict(Action.WARN, rules=(hit(UNAVAILABLE_RULE_ID),)),
                    Verdict(Action.ALLOW, notes=("daemon unavailable",))):
        engine, calls = _counting(lambda line, v=verdict: v)
        remembering = Remembering(engine)
        remembering("x")
        remembering("x")
        assert calls == ["x", "x"]


def test_remembering_is_bounded():
    from attyguard.engine.verdict import Verdict
    from attyguard.shell.wiring import Remembering

    engine, _calls = _counting(lambda line: Verdict(Action.ALLOW))
    remembering = Remembering(engine)
    for i in range(Remembering.SIZE * 3):
        remembering(f"echo {i}")
    remembering("y" * (Remembering.MAX_LINE + 1))
    assert len(remembering.seen) <= Remembering.SIZE
    assert "y" * (Remembering.MAX_LINE + 1) not in remembering.seen
