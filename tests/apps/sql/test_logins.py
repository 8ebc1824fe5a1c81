"""One SQL endpoint, several principals: logins (SCRAM-SHA-256), TLS, per-principal views.

Clients are the real ones (psql 15, psycopg 3 on libpq); a raw socket speaks the protocol
where the test needs to see the exact authentication messages.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import os
import signal
import socket
import ssl
import struct
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest
from deltalake import DeltaTable
from scramp import ScramClient

from lakehouse.apps.sql.auth import ScramVerifier, SqlLogins
from lakehouse.apps.sql.endpoint import SqlEndpoint
from lakehouse.apps.sql.limits import SqlLimits
from lakehouse.apps.sql.mirror import SqlEndpointError
from lakehouse.apps.sql.tls import SqlTls
from lakehouse.governance.masks import load_mask_key
from lakehouse.io.delta import DeltaStore
from tests.apps.sql.conftest import PSQL, load, start_endpoint
from tests.apps.sql.test_endpoint import LAKEHOUSE, _free_port

FEATURES = "lakehouse.gold.customer_features"
SECRETS = {"bi-reader": "bi-pw", "carol": "carol-pw", "alice": "alice-pw"}
GOLD = [
    ("gold", "churn_predictions"),
    ("gold", "customer_features"),
    ("gold", "daily_sales"),
]


def _logins_file(root: Path) -> Path:
    """bi-reader inline, carol from an environment variable, alice from a token file."""
    token = root / "alice.token"
    token.write_text(SECRETS["alice"] + "\n")
    token.chmod(0o600)
    path = root / "logins.yml"
    path.write_text(
        "logins:\n"
        f"  bi-reader: {{secret: {SECRETS['bi-reader']}}}\n"
        "  carol: {env: I22_CAROL_SECRET}\n"
        f"  alice: {{token_file: {token}}}\n"
    )
    path.chmod(0o600)
    return path


@pytest.fixture(scope="module")
def logins(sql_project: Path) -> Iterator[SqlLogins]:
    os.environ["I22_CAROL_SECRET"] = SECRETS["carol"]
    try:
        yield SqlLogins.load(load(sql_project), _logins_file(sql_project))
    finally:
        os.environ.pop("I22_CAROL_SECRET", None)


@pytest.fixture(scope="module")
def multi(sql_project: Path, logins: SqlLogins) -> Iterator[SqlEndpoint]:
    """One endpoint over gold and silver for bi-reader, carol and alice (SCRAM, no TLS)."""
    ep = start_endpoint(sql_project, "bi-reader", schemas=["gold", "silver"], logins=logins)
    yield ep
    ep.stop()


def dsn(ep: SqlEndpoint, user: str, password: str | None = None, **extra: str) -> str:
    parts = {"host": "127.0.0.1", "port": str(ep.info.port), "dbname": "lakehouse", "user": user}
    parts["password"] = SECRETS.get(user, "") if password is None else password
    parts.update(extra)
    return " ".join(f"{k}={v}" for k, v in parts.items())


def psql_as(ep: SqlEndpoint, user: str, sql: str, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "PGCONNECT_TIMEOUT": "10", "PGPASSWORD": SECRETS[user]}
    return subprocess.run(
        [PSQL, "-X", "-v", "ON_ERROR_STOP=1", "--csv", *extra, "-c", sql, ep.info.url(user)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def listed(ep: SqlEndpoint, user: str) -> list[tuple[str, str]]:
    got = psql_as(ep, user, r"\dt *.*")
    assert got.returncode == 0, got.stderr
    return sorted((r["Schema"], r["Name"]) for r in csv.DictReader(io.StringIO(got.stdout)))


def test_each_principal_sees_its_own_tables_on_one_endpoint(multi: SqlEndpoint) -> None:
    assert multi.info.principals == ("alice", "bi-reader", "carol")
    assert multi.mirrors is not None and multi.mirrors.built == []  # mirrors come at login
    assert listed(multi, "bi-reader") == [*GOLD, ("silver", "orders")]
    assert multi.mirrors.built == ["bi-reader"]
    assert listed(multi, "carol") == [("silver", "customers")]  # support: customers only
    assert listed(multi, "alice") == [
        *GOLD,
        ("silver", "customers"),
        ("silver", "customers_quarantine"),  # the owner sees the quarantine tables too
        ("silver", "events"),
        ("silver", "events_quarantine"),
        ("silver", "orders"),
        ("silver", "orders_quarantine"),
    ]
    denied = psql_as(multi, "carol", "SELECT count(*) FROM gold.daily_sales")
    assert denied.returncode != 0 and "does not exist" in denied.stderr
    assert multi.mirrors.built == ["alice", "bi-reader", "carol"]


def test_each_principal_gets_its_own_masks(
    multi: SqlEndpoint, tables: DeltaStore, sql_project: Path
) -> None:
    raw = tables.read(FEATURES).select("customer_id", "region").collect()
    key = load_mask_key(sql_project / "data", "lakehouse")
    query = "SELECT DISTINCT customer_id, region FROM gold.customer_features"
    with psycopg.connect(dsn(multi, "bi-reader")) as conn:  # analysts: masked
        assert conn.info.parameter_status("session_authorization") == "bi-reader"
        masked = set(conn.execute(query).fetchall())
    assert masked == {
        (hmac.new(key.secret, r.customer_id.encode(), hashlib.sha256).hexdigest(), "***")
        for r in raw
    }
    with psycopg.connect(dsn(multi, "alice")) as conn:  # data-engineers own the catalog
        assert set(conn.execute(query).fetchall()) == {(r.customer_id, r.region) for r in raw}
    customers = tables.read("lakehouse.silver.customers").select("customer_id", "name").collect()
    with psycopg.connect(dsn(multi, "carol")) as conn:  # support: name redacted
        got = conn.execute("SELECT customer_id, name FROM silver.customers").fetchall()
    assert sorted(got) == sorted((r.customer_id, "***") for r in customers)


def _message(sock: socket.socket) -> tuple[bytes, bytes]:
    head = b""
    while len(head) < 5:
        head += sock.recv(5 - len(head))
    size = struct.unpack("!i", head[1:])[0] - 4
    body = b""
    while len(body) < size:
        body += sock.recv(size - len(body))
    return head[:1], body


def _send(sock: socket.socket, kind: bytes, body: bytes) -> None:
    sock.sendall(kind + struct.pack("!i", len(body) + 4) + body)


def _error_fields(body: bytes) -> dict[str, str]:
    return {f[:1].decode(): f[1:].decode() for f in body.split(b"\x00") if f}


def _raw_login(ep: SqlEndpoint, user: str, password: str) -> tuple[list[int], dict[str, str]]:
    """A SCRAM login over a raw socket: the authentication codes seen, then the error (if any)."""
    with socket.create_connection(("127.0.0.1", ep.info.port), timeout=10) as sock:
        params = f"user\x00{user}\x00database\x00lakehouse\x00\x00".encode()
        sock.sendall(struct.pack("!ii", len(params) + 8, 196608) + params)
        codes: list[int] = []
        client = ScramClient(["SCRAM-SHA-256"], user, password)
        while True:
            kind, body = _message(sock)
            if kind == b"E":
                return codes, _error_fields(body)
            assert kind == b"R", kind
            code = struct.unpack("!i", body[:4])[0]
            codes.append(code)
            if code == 0:
                return codes, {}
            if code == 10:
                first = client.get_client_first().encode()
                mech = b"SCRAM-SHA-256\x00" + struct.pack("!i", len(first))
                _send(sock, b"p", mech + first)
            elif code == 11:
                client.set_server_first(body[4:].decode())
                _send(sock, b"p", client.get_client_final().encode())
            elif code == 12:
                client.set_server_final(body[4:].decode())  # the server knows the verifier


def test_scram_is_used_and_failures_look_alike(multi: SqlEndpoint) -> None:
    assert _raw_login(multi, "carol", SECRETS["carol"]) == ([10, 11, 12, 0], {})
    for user, password in (("carol", "wrong"), ("mallory", "carol-pw"), ("bob", "x")):
        codes, error = _raw_login(multi, user, password)
        assert codes == [10, 11]  # the unknown user gets a (mock) salt too
        assert (error["S"], error["C"], error["M"]) == (
            "FATAL",
            "28P01",
            f'password authentication failed for user "{user}"',
        )
    # libpq: SCRAM required works; a client that insists on cleartext gets none
    with psycopg.connect(dsn(multi, "carol", require_auth="scram-sha-256")) as conn:
        assert conn.execute("SELECT count(*) FROM silver.customers").fetchone() is not None
    with pytest.raises(psycopg.OperationalError, match="server requested SASL authentication"):
        psycopg.connect(dsn(multi, "carol", require_auth="password"), connect_timeout=5)
    with pytest.raises(psycopg.OperationalError, match='failed for user "carol"'):
        psycopg.connect(dsn(multi, "carol", "nope"), connect_timeout=5)


def test_cleartext_only_client_is_refused_over_plain_tcp(
    multi: SqlEndpoint, sql_project: Path, logins: SqlLogins
) -> None:
    # a client that answers the SASL request with a cleartext password fails like a wrong one
    with socket.create_connection(("127.0.0.1", multi.info.port), timeout=10) as sock:
        params = b"user\x00carol\x00database\x00lakehouse\x00\x00"
        sock.sendall(struct.pack("!ii", len(params) + 8, 196608) + params)
        assert _message(sock) == (b"R", struct.pack("!i", 10) + b"SCRAM-SHA-256\x00\x00")
        _send(sock, b"p", SECRETS["carol"].encode() + b"\x00")
        kind, body = _message(sock)
        assert (kind, _error_fields(body)["C"]) == (b"E", "28P01")
    with pytest.raises(SqlEndpointError, match=r"cleartext passwords .* need TLS"):
        start_endpoint(sql_project, "bi-reader", logins=logins, auth_method="password")


@pytest.fixture(scope="module")
def tls_endpoint(sql_project: Path, logins: SqlLogins) -> Iterator[SqlEndpoint]:
    ep = start_endpoint(sql_project, "bi-reader", logins=logins, tls=SqlTls())
    yield ep
    ep.stop()


def test_tls_with_the_self_signed_certificate(tls_endpoint: SqlEndpoint, sql_project: Path) -> None:
    cert = sql_project / "data" / "_sql_endpoint" / "tls" / "server.crt"
    assert tls_endpoint.info.sslrootcert == str(cert)
    assert (cert.with_name("server.key").stat().st_mode & 0o777) == 0o600
    for mode, host in (
        ("verify-full", "127.0.0.1"),
        ("verify-full", "localhost"),
        ("verify-ca", "127.0.0.1"),
        ("require", "127.0.0.1"),
    ):
        extra = {"sslmode": mode, "host": host, "sslrootcert": str(cert)}
        with psycopg.connect(dsn(tls_endpoint, "bi-reader", **extra)) as conn:
            assert conn.pgconn.ssl_in_use is True
            assert conn.execute("SELECT count(*) > 0 FROM gold.daily_sales").fetchone() == (True,)
    # psql with the printed URL (verify-full against the printed certificate)
    got = psql_as(tls_endpoint, "carol", "SELECT ssl FROM (SELECT true AS ssl)", "-t")
    assert (got.returncode, got.stdout.strip()) == (0, "t"), got.stderr
    # a client that trusts other roots refuses the server
    other = ssl.get_default_verify_paths().cafile or "/etc/ssl/certs/ca-certificates.crt"
    with pytest.raises(psycopg.OperationalError, match="certificate verify failed"):
        psycopg.connect(
            dsn(tls_endpoint, "bi-reader", sslmode="verify-ca", sslrootcert=other),
            connect_timeout=5,
        )


def test_cleartext_password_over_tls_with_a_given_certificate(
    tls_endpoint: SqlEndpoint, sql_project: Path, logins: SqlLogins
) -> None:
    assert tls_endpoint.info.sslrootcert is not None
    cert = Path(tls_endpoint.info.sslrootcert)
    tls = SqlTls(cert, cert.with_name("server.key"))
    ep = start_endpoint(sql_project, "bi-reader", logins=logins, tls=tls, auth_method="password")
    try:
        assert ep.info.sslrootcert is None and ep.info.tls is True
        extra = {"sslmode": "verify-full", "sslrootcert": str(cert), "require_auth": "password"}
        with psycopg.connect(dsn(ep, "bi-reader", **extra)) as conn:
            assert conn.execute("SELECT count(*) > 0 FROM gold.daily_sales").fetchone() == (True,)
        with pytest.raises(psycopg.OperationalError, match='failed for user "carol"'):
            psycopg.connect(dsn(ep, "carol", "wrong", **extra), connect_timeout=5)
        # without TLS the client is refused before it sends its password
        with pytest.raises(psycopg.OperationalError, match="passwords over TLS only"):
            psycopg.connect(dsn(ep, "carol", sslmode="disable"), connect_timeout=5)
    finally:
        ep.stop()


def test_sql_serve_with_logins_and_tls(sql_project: Path, logins: SqlLogins) -> None:
    port = _free_port()
    env = {**os.environ, "LAKEHOUSE_PRINCIPAL": "bi-reader", "I22_CAROL_SECRET": "carol-pw"}
    cmd = [LAKEHOUSE, "sql", "serve", "--port", str(port), "--schema", "gold"]
    cmd += ["--logins", str(sql_project / "logins.yml"), "--tls-self-signed"]
    cmd += ["-C", str(sql_project), "--var", f"data_root={sql_project / 'data'}"]
    started = time.monotonic()
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        while time.monotonic() - started < 90:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line.rstrip())
            if "Ctrl-C stops" in line:
                break
        banner = "\n".join(lines)
        assert "    carol: 0 tables: no table" in banner, banner
        assert "    bi-reader: 3 tables: gold.churn_predictions, gold.customer_features" in banner
        cert = sql_project / "data" / "_sql_endpoint" / "tls" / "server.crt"
        assert f"server certificate (self-signed): {cert}" in banner
        ep_dsn = (
            f"host=127.0.0.1 port={port} dbname=lakehouse sslmode=verify-full sslrootcert={cert}"
        )
        with psycopg.connect(f"{ep_dsn} user=carol password=carol-pw") as conn:
            assert conn.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'gold'"
            ).fetchone() == (0,)
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    audit = DeltaTable(str(sql_project / "data" / "tables" / "meta" / "access_audit")).to_pandas()
    run = audit[audit.job == "sql-serve"]  # this module's project: this command's rows
    decisions = {(r.principal, r.securable, bool(r.allowed)) for r in run.itertuples()}
    assert ("carol", "lakehouse.gold.daily_sales", False) in decisions  # every login's
    assert ("alice", "lakehouse.gold.daily_sales", True) in decisions


def test_sql_serve_refuses_a_readable_logins_file(sql_project: Path, tmp_path: Path) -> None:
    path = tmp_path / "logins.yml"
    path.write_text("logins:\n  carol: {secret: x}\n")
    path.chmod(0o644)
    cmd = [LAKEHOUSE, "sql", "serve", "--logins", str(path), "-C", str(sql_project)]
    cmd += ["--var", f"data_root={sql_project / 'data'}"]
    got = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert got.returncode == 1
    out = (got.stdout + got.stderr).strip()
    assert len(out.splitlines()) == 1, out
    assert f"{path}: " in out and "is mode 0644: group and other may not read it" in out


def test_first_logins_at_once_build_one_mirror(sql_project: Path, logins: SqlLogins) -> None:
    ep = start_endpoint(sql_project, "bi-reader", logins=logins)
    try:

        def count(_: int) -> tuple[int, ...] | None:
            with psycopg.connect(dsn(ep, "bi-reader")) as conn:
                return conn.execute("SELECT count(*) FROM gold.daily_sales").fetchone()

        with ThreadPoolExecutor(4) as pool:
            answers = set(pool.map(count, range(4)))
        assert len(answers) == 1 and ep.mirrors is not None
        assert ep.mirrors.built == ["bi-reader"]
    finally:
        ep.stop()


def test_sql_verifier_prints_a_verifier_for_the_secret_on_stdin() -> None:
    got = subprocess.run(
        [LAKEHOUSE, "sql", "verifier"], input="s3cret\n", capture_output=True, text=True, timeout=60
    )
    assert got.returncode == 0, got.stderr
    verifier = ScramVerifier.parse(got.stdout.strip())
    assert verifier.matches("s3cret") and not verifier.matches("s3cret\n")
    empty = subprocess.run([LAKEHOUSE, "sql", "verifier"], input="", capture_output=True, text=True)
    assert empty.returncode == 1 and "give the secret on stdin" in empty.stderr


def _closed(sock: socket.socket) -> bool:
    """Whether the server closed the connection (a TLS alert may come first)."""
    try:
        while data := sock.recv(1024):
            if not data.startswith(b"\x15"):  # anything but a TLS alert
                return False
    except ConnectionResetError:
        pass
    return True


def test_tls_refuses_bytes_sent_before_the_handshake(tls_endpoint: SqlEndpoint) -> None:
    ssl_request = struct.pack("!ii", 8, 80877103)
    with socket.create_connection(("127.0.0.1", tls_endpoint.info.port), timeout=10) as sock:
        sock.sendall(ssl_request + b"Q\x00\x00\x00\x0dSELECT 1\x00")  # injected, not over TLS
        assert _closed(sock)  # no 'S'
    with socket.create_connection(("127.0.0.1", tls_endpoint.info.port), timeout=10) as sock:
        sock.sendall(ssl_request)
        assert sock.recv(1) == b"S"
        sock.sendall(b"not a TLS client hello\r\n")
        assert _closed(sock)
    with psycopg.connect(dsn(tls_endpoint, "bi-reader", sslmode="require")) as conn:
        assert conn.pgconn.ssl_in_use is True  # the server still serves


def test_mirrors_share_the_server_memory_and_spill_apart(
    sql_project: Path, logins: SqlLogins
) -> None:
    """With two principals logged in each mirror holds half the server's memory limit, and
    each spills to a directory of its own under the server's temp directory."""
    ep = start_endpoint(
        sql_project, "bi-reader", logins=logins, limits=SqlLimits(memory_limit_mb=1024)
    )
    try:
        assert ep.mirrors is not None
        for user in ("bi-reader", "alice"):
            with psycopg.connect(dsn(ep, user)) as conn:
                conn.execute("SELECT count(*) FROM gold.daily_sales").fetchone()
        mirrors = [ep.mirrors.view_for(user) for user in ("bi-reader", "alice")]
        limits = [
            m.db.execute("SELECT current_setting('memory_limit')").fetchone() for m in mirrors
        ]
        assert limits == [("512.0 MiB",), ("512.0 MiB",)]
        temp = [
            m.db.execute("SELECT current_setting('temp_directory')").fetchone() for m in mirrors
        ]
        base = sql_project / "data" / "_sql_endpoint" / "tmp"
        assert len({t for t in temp}) == 2
        assert all(t is not None and Path(t[0]).parent == base for t in temp)
    finally:
        ep.stop()
