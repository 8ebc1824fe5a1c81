"""Fetch JSON APIs for Bronze: pagination, rotating batches, retries, secrets kept secret.

The retry loop is written here rather than taken from a retry library because it has to
honour ``Retry-After`` on 429, treat a truncated JSON body like a transient failure, and
build every message from the redacted URL (the raw exception text of an HTTP client can
carry a token passed as a query parameter).

The auth token is read from the environment when a request is made. It is never written to
the configuration, a log line, an error message, a Bronze row or a run record: URLs are
recorded with the token and any ``redact_params`` masked.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx

from lakehouse.config.sources import HttpSource
from lakehouse.core.errors import LakehouseError

log = logging.getLogger(__name__)
# httpx logs every request URL at INFO and httpcore the headers at DEBUG: either can carry the
# token. Our own log lines use the redacted URL.
for _noisy in ("httpx", "httpcore"):
    logging.getLogger(_noisy).setLevel(logging.WARNING)

MASK = "***"


class HttpSourceError(LakehouseError):
    """A request failed permanently (after retries) or the API answered unusably."""


@dataclass(frozen=True)
class Response:
    """One API response as Bronze keeps it."""

    request: str  # redacted URL
    status: int
    fetched_at: datetime
    payload: str
    batch_id: str
    records: list[dict[str, Any]] | None  # None: the payload could not be parsed
    error: str | None = None
    document: Any = None


def redact_url(url: str, secret_params: set[str]) -> str:
    """``url`` with the values of ``secret_params`` replaced by ``***``."""
    parts = urlsplit(url)
    if not parts.query:
        return url
    query = [
        (k, MASK if k in secret_params else v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
    ]
    return urlunsplit(parts._replace(query=urlencode(query, safe="*")))


def content_batch_id(payload: str) -> str:
    """A batch id derived from the content: the same page fetched again is the same batch."""
    return "sha256:" + hashlib.sha256(payload.encode("utf-8")).hexdigest()[:24]


def dig(document: Any, dotted: str) -> Any:
    """``document["a"]["b"]`` for ``"a.b"``; the document itself for ``""``."""
    node = document
    for part in [p for p in dotted.split(".") if p]:
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def extract_records(document: Any, spec: HttpSource) -> list[dict[str, Any]]:
    """The records of a parsed payload as dicts (array rows named by ``spec.columns``)."""
    found = dig(document, spec.records_field)
    if found is None:
        raise ValueError(f"no '{spec.records_field}' list in the response")
    if not isinstance(found, list):
        raise ValueError(f"'{spec.records_field}' is a {type(found).__name__}, not a list")
    records: list[dict[str, Any]] = []
    for item in found:
        if isinstance(item, dict):
            records.append(item)
        elif isinstance(item, list) and spec.columns:
            if len(item) != len(spec.columns):
                records.append({"__malformed__": item})
            else:
                records.append(dict(zip(spec.columns, item, strict=True)))
        else:
            records.append({"__malformed__": item})
    return records


class _Retry(NamedTuple):
    """Why an attempt is retried, and the wait the server asked for (``Retry-After``)."""

    problem: str
    retry_after: float | None = None


class Fetcher:
    """GET with timeouts, retries and a bound on the number of requests."""

    def __init__(
        self,
        spec: HttpSource,
        source_name: str,
        *,
        client: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
        on_request: Callable[[str, int], None] | None = None,
    ) -> None:
        self.spec = spec
        self.source_name = source_name
        self.client = client or httpx.Client(timeout=spec.timeout_s, follow_redirects=True)
        self.sleep = sleep
        self.on_request = on_request
        self.requests = 0
        self.secret_params = set(spec.redact_params)
        if spec.auth and spec.auth.query_param:
            self.secret_params.add(spec.auth.query_param)

    def close(self) -> None:
        self.client.close()

    def _auth(self) -> tuple[dict[str, str], dict[str, str]]:
        auth = self.spec.auth
        if auth is None:
            return {}, {}
        token = os.environ.get(auth.token_env)
        if not token:
            raise HttpSourceError(
                f"source {self.source_name}: environment variable {auth.token_env} is not set "
                "(auth.token_env)"
            )
        if auth.query_param:
            return {}, {auth.query_param: token}
        value = f"{auth.scheme} {token}" if auth.scheme else token
        return {auth.header: value}, {}

    def get(
        self, url: str, params: dict[str, str] | None = None, *, exhausted: tuple[int, ...] = ()
    ) -> Response:
        """One logical GET: retried on 5xx/429/timeouts/truncated JSON; raises when it gives up."""
        headers, auth_params = self._auth()
        base = httpx.URL(url)  # a next link keeps its own query; ours is added to it
        merged = {**dict(base.params), **self.spec.params, **(params or {}), **auth_params}
        full = str(base.copy_with(params=merged)) if merged else url
        shown = redact_url(full, self.secret_params)
        retry = self.spec.retry
        last_problem = ""
        for attempt in range(1, retry.max_attempts + 1):
            if self.requests >= self.spec.max_requests:
                raise HttpSourceError(
                    f"source {self.source_name}: reached max_requests={self.spec.max_requests} at {shown}"
                )
            self.requests += 1
            wait = min(retry.backoff_s * 2 ** (attempt - 1), retry.max_backoff_s)
            outcome = self._attempt(
                full, shown, headers, exhausted, last=attempt == retry.max_attempts
            )
            if isinstance(outcome, Response):
                return outcome
            last_problem = outcome.problem
            if outcome.retry_after is not None:
                wait = max(wait, outcome.retry_after)
            if attempt < retry.max_attempts:
                log.info(
                    "%s: %s from %s; retry %d in %.1fs",
                    self.source_name,
                    last_problem,
                    shown,
                    attempt,
                    wait,
                )
                self.sleep(wait)
        raise HttpSourceError(
            f"source {self.source_name}: gave up on {shown} after {retry.max_attempts} attempts: {last_problem}"
        )

    def _attempt(
        self,
        full: str,
        shown: str,
        headers: dict[str, str],
        exhausted: tuple[int, ...],
        *,
        last: bool,
    ) -> Response | _Retry:
        """One request: the response, or why to retry; raises on a status not retried."""
        try:
            reply = self.client.get(full, headers={**self.spec.headers, **headers})
        except httpx.TimeoutException:
            return _Retry(f"timed out after {self.spec.timeout_s}s")
        except httpx.TransportError as exc:
            return _Retry(f"connection failed ({type(exc).__name__})")
        if self.on_request:
            self.on_request(shown, reply.status_code)
        fetched_at = datetime.now(tz=UTC).replace(tzinfo=None)
        status = reply.status_code
        if status in exhausted:
            return Response(shown, status, fetched_at, reply.text, "", [])
        if status in self.spec.retry.retry_on_status:
            retry_after = reply.headers.get("Retry-After")
            return _Retry(
                f"HTTP {status}", _seconds(retry_after) if status == 429 and retry_after else None
            )
        if status >= 400:
            raise HttpSourceError(
                f"source {self.source_name}: HTTP {status} from {shown}: {_snippet(reply.text)}"
            )
        try:
            document = json.loads(reply.text)
        except json.JSONDecodeError as exc:
            problem = f"response is not valid JSON ({exc.msg} at char {exc.pos})"
            if not last:
                return _Retry(problem)
            return Response(
                shown,
                status,
                fetched_at,
                reply.text,
                content_batch_id(reply.text),
                None,
                f"malformed JSON response: {problem}",
            )
        return self._response(shown, status, fetched_at, reply.text, document)

    def _response(
        self, shown: str, status: int, fetched_at: datetime, text: str, document: Any
    ) -> Response:
        try:
            records = extract_records(document, self.spec)
        except ValueError as exc:
            return Response(
                shown,
                status,
                fetched_at,
                text,
                content_batch_id(text),
                None,
                f"unexpected response shape: {exc}",
                document,
            )
        batch_id = content_batch_id(text)
        if self.spec.rotating is not None:
            value = dig(document, self.spec.rotating.batch_id_field)
            if value is None:
                return Response(
                    shown,
                    status,
                    fetched_at,
                    text,
                    batch_id,
                    None,
                    f"unexpected response shape: no '{self.spec.rotating.batch_id_field}' batch id",
                    document,
                )
            batch_id = str(value)
        return Response(shown, status, fetched_at, text, batch_id, records, None, document)


def _seconds(retry_after: str) -> float:
    try:
        return max(float(retry_after), 0.0)
    except ValueError:
        return 1.0


def _snippet(text: str, limit: int = 200) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[:limit] + "…"


def paginated(fetcher: Fetcher) -> Iterator[Response]:
    """Every page of a paginated endpoint, in order, until the API says there is no more."""
    style = fetcher.spec.pagination.style
    if style == "none":
        yield fetcher.get(fetcher.spec.url)
    elif style == "page":
        yield from _numbered_pages(fetcher)
    elif style == "offset":
        yield from _offset_pages(fetcher)
    elif style == "cursor":
        yield from _cursor_pages(fetcher)
    else:  # next_link
        yield from _linked_pages(fetcher)


def _numbered_pages(fetcher: Fetcher) -> Iterator[Response]:
    """Pages by number, until an empty page or the last of ``total_pages``."""
    spec = fetcher.spec
    page = spec.pagination
    number = page.start_page
    while True:
        response = fetcher.get(
            spec.url, {page.page_param: str(number), page.size_param: str(page.page_size)}
        )
        yield response
        if not response.records:
            return
        total = dig(response.document, "total_pages")
        if isinstance(total, int) and number >= total:
            return
        number += 1


def _offset_pages(fetcher: Fetcher) -> Iterator[Response]:
    """Pages by offset and limit, until a short page."""
    spec = fetcher.spec
    page = spec.pagination
    offset = 0
    while True:
        response = fetcher.get(
            spec.url, {page.offset_param: str(offset), page.limit_param: str(page.page_size)}
        )
        yield response
        if not response.records or len(response.records) < page.page_size:
            return
        offset += len(response.records)


def _cursor_pages(fetcher: Fetcher) -> Iterator[Response]:
    """Pages by the cursor each page gives for the next, until there is none."""
    spec = fetcher.spec
    page = spec.pagination
    cursor: str | None = None
    while True:
        params = {page.limit_param: str(page.page_size)}
        if cursor:
            params[page.cursor_param] = cursor
        response = fetcher.get(spec.url, params)
        yield response
        nxt = dig(response.document, page.next_cursor_field)
        if not nxt or response.records is None:
            return
        cursor = str(nxt)


def _linked_pages(fetcher: Fetcher) -> Iterator[Response]:
    """Pages by the next link each page gives, until there is none."""
    spec = fetcher.spec
    page = spec.pagination
    url: str | None = spec.url
    params_first: dict[str, str] | None = {page.limit_param: str(page.page_size)}
    while url:
        response = fetcher.get(url, params_first)
        params_first = None
        yield response
        nxt = dig(response.document, page.next_link_field)
        url = str(nxt) if nxt and response.records is not None else None


def rotating(
    fetcher: Fetcher, known: set[str], sleep: Callable[[float], None] = time.sleep
) -> Iterator[Response]:
    """New batches of a rotating API, until it is exhausted, ``max_batches`` or ``max_wait_s``.

    A batch whose id is in ``known`` (already in Bronze) or was seen in this run is skipped.
    """
    spec = fetcher.spec
    assert spec.rotating is not None
    rot = spec.rotating
    seen = set(known)
    new = 0
    waited = 0.0
    while True:
        response = fetcher.get(spec.url, exhausted=tuple(rot.exhausted_status))
        if response.status in rot.exhausted_status:
            log.info("%s: API says every batch was served", fetcher.source_name)
            return
        if response.records is None or response.batch_id not in seen:
            seen.add(response.batch_id)
            new += 1
            waited = 0.0
            yield response
            if rot.max_batches is not None and new >= rot.max_batches:
                return
            continue
        if waited >= rot.max_wait_s:
            return
        step = min(rot.poll_interval_s, max(rot.max_wait_s - waited, 0.0)) or rot.poll_interval_s
        sleep(step)
        waited += step
