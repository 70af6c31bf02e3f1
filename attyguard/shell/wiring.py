"""Building the Guard the shell enforces with, from config and what is installed.

The trust store (attyguard.trust) and the daemon client
(attyguard.daemon.client) are built on other branches; until they land, or
when they are broken, the shell keeps working on the in-process engine and
says so once. Light on purpose: the non-interactive modes use it too.
"""

from __future__ import annotations

import contextlib
import importlib
from dataclasses import dataclass, field
from typing import Any

from attyguard.config import Config
from attyguard.guard import Guard

__all__ = ["Wired", "build_guard"]


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

    notes: list[str] = []
    trust = None
    try:
        trust_mod = importlib.import_module("attyguard.trust")
    except ImportError:
        trust_mod = None
    if trust_mod is not None:
        try:
            trust, warning = trust_mod.open_trust_store()
            if warning:
                notes.append(f"trust store: {warning}")
        except Exception as exc:
            notes.append(f"trust store unavailable: {exc}")
    daemon = None
    if config.guard.daemon_socket_path:
        try:
            client_mod = importlib.import_module("attyguard.daemon.client")
            daemon = client_mod.DaemonClient(config.guard.daemon_socket_path,
                                             config.guard.daemon_timeout_ms)
        except Exception as exc:
            notes.append(f"daemon client unavailable ({exc}); in-process verdicts only")
    return Wired(Guard(classify, trust=trust, daemon=daemon), daemon, notes)
