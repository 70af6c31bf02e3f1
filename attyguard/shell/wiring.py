"""Building the Guard the shell enforces with, from config and what is installed.

When the trust store (attyguard.trust) or the daemon client
(attyguard.daemon.client) is broken, the shell keeps working on the
in-process engine and says so once. Light on purpose: the non-interactive
modes use it too, so the optional parts are imported only when used.
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from attyguard.config import Config

if TYPE_CHECKING:
    # Imported where used: the Guard (and the engine's verdict types, 3 ms)
    # are built on the loader thread, off the first prompt's path.
    from attyguard.guard import Guard

__all__ = ["GuardLoader", "Wired", "build_guard"]


@dataclass
class Wired:
    guard: Guard
    daemon: Any = None  # a DaemonClient when configured
    warnings: list[str] = field(default_factory=list)

    @property
    def daemon_state(self) -> str:
        if self.daemon is None:
            return ""
        try:
            return str(self.daemon.state)
        except Exception:  # a broken optional part must not break the prompt
            return "unavailable"

    def close(self) -> None:
        for part in (self.guard.trust, self.daemon):
            close = getattr(part, "close", None)
            if close is not None:
                with contextlib.suppress(Exception):
                    close()


def build_guard(config: Config) -> Wired:
    from attyguard.engine.classify import classify
    from attyguard.guard import Guard

    notes: list[str] = []
    trust = None
    try:
        from attyguard.trust import open_trust_store

        trust, warning = open_trust_store()
        if warning:
            notes.append(f"trust store: {warning}")
    except Exception as exc:  # a broken optional part degrades, it never stops the shell
        notes.append(f"trust store unavailable: {exc}")
    daemon = None
    if config.guard.daemon_socket_path:
        try:
            from attyguard.daemon.client import DaemonClient

            daemon = DaemonClient(config.guard.daemon_socket_path,
                                  config.guard.daemon_timeout_ms)
        except Exception as exc:
            notes.append(f"daemon client unavailable ({exc}); in-process verdicts only")
    return Wired(Guard(classify, trust=trust, daemon=daemon), daemon, notes)


class GuardLoader:
    """Builds the Guard on a thread once the first prompt is up.

    Loading the engine (parser, rules) takes longer than everything else at
    start-up; the user is typing meanwhile. `get()` waits for it, so nothing
    is ever forwarded unclassified.
    """

    def __init__(self, config: Config) -> None:
        self.config = config
        self._thread: threading.Thread | None = None
        self._wired: Wired | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        with self._lock:
            if self._thread is None:
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


def _refuse_all(line: str) -> Any:
    from attyguard.engine.verdict import Action, Verdict

    return Verdict(Action.BLOCK, notes=("classifier unavailable",))
