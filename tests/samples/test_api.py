"""The sample data API over real HTTP: uvicorn on 127.0.0.1, plain ``requests``, no mocks."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
import requests

from lakehouse.samples.api import (
    COLUMNS,
    PRODUCTS,
    RunningSampleApi,
    SampleApiSettings,
    batch_rows,
    run_sample_api,
)

TIMEOUT = 10
ALL_IDS = [f"C{n:05d}" for n in range(1, 1001)]


class FakeClock:
    """A monotonic clock the tests move by hand."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def get(api: RunningSampleApi, path: str, **params: Any) -> requests.Response:
    return requests.get(f"{api.base_url}{path}", params=params, timeout=TIMEOUT)


def add_fault(api: RunningSampleApi, **spec: Any) -> dict[str, Any]:
    response = requests.post(f"{api.base_url}/faults", json=spec, timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    queued: dict[str, Any] = response.json()["queued"]
    return queued


def pending(api: RunningSampleApi) -> list[dict[str, Any]]:
    faults: list[dict[str, Any]] = get(api, "/faults").json()["faults"]
    return faults


@pytest.fixture(scope="module")
def api() -> Iterator[RunningSampleApi]:
    """One real-clock server with default settings, shared by the pagination and fault tests."""
    with run_sample_api(SampleApiSettings()) as running:
        yield running


@pytest.fixture(autouse=True)
def _no_leftover_faults(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "api" in request.fixturenames:
        running: RunningSampleApi = request.getfixturevalue("api")
        requests.delete(f"{running.base_url}/faults", timeout=TIMEOUT)


# --------------------------------------------------------------------------- basics


def test_health_and_columns(api: RunningSampleApi) -> None:
    assert api.base_url == f"http://127.0.0.1:{api.port}"
    assert get(api, "/health").json() == {"status": "ok"}
    assert get(api, "/data/columns").json() == {
        "columns": [
            "event_id",
            "customer_id",
            "event_ts",
            "product",
            "quantity",
            "amount",
            "status",
        ]
    }
    assert get(api, "/data").status_code == 422  # group_number is required
    assert get(api, "/data", group_number=0).status_code == 422


def test_settings_are_validated() -> None:
    with pytest.raises(ValueError, match="interval_s"):
        SampleApiSettings(interval_s=0)
    with pytest.raises(ValueError, match="batches"):
        SampleApiSettings(batches=0)
    with pytest.raises(ValueError, match="token"):
        SampleApiSettings(token="")
    assert "hush" not in repr(SampleApiSettings(token="hush"))


# --------------------------------------------------------------------------- batches


def test_batch_rotation_with_fake_clock() -> None:
    clock = FakeClock()
    settings = SampleApiSettings(interval_s=300, batches=3, batch_size=20)
    with run_sample_api(settings, clock=clock) as api:
        first = get(api, "/data", group_number=1)
        assert first.status_code == 200
        body = first.json()
        assert (body["group_number"], body["batch_number"]) == (1, 1)
        assert [row[0] for row in body["data"]] == [f"G1-B001-{i:04d}" for i in range(1, 21)]

        clock.advance(299.5)
        again = get(api, "/data", group_number=1)
        assert again.content == first.content  # same interval: byte-identical batch

        clock.advance(0.5)
        second = get(api, "/data", group_number=1).json()
        assert second["batch_number"] == 2
        assert [row[0] for row in second["data"]] == [f"G1-B002-{i:04d}" for i in range(1, 21)]

        # Group 2 starts now (t=300) and keeps its own clock.
        assert get(api, "/data", group_number=2).json()["batch_number"] == 1

        clock.advance(300)
        assert get(api, "/data", group_number=1).json()["batch_number"] == 3
        assert get(api, "/data", group_number=2).json()["batch_number"] == 2

        clock.advance(300)  # group 1: the third (last) interval has ended
        exhausted = get(api, "/data", group_number=1)
        assert exhausted.status_code == 400
        assert exhausted.json() == {"detail": "all batches were served", "group_number": 1}
        assert get(api, "/data", group_number=2).json()["batch_number"] == 3

        restarted = get(api, "/restart_data_generation", group_number=1)
        assert restarted.status_code == 200
        assert restarted.json() == {"group_number": 1, "restarted": True}
        assert get(api, "/data", group_number=1).content == first.content
        clock.advance(300)
        assert get(api, "/data", group_number=1).json()["batch_number"] == 2
        assert get(api, "/data", group_number=2).status_code == 400


def test_batch_rows_follow_the_documented_shape() -> None:
    settings = SampleApiSettings(interval_s=300, batch_size=200, seed=11)
    rows = batch_rows(settings, group=4, batch=2)
    assert len(rows) == 200
    assert all(len(row) == len(COLUMNS) for row in rows)
    start, end = datetime(2026, 7, 1, 0, 5), datetime(2026, 7, 1, 0, 10)
    stamps = [datetime.fromisoformat(row[2]) for row in rows]
    assert stamps == sorted(stamps)
    assert all(start <= ts < end for ts in stamps)
    for i, (event_id, customer_id, _, product, quantity, amount, status) in enumerate(rows, 1):
        assert event_id == f"G4-B002-{i:04d}"
        assert customer_id[0] == "C" and 1 <= int(customer_id[1:]) <= 1000
        assert len(customer_id) == 6
        assert product in PRODUCTS
        assert quantity in {1, 2, 3, 4, 5}
        assert isinstance(amount, float) and round(amount, 2) == amount
        assert status in {"completed", "refunded"}
    statuses = [row[6] for row in rows]
    assert (statuses.count("completed"), statuses.count("refunded")) == (177, 23)
    assert rows == batch_rows(settings, group=4, batch=2)
    assert rows != batch_rows(settings, group=4, batch=3)
    assert rows != batch_rows(settings, group=5, batch=2)


def test_real_time_rotation() -> None:
    interval = 0.3
    settings = SampleApiSettings(interval_s=interval, batches=3, batch_size=5)
    with run_sample_api(settings) as api:
        # The server runs in this process, so it shares time.monotonic with the test: aim
        # every request at the middle of an interval (+-0.15 s of slack).
        t0 = time.monotonic()
        assert get(api, "/restart_data_generation", group_number=9).status_code == 200
        t1 = time.monotonic()
        start = (t0 + t1) / 2
        seen: list[int | str] = []
        for k in range(4):
            time.sleep(max(0.0, start + (k + 0.5) * interval - time.monotonic()))
            response = get(api, "/data", group_number=9)
            body = response.json()
            seen.append(body["batch_number"] if response.status_code == 200 else body["detail"])
        assert seen == [1, 2, 3, "all batches were served"]


def test_same_seed_gives_same_rows_on_two_servers() -> None:
    settings = SampleApiSettings(batch_size=30, seed=42)
    clock_a, clock_b = FakeClock(5.0), FakeClock(99999.0)
    with (
        run_sample_api(settings, clock=clock_a) as a,
        run_sample_api(settings, clock=clock_b) as b,
        run_sample_api(SampleApiSettings(batch_size=30, seed=43), clock=FakeClock()) as c,
    ):
        assert a.port != b.port
        one_a, one_b = get(a, "/data", group_number=3), get(b, "/data", group_number=3)
        assert one_a.content == one_b.content
        clock_a.advance(300)
        clock_b.advance(300)
        two_a, two_b = (
            get(a, "/data", group_number=3).json(),
            get(b, "/data", group_number=3).json(),
        )
        assert two_a == two_b
        assert two_a["batch_number"] == 2
        assert two_a["data"] == batch_rows(settings, 3, 2)
        assert len(two_a["data"]) == 30
        other = get(c, "/data", group_number=3).json()
        assert other["batch_number"] == 1
        assert other["data"] != one_a.json()["data"]
        assert (
            get(a, "/customers/offset", limit=5).json()
            == get(b, "/customers/offset", limit=5).json()
        )


# --------------------------------------------------------------------------- pagination


def assert_all_customers_once(records: list[dict[str, Any]]) -> None:
    ids = [record["customer_id"] for record in records]
    assert ids == ALL_IDS
    assert len(set(ids)) == 1000
    assert set(records[0]) == {
        "customer_id",
        "name",
        "email",
        "region",
        "plan",
        "signup_date",
        "support_tickets",
    }


def test_page_number_pagination(api: RunningSampleApi) -> None:
    records: list[dict[str, Any]] = []
    sizes: list[int] = []
    page = 1
    while True:
        body = get(api, "/customers/pages", page=page, page_size=300).json()
        assert (body["page"], body["page_size"], body["total_pages"]) == (page, 300, 4)
        if not body["data"]:
            break
        records += body["data"]
        sizes.append(len(body["data"]))
        page += 1
    assert sizes == [300, 300, 300, 100]
    assert page == 5
    assert_all_customers_once(records)
    default = get(api, "/customers/pages").json()
    assert (len(default["data"]), default["page_size"], default["total_pages"]) == (250, 250, 4)


def test_offset_pagination(api: RunningSampleApi) -> None:
    records: list[dict[str, Any]] = []
    offset, calls = 0, 0
    while offset < 1000:
        body = get(api, "/customers/offset", offset=offset, limit=300).json()
        assert (body["offset"], body["limit"], body["total"]) == (offset, 300, 1000)
        records += body["data"]
        offset += len(body["data"])
        calls += 1
    assert calls == 4
    assert_all_customers_once(records)
    assert get(api, "/customers/offset", offset=1000).json()["data"] == []
    assert get(api, "/customers/offset", limit=1001).status_code == 422


def test_cursor_pagination(api: RunningSampleApi) -> None:
    records: list[dict[str, Any]] = []
    cursors: list[str | None] = []
    params: dict[str, Any] = {"limit": 300}
    while True:
        body = get(api, "/customers/cursor", **params).json()
        records += body["data"]
        cursors.append(body["next_cursor"])
        if body["next_cursor"] is None:
            break
        params["cursor"] = body["next_cursor"]
    assert len(cursors) == 4
    assert cursors[-1] is None
    assert len(set(cursors[:3])) == 3
    assert_all_customers_once(records)
    bad = get(api, "/customers/cursor", cursor="not-a-cursor!")
    assert bad.status_code == 400
    assert bad.json() == {"detail": "invalid cursor"}


def test_link_pagination(api: RunningSampleApi) -> None:
    records: list[dict[str, Any]] = []
    links: list[str | None] = []
    url: str | None = f"{api.base_url}/customers/links?limit=300"
    while url is not None:
        body = requests.get(url, timeout=TIMEOUT).json()
        records += body["data"]
        url = body["next"]
        links.append(url)
    assert links == [
        f"{api.base_url}/customers/links?offset=300&limit=300",
        f"{api.base_url}/customers/links?offset=600&limit=300",
        f"{api.base_url}/customers/links?offset=900&limit=300",
        None,
    ]
    assert_all_customers_once(records)


def test_default_page_size_is_capped_at_1000() -> None:
    with run_sample_api(SampleApiSettings(page_records=5000)) as api:
        body = get(api, "/customers/pages").json()
        assert (len(body["data"]), body["page_size"], body["total_pages"]) == (1000, 1000, 1)
        assert get(api, "/customers/cursor").json()["next_cursor"] is None


# --------------------------------------------------------------------------- faults


def test_5xx_fault_counts_down_on_matching_paths(api: RunningSampleApi) -> None:
    queued = add_fault(api, kind="5xx", status=502, count=2, paths=["/customers/offset"])
    assert (queued["kind"], queued["remaining"], queued["paths"]) == (
        "5xx",
        2,
        ["/customers/offset"],
    )
    assert get(api, "/customers/pages").status_code == 200  # path does not match
    assert get(api, "/health").status_code == 200
    assert [f["remaining"] for f in pending(api)] == [2]
    first = get(api, "/customers/offset", limit=1)
    assert first.status_code == 502
    assert first.json() == {"detail": "injected fault", "kind": "5xx"}
    assert [f["remaining"] for f in pending(api)] == [1]
    assert get(api, "/customers/offset", limit=1).status_code == 502
    assert pending(api) == []
    assert get(api, "/customers/offset", limit=1).status_code == 200


def test_5xx_and_4xx_default_statuses(api: RunningSampleApi) -> None:
    add_fault(api, kind="5xx")
    add_fault(api, kind="4xx")
    add_fault(api, kind="4xx", status=410)
    assert get(api, "/data/columns").status_code == 503
    assert get(api, "/data/columns").status_code == 404
    assert get(api, "/data/columns").status_code == 410
    assert get(api, "/data/columns").status_code == 200


def test_429_fault_sends_retry_after(api: RunningSampleApi) -> None:
    add_fault(api, kind="429", retry_after=7)
    limited = get(api, "/customers/pages", page_size=1)
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "7"
    ok = get(api, "/customers/pages", page_size=1)
    assert ok.status_code == 200
    assert "Retry-After" not in ok.headers


def test_slow_fault_delays_without_blocking_health(api: RunningSampleApi) -> None:
    normal = get(api, "/customers/pages", page_size=5).content
    add_fault(api, kind="slow", delay_s=0.6, paths=["/customers/pages"])
    result: dict[str, Any] = {}

    def slow_call() -> None:
        started = time.monotonic()
        result["response"] = get(api, "/customers/pages", page_size=5)
        result["elapsed"] = time.monotonic() - started

    thread = threading.Thread(target=slow_call)
    thread.start()
    time.sleep(0.1)
    started = time.monotonic()
    assert get(api, "/health").status_code == 200
    health_elapsed = time.monotonic() - started
    assert thread.is_alive()  # the slow request is still waiting...
    assert health_elapsed < 0.4  # ...but /health was answered meanwhile
    thread.join(TIMEOUT)
    assert result["elapsed"] >= 0.6
    assert result["response"].status_code == 200
    assert result["response"].content == normal
    started = time.monotonic()
    assert get(api, "/customers/pages", page_size=5).content == normal
    assert time.monotonic() - started < 0.5


def test_truncated_fault_cuts_the_body_in_half(api: RunningSampleApi) -> None:
    normal = get(api, "/customers/offset", limit=10).content
    add_fault(api, kind="truncated")
    cut = get(api, "/customers/offset", limit=10)
    assert cut.status_code == 200
    assert cut.headers["content-type"] == "application/json"
    assert cut.content == normal[: len(normal) // 2]
    with pytest.raises(json.JSONDecodeError):
        json.loads(cut.content)
    assert get(api, "/customers/offset", limit=10).content == normal


def test_repeat_fault_serves_the_previous_batch() -> None:
    clock = FakeClock()
    with run_sample_api(SampleApiSettings(batches=2, batch_size=10), clock=clock) as api:
        first = get(api, "/data", group_number=1).json()
        assert first["batch_number"] == 1
        clock.advance(300)
        add_fault(api, kind="repeat")
        assert get(api, "/data/columns").status_code == 200  # repeat only matches /data
        assert [f["remaining"] for f in pending(api)] == [1]
        repeated = get(api, "/data", group_number=1).json()
        assert repeated == first
        assert pending(api) == []
        second = get(api, "/data", group_number=1).json()
        assert second["batch_number"] == 2
        assert second["data"] != first["data"]

        clock.advance(300)  # all batches served: a repeat re-delivers the last one
        add_fault(api, kind="repeat", count=1)
        assert get(api, "/data", group_number=1).json() == second
        assert get(api, "/data", group_number=1).status_code == 400


def test_fault_queue_can_be_listed_and_cleared(api: RunningSampleApi) -> None:
    add_fault(api, kind="5xx", count=3)
    add_fault(api, kind="slow", delay_s=5, paths=["/data"])
    assert [(f["kind"], f["remaining"]) for f in pending(api)] == [("5xx", 3), ("slow", 1)]
    cleared = requests.delete(f"{api.base_url}/faults", timeout=TIMEOUT)
    assert cleared.json() == {"cleared": 2}
    assert pending(api) == []
    assert get(api, "/data/columns").status_code == 200
    bogus = requests.post(f"{api.base_url}/faults", json={"kind": "boom"}, timeout=TIMEOUT)
    assert bogus.status_code == 422
    wrong = requests.post(
        f"{api.base_url}/faults", json={"kind": "5xx", "status": 404}, timeout=TIMEOUT
    )
    assert wrong.status_code == 422
    assert pending(api) == []


# --------------------------------------------------------------------------- token


def test_token_is_required_except_for_health() -> None:
    token = "s3cret-t0ken"
    with run_sample_api(SampleApiSettings(token=token, batch_size=3)) as api:
        assert get(api, "/health").json() == {"status": "ok"}
        for path in ("/data/columns", "/customers/pages", "/faults"):
            denied = get(api, path)
            assert denied.status_code == 401
            assert denied.json() == {"detail": "missing or invalid token"}
            assert token not in denied.text
        assert get(api, "/data", group_number=1).status_code == 401
        wrong = requests.get(
            f"{api.base_url}/data/columns",
            headers={"Authorization": "Bearer nope"},
            timeout=TIMEOUT,
        )
        assert wrong.status_code == 401
        assert get(api, "/data/columns", api_key="nope").status_code == 401

        bearer = requests.get(
            f"{api.base_url}/data",
            params={"group_number": 1},
            headers={"Authorization": f"Bearer {token}"},
            timeout=TIMEOUT,
        )
        assert bearer.status_code == 200
        assert bearer.json()["batch_number"] == 1
        assert len(bearer.json()["data"]) == 3
        keyed = get(api, "/data", group_number=1, api_key=token)
        assert keyed.status_code == 200
        assert keyed.content == bearer.content

        linked = get(api, "/customers/links", limit=400, api_key=token)
        assert linked.status_code == 200
        assert linked.json()["next"] == f"{api.base_url}/customers/links?offset=400&limit=400"
        assert token not in linked.text
        # A fault cannot be queued without the token.
        anonymous = requests.post(f"{api.base_url}/faults", json={"kind": "5xx"}, timeout=TIMEOUT)
        assert anonymous.status_code == 401


def test_rows_use_the_batch_interval_as_timestamps() -> None:
    rows = batch_rows(SampleApiSettings(interval_s=0.3, batch_size=50), group=1, batch=3)
    start = datetime(2026, 7, 1) + timedelta(seconds=0.6)
    assert all(start <= datetime.fromisoformat(r[2]) < start + timedelta(seconds=0.3) for r in rows)
    assert len(rows) == 50


# --------------------------------------------------------------------------- the demo's API


def test_the_demo_api_refuses_a_port_held_by_another_runs_sample_api() -> None:
    """Two demo runs on one port would each eat the other's batches: the second is refused."""
    from lakehouse.core.errors import LakehouseError
    from lakehouse.samples.api import demo_sample_api

    with (
        run_sample_api(SampleApiSettings()) as other_run,
        pytest.raises(LakehouseError, match="taken by another run's sample API"),
        demo_sample_api(other_run.port),
    ):
        pass


def test_the_demo_api_refuses_a_foreign_server_on_its_port() -> None:
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from lakehouse.core.errors import LakehouseError
    from lakehouse.samples.api import demo_sample_api

    class Answers200(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b'{"status": "ok"}')

        def log_message(self, *args: Any) -> None:
            return

    server = HTTPServer(("127.0.0.1", 0), Answers200)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with (
            pytest.raises(LakehouseError, match="not a lakehouse sample API"),
            demo_sample_api(server.server_address[1]),
        ):
            pass
    finally:
        server.shutdown()
        server.server_close()


def test_the_demo_api_uses_a_shared_sample_api_and_serves_its_own_otherwise() -> None:
    from lakehouse.apps.local_server import background_server
    from lakehouse.samples.api import IDENTITY_HEADER, create_app, demo_sample_api

    shared = create_app(SampleApiSettings())
    shared.state.sample_identity = "shared"  # as `lakehouse samples serve` runs it
    with background_server(shared, lifespan="off") as port, demo_sample_api(port) as url:
        assert url == f"http://127.0.0.1:{port}"
        assert requests.get(f"{url}/health", timeout=TIMEOUT).headers[IDENTITY_HEADER] == "shared"
    with run_sample_api(SampleApiSettings()) as probe:
        free = probe.port
    with demo_sample_api(free) as url:
        health = requests.get(f"{url}/health", timeout=TIMEOUT)
        assert (health.json(), health.headers[IDENTITY_HEADER]) == ({"status": "ok"}, "private")
