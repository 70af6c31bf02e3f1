"""The decision behind the shell's one enforcement point.

`Guard.decide(line)` is what the session calls just before a line would be
forwarded to bash, and what `attyguard check` and the non-interactive modes
call. Order (seed V1/V2-D/V2-J-2): trust-cache hit -> allow (short-circuits
both the warn prompt and the block path); else the daemon's verdict when one
is configured and answers in time; else the in-process engine.

The trust store and daemon client are passed in (Protocols below), so tests
and each front end wire what they have; nothing here does I/O itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Protocol

from attyguard.engine.verdict import Action, Source, Verdict

__all__ = ["DaemonClient", "Guard", "TrustStore"]


class TrustStore(Protocol):
    def lookup(self, line: str) -> bool:
        """True if the user trusted exactly this line before (updates last-used)."""
        ...

    def add(self, line: str, rule_ids: tuple[str, ...]) -> None:
        """Remember that the user trusted this line, overriding these rules."""
        ...


class DaemonClient(Protocol):
    def classify(self, line: str) -> Verdict | None:
        """The daemon's verdict, or None if it is absent, slow or broken."""
        ...

    def report_block(self, verdict: Verdict) -> None:
        """The daemon refused a line of this shell: mark this shell's PID Critical."""
        ...


# The daemon's rule for "this process tree is already Critical": a Block for
# that reason needs no second mark (it would cost a round trip per line).
PID_CRITICAL_RULE = "daemon.pid-critical"


def _already_critical(verdict: Verdict) -> bool:
    return any(hit.rule_id == PID_CRITICAL_RULE for hit in verdict.rules)


class Guard:
    def __init__(
        self,
        engine: Callable[[str], Verdict],
        trust: TrustStore | None = None,
        daemon: DaemonClient | None = None,
    ) -> None:
        self.engine = engine
        self.trust = trust
        self.daemon = daemon

    def decide(self, line: str) -> Verdict:
        start = time.perf_counter_ns()
        if self.trust is not None and self.trust.lookup(line):
            # The daemon's exec guard lets this trusted line's execs run too.
            trusted = getattr(self.daemon, "trusted", None)
            if trusted is not None:
                trusted(line)
            return Verdict(
                Action.ALLOW,
                source=Source.TRUST,
                elapsed_us=(time.perf_counter_ns() - start) // 1000,
            )
        notes: tuple[str, ...] = ()
        if self.daemon is not None:
            verdict = self.daemon.classify(line)
            if verdict is not None:
                if verdict.action is Action.BLOCK and not _already_critical(verdict):
                    # V2-J-2: a daemon Block marks this shell Critical, so the
                    # next line from this process tree is refused outright.
                    self.daemon.report_block(verdict)
                return verdict.with_source(Source.DAEMON)
            notes = ("daemon unavailable; in-process verdict",)
        verdict = self.engine(line)
        return replace(verdict, source=Source.LOCAL, notes=verdict.notes + notes)

    def remember(self, line: str, verdict: Verdict) -> None:
        """The user answered [t]rust: record it so the line is allowed next time."""
        if self.trust is not None:
            self.trust.add(line, tuple(hit.rule_id for hit in verdict.rules))
