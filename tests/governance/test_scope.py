"""A task scope closes with the outcome it ended with; subscribers flush through the system store."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from lakehouse.config import load_project
from lakehouse.config.project import Project
from lakehouse.governance.events import (
    EventSink,
    GovernanceEvent,
    TableRead,
    TaskOutcome,
    TaskStarted,
)
from lakehouse.governance.scope import GovernanceScope
from lakehouse.io.store import TableStore

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    root = tmp_path_factory.mktemp("scope_conf")
    shutil.copy(REPO / "bundle.yml", root / "bundle.yml")
    shutil.copytree(REPO / "conf", root / "conf")
    return load_project(root, var_overrides={"data_root": str(root / "data")})


class Recorder:
    """A subscriber that keeps what it saw."""

    def __init__(self) -> None:
        self.events: list[GovernanceEvent] = []
        self.flushes: list[tuple[Any, TaskOutcome]] = []

    def handle(self, event: GovernanceEvent) -> None:
        self.events.append(event)

    def flush(self, store: TableStore, outcome: TaskOutcome) -> None:
        self.flushes.append((store, outcome))


def test_a_scope_passes_its_outcome_to_the_subscribers(project: Project) -> None:
    seen, store = Recorder(), object()
    scope = GovernanceScope(
        project,
        "someone",
        run_id="r1",
        job="demo",
        events=EventSink([seen]),
        system_store=store,  # type: ignore[arg-type]
    )
    with scope.task_scope("ok"):
        assert scope.task == "ok"
        scope.events.publish(TableRead("c.s.t", 3))
    boom = RuntimeError("boom")
    with pytest.raises(RuntimeError), scope.task_scope("failing"):
        raise boom
    assert scope.task == "demo"
    assert seen.events == [TaskStarted("ok"), TableRead("c.s.t", 3), TaskStarted("failing")]
    assert [(s is store, o.failed, o.error) for s, o in seen.flushes] == [
        (True, False, None),
        (True, True, boom),
    ]


def test_without_a_system_store_nothing_is_flushed(project: Project) -> None:
    seen = Recorder()
    scope = GovernanceScope(project, "someone", run_id="r1", job="demo", events=EventSink([seen]))
    with scope.task_scope("t"):
        pass
    assert seen.events == [TaskStarted("t")] and seen.flushes == []
