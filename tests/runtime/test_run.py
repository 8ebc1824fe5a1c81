"""open_run: the session it starts (and the one it is given), registration, grants, task scopes."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from openlineage.client.event_v2 import RunState
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from lakehouse.config import Project, load_project
from lakehouse.config.jobs import Task
from lakehouse.core.errors import LakehouseError
from lakehouse.engine import EngineSession
from lakehouse.governance.events import TaskOutcome
from lakehouse.governance.lineage.openlineage import events_file, read_events
from lakehouse.governance.scope import AccessDeniedError
from lakehouse.governance.store import GovernedStore
from lakehouse.io.delta import DeltaStore
from lakehouse.runtime import REGISTER_TASK, RunAs, open_run
from tests.support import session_engine

pytestmark = pytest.mark.delta

REPO = Path(__file__).resolve().parents[2]
CUSTOMERS = "lakehouse.silver.customers"
AUDIT = "lakehouse.meta.access_audit"
JOB_PRINCIPAL = RunAs(explicit="lakehouse-job")


@dataclass
class RecordingSession(EngineSession):
    """The test session under another owner: counts the stops instead of stopping."""

    stops: int = 0

    def stop(self) -> None:
        self.stops += 1


class FailingRunAs(RunAs):
    def principal(self, project: Project, task: Task | None = None) -> str:
        raise LakehouseError("nobody to act as")


@pytest.fixture(autouse=True)
def _file_openlineage(monkeypatch: pytest.MonkeyPatch) -> None:
    """OpenLineage events go to the data root's JSON-lines file."""
    for name in ("OPENLINEAGE_URL", "OPENLINEAGE_CONFIG", "OPENLINEAGE_DISABLED"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    root = tmp_path_factory.mktemp("runtime")
    shutil.copy(REPO / "bundle.yml", root / "bundle.yml")
    for name in ("conf", "jobs"):
        shutil.copytree(REPO / name, root / name)
    return load_project(root, var_overrides={"data_root": str(root / "data")})


@pytest.fixture
def started(spark: SparkSession) -> RecordingSession:
    return RecordingSession(spark, session_engine(spark), owned=True)


def test_a_session_it_starts_is_stopped_a_given_one_is_not(
    project: Project, started: RecordingSession, engine_session: EngineSession
) -> None:
    with open_run(project, job="t", start_session=lambda: started, run_as=JOB_PRINCIPAL) as run:
        assert run.session is started and run.owns_session
    assert started.stops == 1
    run.close()  # closing again stops nothing more
    assert started.stops == 1

    given = RecordingSession(engine_session.spark, engine_session.kind, owned=True)
    with open_run(project, job="t", session=given, run_as=JOB_PRINCIPAL) as run:
        assert run.session is given and not run.owns_session
    assert given.stops == 0
    assert engine_session.spark.sql("SELECT 1 AS one").collect()[0].one == 1


def test_a_failed_assembly_stops_the_session_it_started(
    project: Project, started: RecordingSession
) -> None:
    with pytest.raises(LakehouseError, match="nobody to act as"):
        open_run(project, job="t", start_session=lambda: started, run_as=FailingRunAs())
    assert started.stops == 1


def test_registration_happens_once_under_the_register_scope(
    project: Project, engine_session: EngineSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    register_all = GovernedStore.register_all

    def counted(store: GovernedStore) -> None:
        calls.append(store.governance.task)
        register_all(store)

    monkeypatch.setattr(GovernedStore, "register_all", counted)
    run = open_run(project, job="t", session=engine_session, run_as=JOB_PRINCIPAL, register=True)
    assert calls == [REGISTER_TASK]
    assert all(run.store.system.is_registered(name) for name in project.tables)
    assert run.governance.task == "t"  # the register scope is closed
    run.open_task("next").close()
    unregistered = open_run(project, job="t", session=engine_session, run_as=JOB_PRINCIPAL)
    assert calls == [REGISTER_TASK]
    assert not any(unregistered.store.system.is_registered(name) for name in project.tables)


def test_the_store_enforces_grants_and_audits_the_denial(
    project: Project, engine_session: EngineSession
) -> None:
    open_run(project, job="t", session=engine_session, run_as=JOB_PRINCIPAL, register=True)
    run = open_run(project, job="t", session=engine_session, run_as=RunAs(explicit="bob"))
    assert run.principal == "bob"
    with pytest.raises(AccessDeniedError) as denied, run.open_task("explore") as scope:
        scope.store.read(CUSTOMERS)
    assert str(denied.value) == (
        f"access denied: bob may not SELECT on {CUSTOMERS} (bob lacks SELECT on {CUSTOMERS})"
    )
    spark = engine_session.spark
    audit = (
        DeltaStore(spark, project, session_engine(spark))
        .read(AUDIT)
        .where((F.col("principal") == "bob") & (F.col("run_id") == run.run_id))
        .select("privilege", "securable", "allowed", "job", "task")
        .collect()
    )
    assert [tuple(r) for r in audit] == [("SELECT", CUSTOMERS, False, "t", "explore")]


def test_task_scopes_close_with_their_outcome(
    project: Project, engine_session: EngineSession
) -> None:
    run = open_run(project, job="t", session=engine_session, run_as=JOB_PRINCIPAL, register=True)
    explicit = run.open_task("explicit")
    explicit.store.read(CUSTOMERS)
    explicit.close(TaskOutcome(RuntimeError("boom")))
    with pytest.raises(ValueError), run.open_task("raised") as scope:
        scope.store.read(CUSTOMERS)
        raise ValueError("bad row")
    with run.open_task("fine") as scope:
        scope.store.read(CUSTOMERS)
    events = read_events(events_file(project, run.run_id))
    assert [(e.job.name, e.eventType) for e in events] == [
        ("t.explicit", RunState.START),
        ("t.explicit", RunState.FAIL),
        ("t.raised", RunState.START),
        ("t.raised", RunState.FAIL),
        ("t.fine", RunState.START),
        ("t.fine", RunState.COMPLETE),
    ]


def test_a_bundle_task_acts_in_a_store_of_its_own(
    project: Project, engine_session: EngineSession
) -> None:
    run = open_run(project, job="demo", session=engine_session, run_as=RunAs(job="demo"))
    task = project.bundle.resources.jobs["demo"].tasks[0]
    with run.open_task(task.task_key, task=task) as scope:
        assert scope.store is not run.store
        assert scope.store.governance.principal == "lakehouse-job"
        assert scope.store.governance.task == task.task_key
        ctx = scope.context(parameters=["--x"], extra={"attempt": 2})
    assert (ctx.tables, ctx.report, ctx.task_key) == (scope.store, run.report, task.task_key)
    assert (ctx.parameters, ctx.extra, ctx.run_id) == (["--x"], {"attempt": 2}, run.run_id)
    assert run.governance.task == "demo"  # the run's own scope is untouched
