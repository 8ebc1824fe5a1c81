"""Allow ``python -m lakehouse.cli``."""

from __future__ import annotations

from lakehouse.cli import main

main()
