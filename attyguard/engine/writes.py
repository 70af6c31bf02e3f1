"""Moved to attyguard.engine.matchers.writes; this name stays for existing imports."""

from attyguard.engine.matchers.writes import HOWS, WritesMatcher, written_files

__all__ = ["HOWS", "WritesMatcher", "written_files"]
