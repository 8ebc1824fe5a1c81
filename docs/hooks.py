"""mkdocs build hook: generates pages from the code, so they cannot go stale.

``reference/config.md`` is rendered from the pydantic config models by
:mod:`lakehouse.config.reference` (the same text ``python -m lakehouse.config.reference``
prints). The checkout's own ``src/`` goes first on ``sys.path``, so the page documents the
code next to this file, not whatever version of the package is installed.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

SRC = Path(__file__).resolve().parents[1] / "src"
CONFIG_REFERENCE = "reference/config.md"


def on_files(files: Files, config: Any) -> Files:
    if str(SRC) not in sys.path:
        sys.path.insert(0, str(SRC))
    from lakehouse.config.reference import render

    files.append(File.generated(config, CONFIG_REFERENCE, content=render()))
    return files
