"""Tier-2 plugins (V2-C): `load_tier2(name)` -> a plugin scoring lines with a probability.

Three plugins behind one interface (`Tier2`): `stub` (no signal), `heuristic`
(hand-weighted features) and `onnx` (a small model shipped in this package,
run by onnxruntime). Nothing heavy is imported until a plugin is asked for:
numpy and onnxruntime load only when `onnx` is chosen, and a missing or broken
model or runtime degrades to `heuristic` with one warning.
"""

from __future__ import annotations

from pathlib import Path

from attyguard.daemon.tier2.base import DEFAULT_THRESHOLD, Tier2, Tier2Score

__all__ = ["DEFAULT_THRESHOLD", "TIER2_NAMES", "Tier2", "Tier2Score", "load_tier2"]

TIER2_NAMES = ("stub", "heuristic", "onnx")


def load_tier2(name: str, *, model_path: Path | None = None) -> tuple[Tier2, str | None]:
    """The plugin called `name` and an optional one-line warning; never raises.

    An unknown name or an onnx plugin that cannot load gives `heuristic` and
    says why, so the daemon keeps a Tier-2 opinion whatever the config says.
    """
    from attyguard.daemon.tier2.heuristic import HeuristicTier2

    if name == "stub":
        from attyguard.daemon.tier2.stub import StubTier2

        return StubTier2(), None
    if name == "heuristic":
        return HeuristicTier2(), None
    if name == "onnx":
        from attyguard.daemon.tier2.onnx import load_onnx

        plugin, why = load_onnx(model_path)
        if plugin is None:
            return HeuristicTier2(), f"tier2 onnx unavailable ({why}); using heuristic"
        return plugin, None
    choices = ", ".join(TIER2_NAMES)
    return HeuristicTier2(), f"unknown tier2 plugin {name!r} (choose {choices}); using heuristic"
