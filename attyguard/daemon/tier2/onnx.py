"""The `onnx` Tier-2 plugin: the shipped logistic-regression model run by onnxruntime.

The model (model.onnx beside this file, ~1 KB, written by tools/train_tier2.py
from synthetic data only) takes the shared feature vector and returns p and
each feature's contribution (which become the reasons). numpy and
onnxruntime are imported only here, only when this plugin is asked for
(`attyguard[onnx]` extra). Anything wrong — runtime not installed, model
missing, corrupt, or built for other features — makes `load_onnx` return
(None, why) and the caller degrades to `heuristic` with one warning.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from attyguard.daemon.tier2.base import DEFAULT_THRESHOLD, Tier2Score
from attyguard.daemon.tier2.features import FEATURE_NAMES, FEATURE_REASONS, extract
from attyguard.daemon.tier2.heuristic import HeuristicTier2

__all__ = ["DEFAULT_MODEL", "OnnxTier2", "load_onnx"]

DEFAULT_MODEL = Path(__file__).resolve().parent / "model.onnx"

# A feature must add at least this much to the logit to be named as a reason.
_REASON_LOGIT = 0.5


class OnnxTier2:
    """One `InferenceSession.run` per line; answers like the heuristic after a runtime error."""

    name = "onnx"
    threshold = DEFAULT_THRESHOLD

    def __init__(self, session: Any, np: Any) -> None:
        self._session = session
        self._np = np
        self._fallback: HeuristicTier2 | None = None

    def score(self, line: str) -> Tier2Score:
        if self._fallback is not None:
            return self._fallback.score(line)
        try:
            vec = self._np.asarray([extract(line)], dtype=self._np.float32)
            p_arr, contrib = self._session.run(["p", "contrib"], {"features": vec})
            p = float(p_arr[0])
            if not 0.0 <= p <= 1.0:  # NaN included
                raise ValueError(f"model returned p={p!r}")
            ranked = sorted(
                (
                    (float(c), name)
                    for name, c, x in zip(FEATURE_NAMES, contrib[0], vec[0], strict=True)
                    if x > 0 and c >= _REASON_LOGIT
                ),
                reverse=True,
            )
            return Tier2Score(p, tuple(FEATURE_REASONS[name] for _, name in ranked))
        except Exception as exc:
            # Never raise into the daemon: from now on answer like the heuristic.
            self._fallback = HeuristicTier2()
            score = self._fallback.score(line)
            return Tier2Score(
                score.p, (*score.reasons, f"onnx failed ({type(exc).__name__}); heuristic used")
            )


def load_onnx(model_path: Path | None = None) -> tuple[OnnxTier2 | None, str]:
    """The plugin, or (None, a short reason) when it cannot run here."""
    path = model_path or DEFAULT_MODEL
    try:
        import numpy as np
        import onnxruntime as ort
    except Exception as exc:  # ImportError, or a broken native library
        return (
            None,
            f"onnxruntime not importable: {exc.__class__.__name__}: {exc}; install attyguard[onnx]",
        )
    try:
        data = path.read_bytes()
    except OSError as exc:
        return None, f"model {path}: {exc.strerror or exc}"
    try:
        opts = ort.SessionOptions()
        # One small model, one line at a time: threads only cost start-up and CPU.
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        session = ort.InferenceSession(data, sess_options=opts, providers=["CPUExecutionProvider"])
        names = session.get_modelmeta().custom_metadata_map.get("feature_names", "")
        if names != ",".join(FEATURE_NAMES):
            return (
                None,
                f"model {path} was trained on other features; retrain with tools/train_tier2.py",
            )
        plugin = OnnxTier2(session, np)
        probe = plugin.score("true")  # fails here, once, rather than on the first real line
        if plugin._fallback is not None:
            return None, f"model {path} does not run: {probe.reasons[-1]}"
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return None, f"model {path} is unreadable: {exc.__class__.__name__}: {first[:160]}"
    return plugin, ""
