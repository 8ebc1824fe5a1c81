"""The only place a SparkSession is built.

Three engines, one code path:

* ``sail`` (default): LakeSail's Spark Connect server started in this process on 127.0.0.1
  with a free port; native Delta, no JVM, starts in under a second. Stopped on exit.
* ``spark``: classic JVM Spark (``local[*]`` or a master URL) with the delta-spark SQL
  extension and catalog. Delta jars come from a jar directory (``engine.delta.jars_dir`` or
  ``$LAKEHOUSE_DELTA_JARS``) or from ``spark.jars.packages`` (Maven coordinates, as
  ``delta.configure_spark_with_delta_pip`` sets them).
* ``connect``: any Spark Connect endpoint (``sc://host:port``).

If a session already exists (``spark-submit``, a notebook, Databricks) it is used as is.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import re
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pyspark.sql import SparkSession

from lakehouse.config.base import IDENTIFIER
from lakehouse.config.bundle_spec import EngineSpec
from lakehouse.core.errors import EngineError, one_line

log = logging.getLogger(__name__)

EngineKind = Literal["sail", "spark", "connect"]
ENV_DELTA_JARS = "LAKEHOUSE_DELTA_JARS"
DELTA_EXTENSION = "io.delta.sql.DeltaSparkSessionExtension"
DELTA_CATALOG = "org.apache.spark.sql.delta.catalog.DeltaCatalog"


@dataclass
class EngineSession:
    """A SparkSession plus what it runs on; stops what it started."""

    spark: SparkSession
    kind: EngineKind
    owned: bool
    started_in_s: float = 0.0
    log_file: Path | None = None
    remote: str | None = None
    mode: str = ""  # how the engine runs, for the summary: "local-cluster, 2 workers"
    _server: object | None = field(default=None, repr=False)

    def stop(self) -> None:
        """Stop the session (and the embedded server) if this process built them."""
        if not self.owned:
            return
        self.owned = False
        with contextlib.suppress(Exception):
            self.spark.stop()
        if self._server is not None:
            with contextlib.suppress(Exception):
                self._server.stop()  # type: ignore[attr-defined]
            self._server = None

    def __enter__(self) -> EngineSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def delta_maven_coordinates() -> list[str]:
    """Maven coordinates of the Delta jars matching the installed delta-spark wheel."""
    from importlib.metadata import version

    return [f"io.delta:delta-spark_2.13:{version('delta-spark')}"]


def under_spark_submit() -> bool:
    """True when this Python process is the driver of a ``spark-submit`` run."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


def build_session(
    spec: EngineSpec,
    *,
    warehouse_dir: Path,
    app_name: str = "lakehouse",
    log_dir: Path | None = None,
    delta: bool = True,
    catalog: str | None = None,
) -> EngineSession:
    """Return a session for ``spec``, reusing an active one (notebook, spark-submit) if present.

    ``delta=False`` builds a JVM session without the Delta extension (pure DataFrame work,
    e.g. the engine start-up benchmark); Sail always has Delta. ``catalog`` names the
    embedded Sail server's default catalog (the project's), so ``catalog.schema.table`` and
    ``USE CATALOG`` work there as on Databricks.
    """
    active = SparkSession.getActiveSession()
    if active is not None:
        kind: EngineKind = "connect" if _is_remote(active) else "spark"
        log.info("using the active %s session", kind)
        if kind == "spark" and delta:
            require_delta_classes(active)
            write_portable_timestamps(active)
        return EngineSession(active, kind, owned=False)
    if under_spark_submit():
        return _spark_submit_session(app_name, warehouse_dir)
    warehouse_dir.mkdir(parents=True, exist_ok=True)
    if spec.kind == "sail":
        return _sail_session(spec, warehouse_dir, app_name, catalog)
    if spec.kind == "spark":
        return _jvm_session(
            spec, warehouse_dir, app_name, log_dir or warehouse_dir.parent / "logs", delta=delta
        )
    return _connect_session(spec, app_name)


def _is_remote(spark: SparkSession) -> bool:
    return type(spark).__module__.startswith("pyspark.sql.connect")


def _sail_session(
    spec: EngineSpec, warehouse_dir: Path, app_name: str, catalog: str | None = None
) -> EngineSession:
    os.environ.setdefault("RUST_LOG", "error")
    from pysail.spark import SparkConnectServer

    started = time.perf_counter()
    settings = sail_settings(spec, catalog)
    with _environment(settings):  # Sail reads its settings from SAIL_* when the server is made
        server = SparkConnectServer("127.0.0.1", 0)
        server.start(background=True)
    address = server.listening_address
    if address is None:
        raise EngineError("the embedded Sail server did not start")
    host, port = address
    builder = SparkSession.builder.remote(f"sc://{host}:{port}").appName(app_name)
    builder = builder.config("spark.sql.warehouse.dir", str(warehouse_dir.resolve()))
    # managed tables (saveAsTable, CREATE TABLE without USING) are Delta, as on Databricks
    builder = builder.config("spark.sql.sources.default", "delta")
    for key, value in spec.conf.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    session = EngineSession(
        spark,
        "sail",
        owned=True,
        started_in_s=time.perf_counter() - started,
        remote=f"sc://{host}:{port}",
        mode=sail_mode_label(settings),
        _server=server,
    )
    atexit.register(session.stop)
    log.info(
        "embedded Sail engine (%s) on %s:%s (%.2fs)", session.mode, host, port, session.started_in_s
    )
    return session


def _connect_session(spec: EngineSpec, app_name: str) -> EngineSession:
    started = time.perf_counter()
    assert spec.remote is not None  # checked by EngineSpec
    _require_reachable(spec.remote)
    builder = SparkSession.builder.remote(spec.remote).appName(app_name)
    for key, value in spec.conf.items():
        builder = builder.config(key, value)
    try:
        spark = builder.getOrCreate()
        spark.sql("SELECT 1").collect()
    except Exception as exc:
        raise EngineError(
            f"cannot reach Spark Connect at {spec.remote}: {one_line(exc, with_type=False)}"
        ) from exc
    session = EngineSession(
        spark, "connect", owned=True, started_in_s=time.perf_counter() - started, remote=spec.remote
    )
    atexit.register(session.stop)
    return session


def _require_reachable(url: str, timeout_s: float = 5.0) -> None:
    """Fail fast (the Connect client retries for minutes) when nothing listens at ``url``."""
    import socket
    from urllib.parse import urlparse

    parsed = urlparse(url.replace("sc://", "http://", 1))
    host, port = parsed.hostname or "localhost", parsed.port or 15002
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            pass
    except OSError as exc:
        raise EngineError(
            f"cannot reach Spark Connect at {url}: {exc.strerror or exc} "
            "(is the server running? set LAKEHOUSE_REMOTE or the target's engine.remote)"
        ) from exc


def jvm_delta_jars(spec: EngineSpec) -> list[str]:
    """Jar files from the configured Delta jar directory (config wins over the env var)."""
    jars_dir = spec.delta.jars_dir or os.environ.get(ENV_DELTA_JARS)
    if not jars_dir:
        return []
    directory = Path(jars_dir).expanduser()
    if not directory.is_dir():
        raise EngineError(
            f"Delta jar directory {directory} does not exist (engine.delta.jars_dir / {ENV_DELTA_JARS})"
        )
    jars = sorted(str(p.resolve()) for p in directory.glob("*.jar"))
    if not jars:
        raise EngineError(f"no .jar files in the Delta jar directory {directory}")
    return jars


@dataclass(frozen=True)
class DeltaClasspath:
    """Where JVM Spark gets the Delta Lake jars: jar files, Maven coordinates, or the
    target's own ``spark.jars``/``spark.jars.packages`` conf (then nothing is added)."""

    jars: tuple[str, ...] = ()
    packages: tuple[str, ...] = ()
    from_conf: bool = False

    @property
    def has_delta(self) -> bool:
        return bool(self.jars or self.packages or self.from_conf)


def delta_classpath(spec: EngineSpec) -> DeltaClasspath:
    """The Delta jars of a ``spark`` target, in order: ``engine.conf`` naming jars itself,
    ``engine.delta.jars_dir``, ``$LAKEHOUSE_DELTA_JARS``, ``engine.delta.packages`` (default:
    delta-spark matching the installed wheel, from Maven Central; ``[]``: no Delta)."""
    if "spark.jars" in spec.conf or "spark.jars.packages" in spec.conf:
        given = spec.conf.get("spark.jars", "") + spec.conf.get("spark.jars.packages", "")
        return DeltaClasspath(from_conf="delta" in given.lower())
    jars = jvm_delta_jars(spec)
    if jars:
        return DeltaClasspath(jars=tuple(jars))
    packages = delta_maven_coordinates() if spec.delta.packages is None else spec.delta.packages
    return DeltaClasspath(packages=tuple(packages))


# JVM Spark (and delta-spark, which reverted its INT64 default) writes TIMESTAMP columns as
# Parquet INT96, deprecated by the Parquet format; Sail 0.7.2 cannot read those ("Cannot cast
# column ... from 'Timestamp(µs)' (physical) to 'Timestamp(µs, "UTC")' (logical)"). INT64
# microseconds is what Sail, delta-rs, DuckDB and delta-kernel write and read.
PORTABLE_PARQUET_CONF = {"spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS"}


def write_portable_timestamps(spark: SparkSession) -> None:
    """Have a JVM session the project did not build write INT64 timestamps, unless its
    configuration chose an encoding itself."""
    for key, value in PORTABLE_PARQUET_CONF.items():
        if spark.sparkContext.getConf().get(key) is None:
            spark.conf.set(key, value)


def local_cores(master: str) -> int | None:
    """Worker threads of a ``local``/``local[N]``/``local[*]``/``local[N,F]`` master; None
    for a cluster master."""
    if master == "local":
        return 1
    match = re.fullmatch(r"local\[(\*|\d+)(?:,\s*\d+)?\]", master)
    if match is None:
        return None
    if match.group(1) == "*":
        return os.cpu_count() or 1
    return max(1, int(match.group(1)))


def local_mode_conf(master: str) -> dict[str, str]:
    """Partition counts sized to one machine for a local master (none for a cluster).

    Spark's and Delta's defaults are sized for clusters: 200 shuffle partitions, 50 tasks to
    rebuild each Delta snapshot, 10,000 to list a table's files for VACUUM. On a laptop those
    tasks are pure overhead: the demo's ingest made 3,671 tasks for 1 MB of input and took
    6 minutes. The target's ``engine.conf`` wins over these.
    """
    cores = local_cores(master)
    if cores is None:
        return {}
    return {
        "spark.sql.shuffle.partitions": str(2 * cores),
        "spark.databricks.delta.snapshotPartitions": str(cores),
        "spark.sql.sources.parallelPartitionDiscovery.parallelism": str(2 * cores),
    }


ENV_SAIL_MODE = "SAIL_MODE"


def sail_env_name(key: str) -> str:
    """The environment variable Sail reads a dotted setting from (``cluster.worker_task_slots``
    -> ``SAIL_CLUSTER__WORKER_TASK_SLOTS``)."""
    return "SAIL_" + key.replace(".", "__").upper()


def sail_settings(spec: EngineSpec, catalog: str | None = None) -> dict[str, str]:
    """The Sail server settings of ``spec``, as the ``SAIL_*`` variables Sail reads at start.

    The mode comes from the spec, else ``$SAIL_MODE``, else ``local``. One in-memory catalog
    named ``catalog`` (Sail's own default is ``sail``) is the default catalog. Settings the
    spec leaves out keep what the environment says (a deployment may set them there).
    """
    mode = spec.mode or os.environ.get(ENV_SAIL_MODE) or "local"
    settings: dict[str, str] = {"mode": mode}
    if catalog and re.match(IDENTIFIER, catalog):
        settings["catalog.list"] = (
            f'[{{type="memory", name="{catalog}", initial_database=["default"]}}]'
        )
        settings["catalog.default_catalog"] = catalog
    cluster = {
        "cluster.worker_initial_count": spec.workers,
        "cluster.worker_max_count": spec.max_workers,
        "cluster.worker_task_slots": spec.task_slots,
    }
    settings.update({key: str(value) for key, value in cluster.items() if value is not None})
    if spec.kubernetes is not None:
        pod = spec.kubernetes.model_dump(exclude={"worker_pod_template"})
        settings.update({f"kubernetes.{key}": str(value) for key, value in pod.items()})
        if spec.kubernetes.worker_pod_template is not None:
            settings["kubernetes.worker_pod_template"] = json.dumps(
                spec.kubernetes.worker_pod_template
            )
    settings.update(spec.sail)
    return {sail_env_name(key): value for key, value in settings.items()}


def sail_mode_label(settings: dict[str, str]) -> str:
    """``local``, or the cluster mode with its worker count (``local-cluster, 2 workers``)."""
    mode = settings.get(sail_env_name("mode"), "local")
    if mode == "local":
        return mode
    key = sail_env_name("cluster.worker_initial_count")
    workers = settings.get(key) or os.environ.get(key) or "4"  # Sail's default
    return f"{mode}, {workers} workers"


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """``values`` set in the environment for the ``with`` block, then restored."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def jvm_spark_conf(spec: EngineSpec, warehouse_dir: Path) -> dict[str, str]:
    """The Spark conf the ``spark`` engine starts with (also used for spark-submit lines)."""
    conf = {
        "spark.sql.extensions": DELTA_EXTENSION,
        "spark.sql.catalog.spark_catalog": DELTA_CATALOG,
        "spark.sql.warehouse.dir": str(warehouse_dir.resolve()),
        "spark.ui.showConsoleProgress": "false",
        **PORTABLE_PARQUET_CONF,
        **local_mode_conf(spec.master),
    }
    conf.update(spec.conf)
    classpath = delta_classpath(spec)
    if classpath.jars:
        conf["spark.jars"] = ",".join(classpath.jars)
    elif classpath.packages:
        conf["spark.jars.packages"] = ",".join(classpath.packages)
    return conf


HOW_TO_SUPPLY_DELTA = (
    f"put delta-spark_2.13 and delta-storage jars in a directory and set {ENV_DELTA_JARS}=DIR "
    "(or engine.delta.jars_dir in bundle.yml), or run where Maven Central is reachable "
    "(spark.jars.packages / spark-submit --packages io.delta:delta-spark_2.13:VERSION), "
    "or use the default embedded engine (--engine sail)"
)


def _jvm_session(
    spec: EngineSpec, warehouse_dir: Path, app_name: str, log_dir: Path, *, delta: bool
) -> EngineSession:
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    # Python workers run this interpreter (with this environment's packages) unless told otherwise.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    if delta:
        conf = jvm_spark_conf(spec, warehouse_dir)
    else:
        conf = {
            "spark.sql.warehouse.dir": str(warehouse_dir.resolve()),
            "spark.ui.showConsoleProgress": "false",
            **PORTABLE_PARQUET_CONF,
            **local_mode_conf(spec.master),
            **spec.conf,
        }
    builder = SparkSession.builder.master(spec.master).appName(app_name)
    for key, value in conf.items():
        builder = builder.config(key, value)
    log_dir.mkdir(parents=True, exist_ok=True)
    log_file = log_dir / f"spark-jvm-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
    started = time.perf_counter()
    try:
        with _stderr_to(log_file):
            spark = builder.getOrCreate()
    except Exception as exc:
        detail = _jvm_failure_detail(log_file) or one_line(exc, with_type=False)
        raise EngineError(
            f"JVM Spark could not start with Delta Lake ({detail}): {HOW_TO_SUPPLY_DELTA}; "
            f"JVM log: {log_file}"
        ) from exc
    session = EngineSession(
        spark,
        "spark",
        owned=True,
        started_in_s=time.perf_counter() - started,
        log_file=log_file,
        mode=f"master {spec.master}",
    )
    try:
        if delta:
            require_delta_classes(spark)
    except EngineError:
        session.stop()
        raise
    atexit.register(session.stop)
    log.info(
        "JVM Spark %s on %s (%.1fs); JVM log: %s",
        spark.version,
        spec.master,
        session.started_in_s,
        log_file,
    )
    return session


def _spark_submit_session(app_name: str, warehouse_dir: Path) -> EngineSession:
    builder = SparkSession.builder.appName(app_name)
    builder = builder.config("spark.sql.extensions", DELTA_EXTENSION)
    builder = builder.config("spark.sql.catalog.spark_catalog", DELTA_CATALOG)
    spark = builder.getOrCreate()
    require_delta_classes(spark)
    write_portable_timestamps(spark)
    return EngineSession(spark, "spark", owned=False)


HOW_TO_SUPPLY_DELTA_TO_SPARK_SUBMIT = (
    "pass spark-submit --packages io.delta:delta-spark_2.13:VERSION (needs Maven access) "
    "or --jars with the delta-spark_2.13 and delta-storage jars"
)


def require_delta_classes(spark: SparkSession) -> None:
    """Fail with one line when the JVM cannot load the Delta Lake classes."""
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    try:
        loader = jvm.java.lang.Thread.currentThread().getContextClassLoader()
        jvm.java.lang.Class.forName(DELTA_EXTENSION, True, loader)
    except Exception as exc:
        how = HOW_TO_SUPPLY_DELTA_TO_SPARK_SUBMIT if under_spark_submit() else HOW_TO_SUPPLY_DELTA
        raise EngineError(
            f"JVM Spark cannot load the Delta Lake classes ({DELTA_EXTENSION} not on the classpath): {how}"
        ) from exc


@contextlib.contextmanager
def _stderr_to(path: Path) -> Iterator[None]:
    """Send file descriptor 2 to ``path`` while the JVM is launched, so its log lands there."""
    sys.stderr.flush()
    saved = os.dup(2)
    with path.open("ab") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def _jvm_failure_detail(log_file: Path) -> str | None:
    try:
        text = log_file.read_text(errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        if "unresolved dependency" in line:
            start = line.find("[unresolved dependency")
            return line[start:].strip("[] ") if start >= 0 else line.strip()
        if "ClassNotFoundException" in line and "delta" in line.lower():
            return line.strip()
    return None
