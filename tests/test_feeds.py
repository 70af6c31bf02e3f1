"""Feeds: the whole Sigma/GTFOBins snapshots compiled (counts per reason), matching on
exec views, the bundle's atomic switch, and the CLI's errors.

The snapshots live in ../shared/feeds (beside the repository, in CI too); they are
read from there, never copied into the project.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from attyguard.feeds.bundle import FeedError, load_current, write_bundle
from attyguard.feeds.gtfobins import compile_pages
from attyguard.feeds.match import ExecView, FeedSet
from attyguard.feeds.sigma import action_for, compile_rules

# Beside the repository (CI, the main checkout); ATTYGUARD_SHARED_DIR for a worktree elsewhere.
FEEDS = Path(os.environ.get("ATTYGUARD_SHARED_DIR")
             or Path(__file__).resolve().parent.parent.parent / "shared") / "feeds"
SIGMA = FEEDS / "sigma-linux"
GTFO = FEEDS / "gtfobins" / "_gtfobins"
needs_snapshots = pytest.mark.skipif(not SIGMA.is_dir() or not GTFO.is_dir(),
                                     reason=f"feed snapshots not found at {FEEDS}")


@pytest.fixture(scope="module")
def sigma() -> tuple[list[dict], dict[str, int]]:
    if not SIGMA.is_dir():
        pytest.skip(f"Sigma snapshot not found at {SIGMA}")
    rules, dropped = compile_rules(sorted(SIGMA.rglob("*.yml")))
    return rules, dict(dropped)


@pytest.fixture(scope="module")
def feeds(sigma: tuple[list[dict], dict[str, int]]) -> FeedSet:
    shapes, _ = compile_pages([GTFO])
    return FeedSet(sigma[0], shapes)


@needs_snapshots
def test_whole_sigma_snapshot_is_parsed_and_every_drop_counted(sigma) -> None:
    rules, dropped = sigma
    # The snapshot (SigmaHQ 8eaafff1, 210 Linux rules): every rule kept or counted.
    assert len(rules) + sum(dropped.values()) == 210
    assert len(rules) == 83
    assert dropped == {
        "logsource service auditd": 53,
        "logsource no category": 15,
        "logsource file_event": 8,
        "logsource network_connection": 5,
        "no specific literal to gate it on (would run on every line)": 37,
        "unsupported field LogonId": 2,
        "logsource service syslog": 2,
        "logsource service clamav": 1,
        "logsource service cron": 1,
        "logsource service guacamole": 1,
        "logsource service sshd": 1,
        "logsource service vsftpd": 1,
    }
    assert all(r["id"].startswith("sigma:") and r["atoms"] for r in rules)


@needs_snapshots
def test_whole_gtfobins_snapshot_is_compiled() -> None:
    shapes, dropped = compile_pages([GTFO])
    assert len({s["binary"] for s in shapes}) > 200
    assert dropped["function inherit"] == 80
    assert all(set(s["contexts"]) <= {"sudo", "suid"} and s["tokens"] for s in shapes)


@pytest.mark.parametrize(("level", "status", "fps", "expected"), [
    ("critical", "stable", [], "block"),
    ("critical", "test", [], "warn"),
    ("high", "stable", ["Unknown"], "warn"),
    ("high", "stable", ["Admins running backups"], "allow"),
    ("medium", "experimental", [], "allow"),
    ("low", "stable", [], "allow"),
])
def test_level_table(level: str, status: str, fps: list[str], expected: str) -> None:
    assert action_for(level, status, fps)[0] == expected


@needs_snapshots
@pytest.mark.parametrize(("image", "line", "title"), [
    ("/usr/bin/base64", "base64 --decode blob.txt", "Decode Base64 Encoded Text"),
    ("/usr/bin/crontab", "crontab -r", "Remove Scheduled Cron Task/Job"),
    ("/usr/bin/mkfifo", "mkfifo /tmp/backpipe",
     "Potentially Suspicious Named Pipe Created Via Mkfifo"),
])
def test_real_sigma_rules_fire_on_my_exec_views(feeds: FeedSet, image: str, line: str,
                                                title: str) -> None:
    hits = feeds.evaluate(ExecView(image, line))
    assert f"Sigma: {title}" in [h.title for h in hits]
    assert all(h.rule_id.startswith("sigma:") for h in hits)


@needs_snapshots
@pytest.mark.parametrize("line", ["ls -la", "git status", "make -j2", "vim notes.md",
                                  "tar czf site.tgz public", "ssh build01 uptime"])
def test_everyday_exec_views_stay_quiet(feeds: FeedSet, line: str) -> None:
    name = line.split()[0]
    hits = feeds.evaluate(ExecView(f"/usr/bin/{name}", line, privilege="sudo"))
    assert [h for h in hits if h.action.value != "allow"] == []


@needs_snapshots
def test_gtfobins_shapes_need_the_privilege(feeds: FeedSet) -> None:
    line = "tar cf /dev/null /dev/null --checkpoint=1 --checkpoint-action=exec=/bin/sh"
    unprivileged = feeds.evaluate(ExecView("/usr/bin/tar", line))
    assert not [h for h in unprivileged if h.rule_id.startswith("gtfobins:")]
    under_sudo = feeds.evaluate(ExecView("/usr/bin/tar", line, privilege="sudo"))
    shell = [h for h in under_sudo if h.rule_id.startswith("gtfobins:tar:")]
    assert shell and shell[0].action.value == "warn", under_sudo
    assert "(sudo)" in shell[0].title
    assert "^sudo" in feeds.atoms


def _bundle(n: int) -> dict:
    return {"sigma": [{"n": n}], "gtfobins": [], "sources": {}, "dropped": {}}


def test_bundle_switch_is_atomic_and_old_ones_pruned(tmp_path: Path) -> None:
    paths = [write_bundle(_bundle(n), tmp_path) for n in range(5)]
    current, warning = load_current(tmp_path)
    assert warning is None and current is not None and current["sigma"] == [{"n": 4}]
    assert current["version"] == paths[-1].name[7:19]
    assert len(list(tmp_path.glob("bundle-*.json"))) == 3
    # A bundle file that goes bad is reported, never half-used.
    paths[-1].write_text("{")
    current, warning = load_current(tmp_path)
    assert current is None and warning is not None and "unusable" in warning


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "attyguard", "feeds", *args], env=env,
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)


@needs_snapshots
def test_cli_update_status_and_failed_update_keeps_previous(tmp_path: Path) -> None:
    env = {**os.environ, "ATTYGUARD_HOME": str(tmp_path / "home")}
    done = _cli(env, "update", "--sigma", str(SIGMA), "--gtfobins", str(GTFO.parent), "--json")
    assert done.returncode == 0, done.stderr
    status = json.loads(done.stdout)
    assert status["counts"]["sigma"] == 83 and status["counts"]["gtfobins"] > 300
    assert status["dropped"]["sigma"]["logsource service auditd"] == 53
    before = status["bundle"]
    # A tarball of the GTFOBins pages alone: the Sigma part is kept.
    tarball = tmp_path / "g.tgz"
    with tarfile.open(tarball, "w:gz") as tar:
        tar.add(GTFO, arcname="_gtfobins")
    again = _cli(env, "update", "--gtfobins", str(tarball), "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["counts"]["sigma"] == 83
    # Failures: one line, exit 3, the bundle in use unchanged.
    for bad in (["update", "--sigma", str(tmp_path / "missing")],
                ["update", "--gtfobins", str(tmp_path / "home")],  # no pages there
                ["update"]):
        failed = _cli(env, *bad)
        assert failed.returncode == 3, failed
        assert len(failed.stderr.strip().splitlines()) == 1 and "Traceback" not in failed.stderr
    still = json.loads(_cli(env, "status", "--json").stdout)
    assert still["bundle"] == json.loads(again.stdout)["bundle"] != ""
    assert before


def test_corrupt_tarball_is_one_line(tmp_path: Path) -> None:
    from attyguard.feeds.bundle import materialise

    bad = tmp_path / "x.tgz"
    bad.write_bytes(b"not a tarball")
    with pytest.raises(FeedError, match="not a readable tarball"), materialise(str(bad)):
        pass


@needs_snapshots
def test_the_engine_judges_typed_lines_with_the_bundle(feeds: FeedSet) -> None:
    from attyguard.engine.classify import Engine
    from attyguard.engine.rules import load_rules

    engine = Engine(load_rules(), feeds=feeds)
    ids = [h.rule_id for h in engine.classify("crontab -r").rules]
    assert any(i.startswith("sigma:") for i in ids), ids
    escape = "sudo tar cf /dev/null /dev/null --checkpoint=1 --checkpoint-action=exec=/bin/sh"
    assert any(i.startswith("gtfobins:tar:") for i in
               (h.rule_id for h in engine.classify(escape).rules))
    assert engine.classify("ls -la").rules == ()
    # A clean line stops at the prefilter: no atom of the rules or of the bundle in it.
    assert not engine.atoms.candidates("ls -la")
