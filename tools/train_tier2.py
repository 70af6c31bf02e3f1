"""Train the `onnx` Tier-2 model and write it as a small ONNX file.

    .venv/bin/python tools/train_tier2.py [--out PATH] [--seed N] [--check]

Data: only the synthetic corpus of tools/tier2_synth.py (templates written for
this project, fixed seed), turned into feature vectors by the same pure
`attyguard.daemon.tier2.features.extract` the plugins use at run time.
Model: scikit-learn's LogisticRegression over standardised features (a
calibrated probability, a handful of weights). The graph is written with the
`onnx` helper API rather than skl2onnx so that it can also output each
feature's contribution (the plugin's `reasons`) and stays a few hundred bytes:

    z = (x - mean) / scale;  contrib = z * coef;  p = sigmoid(sum(contrib) + bias)

Needs the `train` extra (scikit-learn, onnx, numpy); the run time needs only
onnxruntime + numpy. `--check` retrains in memory and exits 1 if the shipped
model's weights differ (reproducibility).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(_ROOT / "tools"))
sys.path.insert(0, str(_ROOT))

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import tier2_synth  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from attyguard.daemon.tier2.features import FEATURE_NAMES, extract  # noqa: E402

__all__ = ["build_model", "main", "train"]

DEFAULT_OUT = _ROOT / "attyguard" / "daemon" / "tier2" / "model.onnx"
# Benign lines outnumber malicious ones 4:1 and no class re-weighting is done:
# the real base rate of attacks is far lower still, and p should not overstate.
N_BENIGN = 8000
N_MALICIOUS = 2000
# Opset/IR kept old on purpose: any onnxruntime from 1.14 on loads it.
OPSET = 17
IR_VERSION = 8


def train(seed: int = tier2_synth.DEFAULT_SEED) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Fit on the synthetic corpus; return (mean, scale, coef, bias) as float32/float."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    lines, labels = tier2_synth.corpus(N_BENIGN, N_MALICIOUS, seed)
    x = np.array([extract(line) for line in lines], dtype=np.float64)
    y = np.array(labels, dtype=np.int64)
    scaler = StandardScaler().fit(x)
    # A constant feature has scale 1 in sklearn already (no division by zero).
    # Strong L2 (small C): templates are narrower than real command lines, and a
    # loosely regularised fit turns that into over-confident p. C was chosen by
    # comparing C in {1, 0.3, 0.1, 0.03, 0.01} on the dev split's calibration
    # (bench/tier2_report.py); the weights themselves see synthetic data only.
    clf = LogisticRegression(C=0.03, max_iter=5000)
    clf.fit(scaler.transform(x), y)
    return (
        scaler.mean_.astype(np.float32),
        scaler.scale_.astype(np.float32),
        clf.coef_[0].astype(np.float32),
        float(clf.intercept_[0]),
    )


def build_model(
    mean: np.ndarray, scale: np.ndarray, coef: np.ndarray, bias: float
) -> onnx.ModelProto:
    """The ONNX graph: input `features` [N, F] -> outputs `p` [N], `contrib` [N, F]."""
    n = len(FEATURE_NAMES)
    inits = [
        numpy_helper.from_array(mean.reshape(1, n), "mean"),
        numpy_helper.from_array(scale.reshape(1, n), "scale"),
        numpy_helper.from_array(coef.reshape(1, n), "coef"),
        numpy_helper.from_array(np.array([bias], dtype=np.float32), "bias"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "axis1"),
    ]
    nodes = [
        helper.make_node("Sub", ["features", "mean"], ["centred"]),
        helper.make_node("Div", ["centred", "scale"], ["z"]),
        helper.make_node("Mul", ["z", "coef"], ["contrib"]),
        helper.make_node("ReduceSum", ["contrib", "axis1"], ["logit0"], keepdims=0),
        helper.make_node("Add", ["logit0", "bias"], ["logit"]),
        helper.make_node("Sigmoid", ["logit"], ["p"]),
    ]
    graph = helper.make_graph(
        nodes,
        "attyguard_tier2_logreg",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", n])],
        [
            helper.make_tensor_value_info("p", TensorProto.FLOAT, ["N"]),
            helper.make_tensor_value_info("contrib", TensorProto.FLOAT, ["N", n]),
        ],
        inits,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="attyguard-train_tier2"
    )
    model.ir_version = IR_VERSION
    # The feature order is part of the model: the plugin refuses a mismatch.
    helper.set_model_props(model, {"feature_names": ",".join(FEATURE_NAMES)})
    onnx.checker.check_model(model)
    return model


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Train the Tier-2 ONNX model on synthetic data.")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--seed", type=int, default=tier2_synth.DEFAULT_SEED)
    ap.add_argument(
        "--check", action="store_true", help="compare with the model at --out, write nothing"
    )
    args = ap.parse_args(argv)
    mean, scale, coef, bias = train(args.seed)
    if args.check:
        try:
            shipped = onnx.load(str(args.out))
        except Exception as exc:  # any unreadable file: say so, exit 2
            print(f"train_tier2: cannot read {args.out}: {exc}", file=sys.stderr)
            return 2
        got = {t.name: numpy_helper.to_array(t) for t in shipped.graph.initializer}
        same = all(
            np.allclose(got[name].ravel(), want.ravel(), atol=1e-4)
            for name, want in (
                ("mean", mean),
                ("scale", scale),
                ("coef", coef),
                ("bias", np.array([bias], dtype=np.float32)),
            )
        )
        print(
            "train_tier2: shipped model " + ("matches" if same else "DIFFERS from") + " a retrain"
        )
        return 0 if same else 1
    model = build_model(mean, scale, coef, bias)
    args.out.write_bytes(model.SerializeToString())
    size = args.out.stat().st_size
    print(f"train_tier2: wrote {args.out} ({size} bytes, {len(FEATURE_NAMES)} features)")
    for name, w in sorted(zip(FEATURE_NAMES, coef, strict=True), key=lambda t: -abs(t[1]))[:10]:
        print(f"  {name:<20} {w:+.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
