"""Building the Guard the shell enforces with, from config and what is installed.

When the trust store (attyguard.trust) or the daemon client
(attyguard.daemon.client) is broken, the shell keeps working on the
in-process engine and says so once. Light on purpose: the non-interactive
modes use it too, so the optional parts are imported only when used.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from attyguard.config import Config

if TYPE_CHECKING:
    import threading

    # Imported where used: the Guard (and the engine's verdict types, 3 ms)
    # are built on the loader thread, off the first prompt's path.
    from collections.abc import Callable

    from attyguard.engine.state import ShellState
    from attyguard.engine.verdict import Verdict
    from attyguard.guard import Guard

__all__ = ["GuardLoader", "Remembering", "Wired", "build_guard"]


@dataclass
class Wired:
    """The Guard built from config, with the daemon client and one-time notes."""

    guard: Guard
    daemon: Any = None  # a DaemonClient when configured
    warnings: list[str] = field(default_factory=list)
    store: Any = None  # the TrustStore itself (the Guard may hold a wrapper of it)

    @property
    def daemon_state(self) -> str:
        if self.daemon is None:
            return ""
        try:
            return str(self.daemon.state)
        except Exception:  # a broken optional part must not break the prompt
            return "unavailable"

    def close(self) -> None:
        for part in (self.guard.trust, self.daemon, self.store):
            close = getattr(part, "close", None)
            if close is not None:
                with contextlib.suppress(Exception):
                    close()


def build_guard(config: Config, *, quick: bool = False, question: bool = False,
                trust: bool = True, daemon: bool = True,
                daemon_socket: str | None = None) -> Wired:
    """The Guard from config: trust store, daemon client, the in-process engine.

    The one place the shell, `-c`/scripts/stdin and `attyguard check` build it.
    `quick` (the non-interactive modes, no daemon configured): clean lines
    are allowed without importing the engine or opening the trust store
    (`attyguard.engine.quick`); the rest is built at the first other line.
    `question` (`attyguard check`: nothing will run): a trust hit is not
    counted as a use and no store is created, a daemon Block does not mark
    this process Critical, nothing is registered with the daemon, and the
    engine is imported only by a line that needs it. `trust`/`daemon` False
    leave the part out; `daemon_socket` overrides the configured socket.
    """
    socket = (daemon_socket if daemon_socket is not None
              else config.guard.daemon_socket_path) if daemon else ""
    if quick and not socket:
        from attyguard.engine.quick import load_atoms

        atoms = load_atoms()
        if atoms is not None:
            return Wired(_QuickGuard(atoms, config))  # type: ignore[arg-type]
    from attyguard.guard import Guard

    notes: list[str] = []
    store = None
    if trust:
        try:
            from attyguard.trust import open_trust_store

            store, warning = open_trust_store(create=not question)
            if warning:
                notes.append(warning.removeprefix("attyguard: "))
        except Exception as exc:  # a broken optional part degrades, it never stops the shell
            notes.append(f"trust store unavailable: {exc}")
    client: Any = None
    if socket:
        try:
            from attyguard.daemon.client import DaemonClient

            client = DaemonClient(socket, config.guard.daemon_timeout_ms,
                                  daemon_user=config.guard.daemon_user)
            if client.user_problem:
                notes.append(client.user_problem)
        except Exception as exc:
            notes.append(f"daemon client unavailable ({exc}); in-process verdicts only")
            # (a question still asks "the daemon": its verdict then notes the fallback)
            client = _NoClient() if question else None
        if client is not None and not question:
            _register(client)
    if question:
        return Wired(Guard(_LazyEngine(), _PeekTrust(store) if store is not None else None,
                           _QuestionOnly(client) if client is not None else None),
                     client, notes, store)
    from attyguard.engine.classify import classify

    return Wired(Guard(Remembering(classify), trust=store, daemon=client), client, notes, store)


class _PeekTrust:
    """The trust store as `Guard` wants it, minus the use counting (a question runs nothing)."""

    def __init__(self, store: Any) -> None:
        self.store = store

    def lookup(self, line: str) -> bool:
        entry = self.store.get(line)
        return entry is not None and entry.verified

    def unverified(self, line: str) -> Any:
        return self.store.unverified(line)

    def add(self, line: str, rule_ids: tuple[str, ...]) -> None:
        self.store.add(line, rule_ids)

    def close(self) -> None:
        self.store.close()


class _QuestionOnly:
    """A daemon client whose Blocks do not escalate: a question runs nothing."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def classify(self, line: str) -> Verdict | None:
        result: Verdict | None = self.client.classify(line)
        return result

    def report_block(self, verdict: Verdict) -> None:
        pass

    def close(self) -> None:
        close = getattr(self.client, "close", None)
        if close is not None:
            close()


class _NoClient:
    def classify(self, line: str) -> None:
        return None


class _LazyEngine:
    """The engine, imported on the first line that needs it: a trusted line (or a
    daemon verdict) never pays for loading the parser and the rules."""

    def __init__(self) -> None:
        self._classify: Callable[[str], Verdict] | None = None

    def __call__(self, line: str) -> Verdict:
        if self._classify is None:
            from attyguard.engine.classify import classify

            self._classify = classify
        return self._classify(line)


def _register(daemon: Any) -> None:
    """Every attyguard shell (interactive or not) registers its process tree (issue 10).

    Before the first line is forwarded: the interactive shell's first line
    waits for this loader; `-c`, scripts and stdin build the Guard before bash
    is exec'd (same pid, so the registration covers it). An absent daemon
    costs nothing more than the classify that follows would.
    """
    with contextlib.suppress(Exception):
        daemon.register()
# The note on a clean line's verdict: it reads no file (engine/quick.py), so the
# non-interactive path has nothing more to judge for it.
FAST_PATH_NOTE = "clean line (fast path)"


class _QuickGuard:
    """A Guard that allows clean lines itself and builds the real one for anything else.

    Only without a daemon: a daemon may refuse even a clean line (a shell it
    marked Critical), so it is always asked. The trust store is not opened
    for a clean line: the verdict would be allow either way.
    """

    def __init__(self, atoms: Any, config: Config) -> None:
        self.atoms = atoms
        self.config = config
        self.inner: Wired | None = None

    @property
    def trust(self) -> Any:
        return self.inner.guard.trust if self.inner is not None else None

    @property
    def engine(self) -> Any:
        """The real engine (building the Guard): for files and profiles, never clean lines."""
        return self._full().guard.engine

    def _full(self) -> Wired:
        if self.inner is None:
            import sys

            self.inner = build_guard(self.config)
            for note in self.inner.warnings:
                print(f"attyguard: {note}", file=sys.stderr)
        return self.inner

    def decide(self, line: str) -> Verdict:
        from attyguard.engine.quick import is_clean

        if self.inner is None and is_clean(line, self.atoms):
            from attyguard.engine.verdict import Action, Source, Verdict

            return Verdict(Action.ALLOW, source=Source.LOCAL, notes=(FAST_PATH_NOTE,))
        verdict = self._full().guard.decide(line)
        from attyguard.engine.verdict import Action, Source

        if verdict.action is Action.ALLOW and not verdict.rules and verdict.source is Source.LOCAL:
            # (the engine's own allow: not a trusted line, not a daemon's answer)
            from attyguard.engine.quick import remember_allowed

            remember_allowed(line)
        return verdict

    def remember(self, line: str, verdict: Verdict) -> None:
        self._full().guard.remember(line, verdict)


class Remembering:
    """The engine's verdicts for lines seen before in this process.

    A shell repeats lines (ls, git status, make): the engine is a pure function of the line and
    the rules, which a process loads once, so a repeat needs no new analysis. The verdict is on
    the path between Enter and bash (its cost per round trip: bench/README.md, "Figures behind
    the code"). Verdicts that depend on the moment are never kept: an analysis cut short by its
    deadline (a loaded machine) or an internal error must be tried again. Plain dict operations
    only (atomic under the GIL: the loader thread warms the engine concurrently); when full it
    starts over rather than tracking recency.
    """

    SIZE = 1024
    MAX_LINE = 4096  # longer lines are rare and would make the memory unbounded in practice

    def __init__(self, engine: Callable[..., Verdict]) -> None:
        self.engine = engine
        self.seen: dict[object, Verdict] = {}

    def __call__(self, line: str, state: ShellState | None = None) -> Verdict:
        # The same line with other values behind its names is another question.
        key: object = (line, state.key()) if state else line
        found = self.seen.get(key)
        if found is not None:
            return found
        verdict = self.engine(line, state) if state else self.engine(line)
        small = len(line) <= self.MAX_LINE and (not state or len(repr(key)) <= 4 * self.MAX_LINE)
        if small and _repeatable(verdict):
            if len(self.seen) >= self.SIZE:
                self.seen.clear()
            self.seen[key] = verdict
        return verdict


def _repeatable(verdict: Verdict) -> bool:
    from attyguard.engine.classify import BOUNDED_RULE_ID, UNAVAILABLE_RULE_ID

    transient = (BOUNDED_RULE_ID, UNAVAILABLE_RULE_ID)
    return not verdict.notes and all(hit.rule_id not in transient for hit in verdict.rules)


class GuardLoader:
    """Builds the Guard on a thread once the first prompt is up.

    Loading the engine (parser, rules) takes longer than everything else at
    start-up; the user is typing meanwhile. `get()` waits for it, so nothing
    is ever forwarded unclassified.
    """

    def __init__(self, config: Config) -> None:
        self.config = config
        import threading  # (here: `-c` imports this module and never starts a thread)

        self._thread: threading.Thread | None = None
        self._wired: Wired | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        with self._lock:
            if self._thread is None:
                import threading

                self._thread = threading.Thread(target=self._load, name="attyguard-guard",
                                                daemon=True)
                self._thread.start()

    def _load(self) -> None:
        try:
            self._wired = build_guard(self.config)
        except Exception as exc:  # the engine never raises by contract; be sure anyway
            from attyguard.guard import Guard

            self._wired = Wired(Guard(_refuse_all), warnings=[
                f"classifier failed to load ({exc}); every line is refused"])
            return
        # The rules are loaded here too, not by the first line: without a
        # daemon the first command would otherwise wait for them (0.2-0.35 s
        # measured) after Enter; with one, the first fallback (daemon killed or
        # stopped) would pay for them on top of the daemon deadline. get()
        # joins this thread, so a line typed meanwhile still waits for them.
        _warm_engine()

    @property
    def loaded(self) -> Wired | None:
        return self._wired

    @property
    def ready(self) -> Wired | None:
        """The Guard once loading has finished entirely (rules warm), else None: never waits."""
        thread = self._thread
        if thread is None or thread.is_alive():
            return None
        return self._wired

    def get(self) -> Wired:
        self.start()
        assert self._thread is not None
        self._thread.join()
        assert self._wired is not None
        return self._wired


def _warm_engine() -> None:
    with contextlib.suppress(Exception):
        from attyguard.engine.classify import default_engine

        default_engine()


def _refuse_all(line: str, state: object = None) -> Any:
    from attyguard.engine.verdict import Action, Verdict

    return Verdict(Action.BLOCK, notes=("classifier unavailable",))
