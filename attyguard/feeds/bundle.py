"""The feed bundle: versioned, content-hashed, switched atomically.

`attyguard feeds update` compiles the sources into one JSON file
`<data>/feeds/bundle-<sha12>.json` (the hash of its rules), then points
`<data>/feeds/current` at it with an atomic rename. A failed or interrupted
update never touches `current`, so the previous bundle stays in use; old bundles
beyond the last three are removed after a successful switch.

Sources are a folder, a tarball (`.tar`, `.tar.gz`, `.tgz`; extracted with
tarfile's `data` filter: no absolute paths, links out of the tree or devices)
or an http(s) URL of a tarball (fetched where the machine has a network).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["BUNDLE_FORMAT", "FeedError", "bundle_dir", "load_current", "materialise",
           "write_bundle"]

BUNDLE_FORMAT = 1
KEEP = 3
MAX_DOWNLOAD = 256 << 20


class FeedError(Exception):
    """One line for the user: a source that cannot be read, a bundle that cannot be written."""


def bundle_dir(data: Path | None = None) -> Path:
    if data is None:
        from attyguard.paths import data_dir

        data = data_dir()
    return data / "feeds"


@contextlib.contextmanager
def materialise(source: str) -> Iterator[tuple[Path, dict[str, Any]]]:
    """A local folder for `source` (extracted or fetched), with what identifies it."""
    if source.startswith(("http://", "https://")):
        import urllib.request

        with tempfile.TemporaryDirectory(prefix="agfeed-") as tmp:
            archive = Path(tmp) / "feed.tar"
            try:
                with urllib.request.urlopen(source, timeout=60) as response, \
                        open(archive, "wb") as out:
                    size = 0
                    while chunk := response.read(1 << 16):
                        size += len(chunk)
                        if size > MAX_DOWNLOAD:
                            raise FeedError(f"{source}: larger than {MAX_DOWNLOAD >> 20} MiB")
                        out.write(chunk)
            except OSError as exc:
                raise FeedError(f"{source}: cannot fetch: {exc}") from None
            with _extracted(archive) as folder:
                yield folder, {"location": source}
        return
    path = Path(source).expanduser()
    if not path.exists():
        raise FeedError(f"{source}: no such file or directory")
    if path.is_dir():
        yield path, {"location": str(path.resolve()), **_git_commit(path)}
        return
    with _extracted(path) as folder:
        yield folder, {"location": str(path.resolve())}


@contextlib.contextmanager
def _extracted(archive: Path) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="agfeed-") as tmp:
        try:
            with tarfile.open(archive) as tar:
                tar.extractall(tmp, filter="data")
        except (tarfile.TarError, OSError) as exc:
            raise FeedError(f"{archive}: not a readable tarball: {exc}") from None
        yield Path(tmp)


def _git_commit(path: Path) -> dict[str, str]:
    try:
        out = subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=10, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return {}
    return {"commit": out.stdout.strip()} if out.returncode == 0 else {}


def tree_digest(files: list[Path]) -> str:
    """SHA-256 over the files' relative names and contents: the source's identity."""
    digest = hashlib.sha256()
    for file in sorted(files):
        digest.update(file.name.encode() + b"\0" + file.read_bytes() + b"\0")
    return digest.hexdigest()


def write_bundle(content: dict[str, Any], directory: Path) -> Path:
    """Write `content` as a new bundle and switch `current` to it atomically."""
    rules = {k: content[k] for k in ("sigma", "gtfobins")}
    sha = hashlib.sha256(json.dumps(rules, sort_keys=True).encode()).hexdigest()
    bundle = {"format": BUNDLE_FORMAT, "version": sha[:12],
              "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **content}
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o755)
        target = directory / f"bundle-{sha[:12]}.json"
        fd, tmp = tempfile.mkstemp(prefix=".bundle-", dir=directory)
        with os.fdopen(fd, "w") as out:
            json.dump(bundle, out, separators=(",", ":"))
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
        fd, tmp = tempfile.mkstemp(prefix=".current-", dir=directory)
        with os.fdopen(fd, "w") as out:
            out.write(target.name + "\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, directory / "current")  # the switch: one rename
    except OSError as exc:
        raise FeedError(f"cannot write the bundle in {directory}: {exc.strerror}") from None
    old = sorted((p for p in directory.glob("bundle-*.json") if p != target),
                 key=lambda p: p.stat().st_mtime, reverse=True)
    for stale in old[KEEP - 1:]:
        with contextlib.suppress(OSError):
            stale.unlink()
    return target


def load_current(directory: Path | None = None) -> tuple[dict[str, Any] | None, str | None]:
    """The bundle in use, or None; and a one-line warning when one exists but is unusable."""
    directory = directory or bundle_dir()
    pointer = directory / "current"
    try:
        name = pointer.read_text().strip()
    except FileNotFoundError:
        return None, None
    except OSError as exc:
        return None, f"feeds: cannot read {pointer}: {exc.strerror}"
    path = directory / name
    if "/" in name or not name.startswith("bundle-"):
        return None, f"feeds: {pointer} names no bundle"
    try:
        bundle = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        return None, f"feeds: bundle {path} unusable ({exc}); run 'attyguard feeds update'"
    if not isinstance(bundle, dict) or bundle.get("format") != BUNDLE_FORMAT:
        return None, f"feeds: bundle {path} has an unknown format"
    return bundle, None
