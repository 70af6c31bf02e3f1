"""attyguard: a guarded interactive shell.

Every command line is classified before bash sees it; see docs/ and README.md.
"""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
