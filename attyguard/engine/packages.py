"""Moved to attyguard.engine.matchers.packages; this name stays for existing imports."""

from attyguard.engine.matchers.packages import (
    ECOSYSTEMS,
    PackageMatcher,
    installs,
    skeleton,
    within_one_edit,
)

__all__ = ["ECOSYSTEMS", "PackageMatcher", "installs", "skeleton", "within_one_edit"]
