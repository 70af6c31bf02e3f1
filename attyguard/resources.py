"""Locating the data shipped beside the code: patterns/ and shellrc/.

In a wheel they are under attyguard/_data/; in a source checkout (editable
install or PYTHONPATH) they sit at the repository root.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["data_path"]

_PKG = Path(__file__).resolve().parent


def data_path(name: str) -> Path:
    """Return the directory of shipped data `name` ("patterns" or "shellrc")."""
    packaged = _PKG / "_data" / name
    if packaged.is_dir():
        return packaged
    return _PKG.parent / name
