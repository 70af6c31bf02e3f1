"""The decision behind the shell's one enforcement point.

`Guard.decide(line)` is what the session calls just before a line would be
forwarded to bash, and what `attyguard check` and the non-interactive modes
call. Order (seed V1/V2-D/V2-J-2): trust-cache hit -> allow (short-circuits
both the warn prompt and the block path); else the in-process engine's
verdict, raised to the daemon's when one is configured and answers in time
and its verdict is more severe: the daemon can raise the local verdict,
never lower it (a socket that answers "allow" must not undo a local block).
A line trusted only by an unverified import is asked about once (a warn
naming the import), whatever the verdict, until the user trusts it here.

The trust store and daemon client are passed in (Protocols below), so tests
and each front end wire what they have; nothing here does I/O itself.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Protocol

from attyguard.engine.state import ShellState
from attyguard.engine.verdict import Action, RuleHit, Severity, Source, Verdict

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


UNVERIFIED_TRUST_RULE = "trust.unverified"


def _already_critical(verdict: Verdict) -> bool:
    return any(hit.rule_id == PID_CRITICAL_RULE for hit in verdict.rules)


def most_severe(local: Verdict, daemon: Verdict) -> Verdict:
    """The daemon's verdict unless the local one is more severe (then the local, noted)."""
    if local.action.rank > daemon.action.rank:
        note = f"daemon answered {daemon.action.value}; the local verdict is more severe"
        return replace(local, notes=(*local.notes, note))
    return daemon.with_source(Source.DAEMON)


def _unverified_hit(preview: str) -> RuleHit:
    return RuleHit(
        rule_id=UNVERIFIED_TRUST_RULE, title="Trusted by an import that could not be verified",
        severity=Severity.MEDIUM, action=Action.WARN, probability=0.0,
        explanation=f"An imported trust entry (shown as {preview[:80]!r}) has this line's hash, "
        "but its preview is not the line, so it is asked about once.",
        remediation="Answer [t]rust to trust this line from now on.",
    )


class Guard:
    def __init__(
        self,
        # engine(line) or engine(line, state): `classify` and `Engine.classify` take both.
        engine: Callable[..., Verdict],
        trust: TrustStore | None = None,
        daemon: DaemonClient | None = None,
    ) -> None:
        self.engine = engine
        self.trust = trust
        self.daemon = daemon

    def decide(self, line: str, state: ShellState | None = None) -> Verdict:
        """The verdict for `line`; `state`: the live shell's values of the names it uses.

        With a non-empty state the engine and the daemon judge the line as bash
        will expand it. A line trusted as text (`attyguard trust add`, or a
        [t]rust given when it used no state) is trusted whatever the state; a
        [t]rust given to a line that used state holds for that state only
        (trusting `eval "$v"` once must not trust every later `v`).
        """
        start = time.perf_counter_ns()
        if self.trust is not None and (self.trust.lookup(line) or (
                state and self.trust.lookup(trust_text(line, state)))):
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
        remote: Verdict | None = None
        if self.daemon is not None:
            daemon: Any = self.daemon  # (classify(line, state=…) since issue 9)
            remote = (daemon.classify(line, state=state) if state else daemon.classify(line))
            if remote is not None:
                if remote.action is Action.BLOCK and not _already_critical(remote):
                    # V2-J-2: a daemon Block marks this shell Critical, so the
                    # next line from this process tree is refused outright.
                    self.daemon.report_block(remote)
            else:
                notes = ("daemon unavailable; in-process verdict",)
        local = self.engine(line) if not state else self.engine(line, state)
        verdict = replace(local, source=Source.LOCAL, notes=local.notes + notes)
        if remote is not None:
            verdict = most_severe(verdict, remote)
        return self._unverified(trust_text(line, state), verdict)

    def _unverified(self, line: str, verdict: Verdict) -> Verdict:
        """A line only an unverified import trusts: ask (once: [t]rust verifies it)."""
        if verdict.action is Action.ALLOW or _already_critical(verdict):
            return verdict
        unverified = getattr(self.trust, "unverified", None)
        if unverified is None:
            return verdict
        try:
            entry = unverified(line)
        except Exception:  # a broken optional part never decides
            return verdict
        if entry is None:
            return verdict
        return replace(verdict, action=Action.WARN,
                       rules=(_unverified_hit(str(entry.preview)), *verdict.rules))

    def remember(self, line: str, verdict: Verdict, state: ShellState | None = None) -> None:
        """The user answered [t]rust: record it so the line is allowed next time."""
        if self.trust is not None:
            self.trust.add(trust_text(line, state), tuple(hit.rule_id for hit in verdict.rules))


def trust_text(line: str, state: ShellState | None) -> str:
    """What the trust store keys on: the line, plus a digest of the state it used.

    A line that uses no live state is trusted as itself (as before); one that
    does carries a short digest after a NUL, so the same text with other
    values behind its names is a different entry.
    """
    if not state:
        return line
    digest = hashlib.sha256(repr(state.key()).encode("utf-8", "surrogateescape")).hexdigest()
    return f"{line}\0state:{digest[:16]}"
