"""Per-user paths: platformdirs locations, or all under $ATTYGUARD_HOME.

ATTYGUARD_HOME is the single override (tests, sandboxes, several users on one
account): when set, config, data and state all live below it.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["config_dir", "config_file", "data_dir", "home_override", "state_dir"]

_APP = "attyguard"


def home_override() -> Path | None:
    value = os.environ.get("ATTYGUARD_HOME")
    return Path(value).expanduser() if value else None


def config_dir() -> Path:
    home = home_override()
    if home is not None:
        return home / "config"
    import platformdirs  # imported lazily: start-up time matters for a login shell

    return Path(platformdirs.user_config_dir(_APP))


def config_file() -> Path:
    return config_dir() / "config.toml"


def data_dir() -> Path:
    """Trust store and other things the user would miss if deleted."""
    home = home_override()
    if home is not None:
        return home / "data"
    import platformdirs

    return Path(platformdirs.user_data_dir(_APP))


def state_dir() -> Path:
    """History and other state that is nice to keep."""
    home = home_override()
    if home is not None:
        return home / "state"
    import platformdirs

    return Path(platformdirs.user_state_dir(_APP))
