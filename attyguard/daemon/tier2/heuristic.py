"""The `heuristic` Tier-2 plugin: hand-set weights over the shared feature vector.

Each feature is treated as independent evidence with its own probability of
meaning "malicious" when fully present; they combine by noisy-OR
(`p = 1 - Π(1 - w_i·f_i)`), the same independent-probability rule the
accumulator uses across tiers, so p reads as a probability: one weak hint
(a `curl`, a `sudo`) stays near 0.05, one strong one (/dev/tcp redirection,
download piped into a shell) alone passes 0.8. Weights were set by hand
from the synthetic corpus (tools/tier2_synth.py), never from evaluation data.
"""

from __future__ import annotations

from attyguard.daemon.tier2.base import DEFAULT_THRESHOLD, Tier2Score
from attyguard.daemon.tier2.features import FEATURE_NAMES, FEATURE_REASONS, extract

__all__ = ["WEIGHTS", "HeuristicTier2", "heuristic_score"]

WEIGHTS: dict[str, float] = {
    "length": 0.04,
    "max_token_entropy": 0.0,  # used through _entropy_evidence below
    "long_token": 0.05,
    "base64_blob": 0.35,
    "hex_blob": 0.3,
    "decode_op": 0.3,
    "net_tool": 0.03,
    "dev_tcp": 0.85,
    "pipe_to_interp": 0.45,
    "inline_code": 0.1,
    "net_exec_combo": 0.8,
    "rare_binary": 0.25,
    "hidden_path": 0.35,
    "tmp_exec": 0.35,
    "chmod_exec": 0.1,
    "sensitive_file": 0.55,
    "persistence": 0.55,
    "anti_forensics": 0.6,
    "shell_spawn": 0.6,
    "socket_redirect": 0.85,
    "eval_subst": 0.35,
    "obfuscation": 0.55,
    "ip_literal": 0.08,
    "pipeline_depth": 0.05,
    "privilege": 0.05,
    "setuid_preload": 0.55,
    "destructive": 0.7,
    "background_detach": 0.1,
    "shell_path_arg": 0.6,  # 0.3 alone (docker exec … /bin/bash), 0.6 under sudo/su
}

# A contribution below this is not worth naming as a reason.
_REASON_FLOOR = 0.1


def _entropy_evidence(normalised: float) -> float:
    # Hashes and UUIDs sit near 4 bits/char, packed payloads near 5.5–6: only
    # the top of the scale is evidence.
    bits = normalised * 6.0
    return min(max((bits - 4.5) / 1.5, 0.0), 1.0) * 0.3


def heuristic_score(vec: tuple[float, ...]) -> Tier2Score:
    """Combine a feature vector (FEATURE_NAMES order) into a Tier2Score."""
    keep = 1.0
    parts: list[tuple[float, str]] = []
    for name, value in zip(FEATURE_NAMES, vec, strict=True):
        is_entropy = name == "max_token_entropy"
        contrib = _entropy_evidence(value) if is_entropy else WEIGHTS[name] * value
        if contrib > 0.0:
            keep *= 1.0 - contrib
            if contrib >= _REASON_FLOOR:
                parts.append((contrib, FEATURE_REASONS[name]))
    parts.sort(key=lambda item: -item[0])
    p = min(max(1.0 - keep, 0.0), 1.0)
    return Tier2Score(p, tuple(reason for _, reason in parts))


class HeuristicTier2:
    """Noisy-OR of hand-weighted features; pure, microseconds per line."""

    name = "heuristic"
    threshold = DEFAULT_THRESHOLD

    def score(self, line: str) -> Tier2Score:
        try:
            return heuristic_score(extract(line))
        except Exception as exc:  # never raise into the daemon; a bug here is a reason
            return Tier2Score(0.0, (f"heuristic failed: {type(exc).__name__}",))
