"""Allow ``python -m lakehouse``."""

from __future__ import annotations

from lakehouse.cli import main

main()
