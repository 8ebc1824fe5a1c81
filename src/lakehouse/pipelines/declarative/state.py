"""The incremental state of a pipeline's flows (its "checkpoints"), under the pipeline's
storage: per flow, the Delta version of each table it streamed from and the files of each
file source it processed, and whether a ``once`` flow ran. One JSON file per flow, replaced
atomically when the flow's write committed; ``--full-refresh`` deletes it.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class FlowState:
    """What one flow has consumed so far."""

    tables: dict[str, int] = field(default_factory=dict)  # source table -> Delta version read
    files: dict[str, list[str]] = field(default_factory=dict)  # source path -> file ids
    once_done: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"tables": self.tables, "files": self.files, "once_done": self.once_done}

    @classmethod
    def of(cls, data: dict[str, Any]) -> FlowState:
        return cls(
            tables={str(k): int(v) for k, v in dict(data.get("tables", {})).items()},
            files={str(k): list(v) for k, v in dict(data.get("files", {})).items()},
            once_done=bool(data.get("once_done", False)),
        )


class PipelineState:
    """The checkpoints of one pipeline (a folder under its storage)."""

    def __init__(self, storage: Path) -> None:
        self.folder = storage / "checkpoints"

    def _file(self, flow: str) -> Path:
        return self.folder / (re.sub(r"[^A-Za-z0-9_.-]", "_", flow) + ".json")

    def load(self, flow: str) -> FlowState:
        path = self._file(flow)
        if not path.is_file():
            return FlowState()
        return FlowState.of(json.loads(path.read_text()))

    def save(self, flow: str, state: FlowState) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self._file(flow)
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(state.to_json(), indent=1, sort_keys=True))
        tmp.replace(path)

    def reset(self, flow: str) -> None:
        self._file(flow).unlink(missing_ok=True)

    def reset_all(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
