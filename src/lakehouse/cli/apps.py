"""Long-running apps and the rest: ``ui``, ``sql serve``, ``samples serve`` and ``version``."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from lakehouse import __version__
from lakehouse.cli._context import (
    CliError,
    _governed_command,
    _load,
    _open_run,
    _options,
)
from lakehouse.cli.look import QUERY_COMMAND, SqlGroup, sql_query
from lakehouse.cli.ml import AllowedHostOpt, require_known_models
from lakehouse.cli.options import EngineOpt, ProjectDir, TargetOpt, VarOpt
from lakehouse.cli.render import console, err_console
from lakehouse.config.project import Project

if TYPE_CHECKING:
    from lakehouse.apps.sql.endpoint import SqlEndpoint
    from lakehouse.apps.sql.limits import SqlLimits
    from lakehouse.governance.scope import GovernanceScope

sql_app = typer.Typer(
    help='Spark SQL on the catalog\'s tables: `lakehouse sql "SELECT …"` prints the result; '
    "`lakehouse sql serve` is a read-only endpoint for BI tools (PostgreSQL protocol).",
    no_args_is_help=True,
    cls=SqlGroup,
    context_settings={"ignore_unknown_options": True},
)
sql_app.command(QUERY_COMMAND)(sql_query)
samples_app = typer.Typer(
    help="The demo data: generator and local sample data API.", no_args_is_help=True
)


def ui(
    model: Annotated[
        str | None,
        typer.Argument(help="A model from conf/ (default: the only one configured)."),
    ] = None,
    serving_url: Annotated[
        str, typer.Option(help="Base URL of `lakehouse serve` for the prediction form.")
    ] = "http://127.0.0.1:8000",
    port: Annotated[int, typer.Option(help="Port.")] = 8501,
    host: Annotated[str, typer.Option(help="Bind address (loopback by default).")] = "127.0.0.1",
    allowed_host: AllowedHostOpt = None,
    max_body_bytes: Annotated[
        int, typer.Option(min=1, help="Largest form body in bytes; bigger ones get 413.")
    ] = 64 * 1024,
    project_dir: ProjectDir = None,
    target: TargetOpt = None,
    engine: EngineOpt = None,
    var: VarOpt = None,
) -> None:
    """Web UI for MODEL: versions, a prediction form, data quality, drift, lineage; Ctrl-C stops."""
    from lakehouse.apps.http_guard import allowed_hosts
    from lakehouse.apps.ui.server import serve as serve_ui

    project = _load(project_dir, target, engine, var)
    if model is None:
        if len(project.models) != 1:
            raise CliError(f"name a model (configured: {', '.join(project.models) or 'none'})")
        model = next(iter(project.models))
    require_known_models(project, [model])
    allowed_hosts(allowed_host or ())  # a bad name fails before anything starts
    with _governed_command(project, "ui") as adapter:
        console.print(
            f"UI of models:/{project.models[model].registered_name} on http://{host}:{port}"
            f" · predictions from {serving_url}"
        )
        serve_ui(
            project,
            model,
            adapter,
            serving_url=serving_url,
            host=host,
            port=port,
            max_body_bytes=max_body_bytes,
            extra_hosts=allowed_host or (),
        )


# the endpoint's limits (lakehouse.apps.sql.limits.SqlLimits)
StatementTimeoutOpt = Annotated[
    float | None,
    typer.Option(
        help="Seconds a statement may run (default 300; 0: no limit; sessions may lower it)."
    ),
]
MemoryLimitOpt = Annotated[
    int | None, typer.Option(help="Memory of the whole server, MiB (default 2048).", min=64)
]
QueryMemoryOpt = Annotated[
    int | None,
    typer.Option(help="Memory per statement before sorts/joins spill, MiB (default 512).", min=16),
]
TempLimitOpt = Annotated[
    int | None,
    typer.Option(
        help="Spill space under <data_root>/_sql_endpoint/tmp, MiB (default 10240).", min=0
    ),
]
ThreadsOpt = Annotated[int | None, typer.Option(help="Worker threads (default 2).", min=1)]
MaxResultRowsOpt = Annotated[
    int | None,
    typer.Option(help="Rows one statement may return (default 0: no cap; then 54000).", min=0),
]
MaxResultBytesOpt = Annotated[
    int | None,
    typer.Option(help="Result bytes one statement may send (default 0: no cap).", min=0),
]
MaxConnectionsOpt = Annotated[
    int | None, typer.Option(help="Clients connected at once (default 64; then 53300).", min=1)
]
QueryLogOpt = Annotated[
    bool, typer.Option(help="Record every statement in <catalog>.meta.sql_query_log.")
]
PasswordEnvOpt = Annotated[
    str | None,
    typer.Option(help="Require the password held in this environment variable (one principal)."),
]
LoginsOpt = Annotated[
    Path | None,
    typer.Option(
        help="Logins file (YAML, mode 0600): every principal listed logs in as itself "
        "and sees what it may SELECT."
    ),
]
AuthOpt = Annotated[
    str, typer.Option(help="With --logins: scram-sha-256, or password (cleartext, needs TLS).")
]
TlsCertOpt = Annotated[
    Path | None, typer.Option(help="TLS certificate chain (PEM); with --tls-key.")
]
TlsKeyOpt = Annotated[Path | None, typer.Option(help="TLS private key (PEM).")]
TlsSelfSignedOpt = Annotated[
    bool,
    typer.Option(
        help="TLS with a certificate made at start (under <data_root>/_sql_endpoint/tls)."
    ),
]


@sql_app.command("serve")
def sql_serve(
    host: Annotated[str, typer.Option(help="Bind address (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 15432,
    schema: Annotated[
        list[str] | None,
        typer.Option(
            "--schema", help="Serve this schema (repeatable; default: the schemas of Gold tables)."
        ),
    ] = None,
    password_env: PasswordEnvOpt = None,
    logins: LoginsOpt = None,
    auth: AuthOpt = "scram-sha-256",
    tls_cert: TlsCertOpt = None,
    tls_key: TlsKeyOpt = None,
    tls_self_signed: TlsSelfSignedOpt = False,
    audit: Annotated[
        bool,
        typer.Option(help="Record the SELECT decisions in the access audit table at start."),
    ] = True,
    statement_timeout: StatementTimeoutOpt = None,
    memory_limit_mb: MemoryLimitOpt = None,
    query_memory_mb: QueryMemoryOpt = None,
    temp_limit_mb: TempLimitOpt = None,
    threads: ThreadsOpt = None,
    max_result_rows: MaxResultRowsOpt = None,
    max_result_bytes: MaxResultBytesOpt = None,
    max_connections: MaxConnectionsOpt = None,
    query_log: QueryLogOpt = True,
    project_dir: ProjectDir = None,
    target: TargetOpt = None,
    engine: EngineOpt = None,
    var: VarOpt = None,
) -> None:
    """Serve the tables the principal may SELECT over the PostgreSQL protocol until Ctrl-C.

    With --logins each principal listed logs in as itself and sees its own. Read-only;
    masked columns stay masked; each query sees the latest Delta version; a statement
    stops at the timeout, on a cancel request (Ctrl-C in psql) or when its client leaves.
    """
    from lakehouse.apps.sql.endpoint import SqlEndpoint

    project = _load(project_dir, target, engine, var)
    tls = (tls_cert, tls_key, tls_self_signed)
    access = _endpoint_access(project, logins, auth, password_env, *tls)
    limits = _sql_limits(
        statement_timeout_s=statement_timeout,
        memory_limit_mb=memory_limit_mb,
        query_memory_mb=query_memory_mb,
        temp_limit_mb=temp_limit_mb,
        threads=threads,
        max_result_rows=max_result_rows,
        max_result_bytes=max_result_bytes,
        max_connections=max_connections,
    )

    def endpoint_for(gov: GovernanceScope) -> SqlEndpoint:
        return SqlEndpoint(
            project,
            gov,
            schemas=schema,
            host=host,
            port=port,
            limits=limits,
            query_log=query_log,
            **access,
        )

    endpoint = _governed_endpoint(project, audit, endpoint_for)
    password = access["password"]
    _print_endpoint(endpoint, password_env if password else None)
    if not password and not access["logins"] and host not in ("127.0.0.1", "localhost", "::1"):
        err_console.print(
            f"[yellow]warning[/]: listening on {host} without a password (use --password-env)"
        )
    endpoint.serve_forever()
    console.print("SQL endpoint stopped")


def _sql_limits(**given: float | int | None) -> SqlLimits:
    """The endpoint's limits from the options given (the others keep their defaults)."""
    from lakehouse.apps.sql.limits import SqlLimits

    timeout = given.get("statement_timeout_s")
    if timeout is not None and timeout < 0:
        raise CliError("--statement-timeout: give seconds >= 0 (0: no limit)")
    return SqlLimits(**{k: v for k, v in given.items() if v is not None})  # type: ignore[arg-type]


def _governed_endpoint(
    project: Project, audit: bool, endpoint_for: Callable[[GovernanceScope], SqlEndpoint]
) -> SqlEndpoint:
    """The endpoint under the CLI principal's governance; with ``audit``, its decisions stored."""
    from lakehouse.governance.scope import GovernanceScope
    from lakehouse.runtime.run import RunAs, new_run_id

    principal = RunAs(explicit=_options["principal"]).principal(project)
    governance = GovernanceScope(project, principal, run_id=new_run_id(), job="sql-serve")
    if audit and governance.enabled:  # the decisions go to the audit table through Spark
        with _open_run(project, "sql-serve") as run:
            endpoint = endpoint_for(run.governance)
            run.governance.flush()
    else:
        endpoint = endpoint_for(governance)
    return endpoint


def _endpoint_access(
    project: Project,
    logins: Path | None,
    auth: str,
    password_env: str | None,
    tls_cert: Path | None,
    tls_key: Path | None,
    tls_self_signed: bool,
) -> dict[str, Any]:
    """SqlEndpoint's password, logins, tls and auth_method from the options (one-line errors)."""
    from lakehouse.apps.sql.auth import SqlLogins
    from lakehouse.apps.sql.tls import SqlTls

    password = None
    if password_env:
        password = os.environ.get(password_env)
        if not password:
            raise CliError(f"--password-env: environment variable {password_env} is not set")

    if auth not in ("scram-sha-256", "password"):
        raise CliError(f"--auth: give scram-sha-256 or password (not {auth})")
    if logins is not None and password_env:
        raise CliError("give --logins or --password-env, not both")
    if auth == "password" and logins is None:
        raise CliError("--auth password applies to --logins")
    if (tls_cert is None) != (tls_key is None):
        raise CliError("give --tls-cert and --tls-key together")
    if tls_cert is not None and tls_self_signed:
        raise CliError("give --tls-cert/--tls-key or --tls-self-signed, not both")
    tls = SqlTls(tls_cert, tls_key) if tls_cert is not None or tls_self_signed else None
    return {
        "password": password,
        "logins": SqlLogins.load(project, logins) if logins is not None else None,
        "tls": tls,
        "auth_method": auth,
    }


def _print_endpoint(endpoint: SqlEndpoint, password_env: str | None) -> None:
    """How to connect: address, database, user, where the password comes from, the tables."""
    info = endpoint.info
    if info.principals:
        _print_logins_endpoint(endpoint)
        return
    console.print(
        f"SQL endpoint (PostgreSQL protocol, read-only) on {info.host}:{info.port}\n"
        f"  host {info.host} · port {info.port} · database {info.database} · user {info.user}"
        f" · password {'from $' + str(password_env) if password_env else 'none'}\n"
        f"  {len(endpoint.tables)} tables: "
        + ", ".join(f"{t.schema}.{t.name}" for t in endpoint.tables)
        + f"\n  psql: psql '{info.url()}'\n  Ctrl-C stops"
    )


def _print_logins_endpoint(endpoint: SqlEndpoint) -> None:
    """How to connect when each principal logs in as itself."""
    info = endpoint.info
    lines = [
        f"SQL endpoint (PostgreSQL protocol, read-only) on {info.host}:{info.port}",
        f"  host {info.host} · port {info.port} · database {info.database}"
        f" · TLS {'on' if info.tls else 'off'}"
        f" · {'SCRAM-SHA-256' if endpoint.auth_method == 'scram-sha-256' else 'cleartext password'}",
        f"  logins (from {endpoint.logins.source if endpoint.logins else ''}):",
    ]
    for principal in info.principals:
        tables = endpoint.tables_for[principal]
        seen = ", ".join(f"{t.schema}.{t.name}" for t in tables) or "no table"
        lines.append(f"    {principal}: {len(tables)} tables: {seen}")
    if info.sslrootcert:
        lines.append(f"  server certificate (self-signed): {info.sslrootcert}")
    lines.append(f"  psql: psql '{info.url()}'  (as each principal: change the user)")
    lines.append("  Ctrl-C stops")
    console.print("\n".join(lines), highlight=False, soft_wrap=True)


@sql_app.command("verifier")
def sql_verifier() -> None:
    """Print the SCRAM-SHA-256 verifier of the secret read from stdin (for a logins file)."""
    import sys

    from lakehouse.apps.sql.auth import ScramVerifier

    secret = sys.stdin.readline().rstrip("\r\n")
    if not secret:
        raise CliError("give the secret on stdin (e.g. `lakehouse sql verifier < secret.txt`)")
    print(ScramVerifier.from_secret(secret))


@samples_app.command("serve")
def samples_serve(
    host: Annotated[str, typer.Option(help="Bind address (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8765,
    interval: Annotated[float, typer.Option(help="Seconds between new batches.")] = 300.0,
    batches: Annotated[int, typer.Option(help="Batches per group before HTTP 400.")] = 10,
    batch_size: Annotated[int, typer.Option(help="Rows per batch.")] = 50,
    seed: Annotated[int, typer.Option(help="Seed of the generated data.")] = 7,
    token_env: Annotated[
        str | None, typer.Option(help="Require the token held in this environment variable.")
    ] = None,
) -> None:
    """Serve the sample data API (rotating batches, pagination, fault injection) until Ctrl-C."""
    from lakehouse.samples.api import SampleApiSettings, serve_forever

    token = None
    if token_env:
        token = os.environ.get(token_env)
        if not token:
            raise CliError(f"--token-env: environment variable {token_env} is not set")
    settings = SampleApiSettings(
        interval_s=interval, batches=batches, batch_size=batch_size, seed=seed, token=token
    )
    console.print(
        f"sample data API on http://{host}:{port} (docs: /docs) · new batch every {interval:g}s · Ctrl-C stops"
    )
    serve_forever(settings, host=host, port=port)


def version() -> None:
    """Print the lakehouse version."""
    console.print(f"lakehouse {__version__}")
