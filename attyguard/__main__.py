"""`python -m attyguard` behaves like the `attyguard` console script."""

from __future__ import annotations

import sys

from attyguard.cli import main

sys.exit(main())
