"""The pure Tier-1 classification core: no I/O, no terminal, no asyncio.

`classify(line)` in attyguard.engine.classify is the only entry point.
"""

from __future__ import annotations

from attyguard.engine.verdict import Action, RuleHit, Severity, Source, Verdict

__all__ = ["Action", "RuleHit", "Severity", "Source", "Verdict"]
