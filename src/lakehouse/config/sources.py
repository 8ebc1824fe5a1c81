"""Bronze source models: landing folders and HTTP APIs, and the Bronze metadata columns."""

from __future__ import annotations

import codecs
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from lakehouse.config.base import StrictModel, TableName, secret_reason
from lakehouse.config.catalog import Column

OneChar = Annotated[str, Field(min_length=1, max_length=1)]


class CsvOptions(StrictModel):
    """How a CSV file is split into records (the keys of Spark's CSV reader, snake_case)."""

    delimiter: OneChar = ","
    header: bool = Field(
        default=True,
        description="false: no header line; columns are the table's, in catalog order "
        "(_c0, _c1 ... when none are declared)",
    )
    skip_rows: int = Field(default=0, ge=0, description="lines skipped before the header or data")
    quote: OneChar = '"'
    escape: OneChar | None = Field(
        default=None,
        description="escapes a quote inside a quoted field; none (or the quote itself): "
        'a doubled quote ("") is one quote',
    )
    comment: OneChar | None = Field(default=None, description="lines starting with it are skipped")
    multiline: bool = Field(
        default=True, description="a quoted field may span lines; false: one record per line"
    )
    native_reader: bool = Field(
        default=True,
        description="read a plain file (no quotes, every line as wide as the header) with the "
        "engine's CSV reader; false: parse every file in the driver (the same rows, slower)",
    )

    @model_validator(mode="after")
    def _distinct(self) -> CsvOptions:
        if self.quote == self.delimiter:
            raise ValueError(f"csv.quote and csv.delimiter are both {self.quote!r}")
        if self.comment is not None and self.comment in (self.delimiter, self.quote):
            raise ValueError(f"csv.comment {self.comment!r} is also the delimiter or quote")
        return self


class BadRowsPolicy(StrictModel):
    """What a file whose rows are mostly corrupt or mostly rescued does to the run."""

    max_fraction: float = Field(
        default=0.5, ge=0, le=1, description="bad rows of a file above this fraction: `action`"
    )
    action: Literal["warn", "fail"] = Field(
        default="warn",
        description="warn: land it, the run succeeds with a warning; fail: keep the file "
        "aside (quarantine), land nothing of it, fail the ingest task",
    )


SchemaDrift = Literal["rescue", "add_new_columns", "fail"]


def known_codec(name: str) -> str:
    """``name`` if Python knows the codec (``latin-1``, ``cp1252``, ``utf-16`` ...)."""
    try:
        codecs.lookup(name)
    except LookupError:
        raise ValueError(
            f"unknown encoding {name!r} (e.g. utf-8, latin-1, cp1252, utf-16)"
        ) from None
    return name


Encoding = Annotated[str, AfterValidator(known_codec)]


class FileSource(StrictModel):
    """A landing directory ingested incrementally: each file once (path + size + mtime)."""

    kind: Literal["files"]
    description: str = ""
    path: str = Field(description="landing directory: a local path or a URI pyarrow can list")
    glob: str = "*"
    format: Literal["csv", "jsonl", "json", "parquet", "excel"]
    csv: CsvOptions = Field(default_factory=CsvOptions)
    target: TableName
    schema_drift: SchemaDrift | None = Field(
        default=None,
        description="default: rescue; add_new_columns when the Bronze table declares no "
        "columns (its schema is inferred from the files, as Auto Loader does)",
    )
    infer_column_types: bool = Field(
        True,
        description="for a Bronze table without declared columns: infer bigint, double, "
        "boolean, date and timestamp columns from the values (the default, like Auto "
        "Loader's cloudFiles.inferColumnTypes and read_files); false: every column a string",
    )
    infer_max_files: int = Field(
        default=10, ge=1, description="files sampled to infer the schema (the first, by path)"
    )
    infer_max_bytes: int = Field(
        default=50 << 20, ge=1, description="bytes sampled to infer the schema (default 50 MiB)"
    )
    schema_location: str | None = Field(
        default=None,
        description="where inferred schema versions are kept (0.json, 1.json ...); "
        "default: <data_root>/_schemas/<source>",
    )
    files_per_commit: int = Field(default=100, ge=1, description="files appended per Delta commit")
    encoding: Encoding = Field("utf-8", description="codec of text files without a BOM")
    follow_symlinks_outside: bool = Field(False, description="else such symlinks are refused")
    bad_rows: BadRowsPolicy = Field(default_factory=BadRowsPolicy)


class RetryPolicy(StrictModel):
    """Exponential backoff on 5xx, 429 (honouring Retry-After) and timeouts."""

    max_attempts: int = Field(default=5, ge=1)
    backoff_s: float = Field(default=0.5, ge=0)
    max_backoff_s: float = Field(default=30.0, ge=0)
    retry_on_status: list[int] = Field(default_factory=lambda: [429, 500, 502, 503, 504])


class AuthSpec(StrictModel):
    """A token read from an environment variable at request time; never stored anywhere."""

    token_env: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    header: str = "Authorization"
    scheme: str = Field(default="Bearer", description="prefix before the token; empty for none")
    query_param: str | None = Field(
        default=None, description="send the token as this query parameter instead of a header"
    )


class Pagination(StrictModel):
    style: Literal["none", "page", "offset", "cursor", "next_link"] = "none"
    page_size: int = Field(default=100, ge=1)
    page_param: str = "page"
    size_param: str = "page_size"
    start_page: int = 1
    offset_param: str = "offset"
    limit_param: str = "limit"
    cursor_param: str = "cursor"
    next_cursor_field: str = "next_cursor"
    next_link_field: str = "next"


class RotatingBatches(StrictModel):
    """An API that serves one batch at a time and moves on to a new one on its own schedule."""

    batch_id_field: str = "batch_number"
    poll_interval_s: float = Field(default=30.0, ge=0)
    max_wait_s: float = Field(
        default=0.0, ge=0, description="how long to wait for a new batch before stopping"
    )
    max_batches: int | None = Field(default=None, ge=1, description="new batches per run")
    exhausted_status: list[int] = Field(
        default_factory=lambda: [400], description="statuses meaning: every batch was served"
    )


class HttpSource(StrictModel):
    """A JSON API: paginated, or serving rotating batches."""

    kind: Literal["http"]
    description: str = ""
    url: str = Field(pattern=r"^https?://")
    params: dict[str, str] = Field(default_factory=dict)
    headers: dict[str, str] = Field(default_factory=dict)
    auth: AuthSpec | None = None
    redact_params: list[str] = Field(
        default_factory=list, description="query parameters masked in _request"
    )
    timeout_s: float = Field(default=30.0, gt=0)
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    max_requests: int = Field(default=1000, ge=1, description="upper bound on requests per run")
    records_field: str = Field(
        default="data", description="dotted path to the record list; empty: the payload itself"
    )
    columns: list[str] | None = Field(
        default=None, description="names for records that are JSON arrays, in order"
    )
    pagination: Pagination = Field(default_factory=Pagination)
    rotating: RotatingBatches | None = None
    target: TableName
    schema_drift: SchemaDrift = "rescue"

    @model_validator(mode="after")
    def _one_mode(self) -> HttpSource:
        if self.rotating is not None and self.pagination.style != "none":
            raise ValueError("a source is either rotating or paginated, not both")
        for header, value in self.headers.items():
            reason = secret_reason(header, value)
            if reason:
                raise ValueError(f"header {header!r} {reason}: use auth.token_env")
        return self


Source = Annotated[FileSource | HttpSource, Field(discriminator="kind")]


BRONZE_METADATA_COLUMNS: tuple[Column, ...] = (
    Column(name="_source", type="string", nullable=False, comment="source name from conf/"),
    Column(name="_source_file", type="string", comment="file the row came from"),
    Column(name="_request", type="string", comment="HTTP request URL, secrets redacted"),
    Column(name="_http_status", type="int", comment="HTTP status of the response"),
    Column(name="_fetched_at", type="timestamp", comment="when the response arrived"),
    Column(name="_batch_id", type="string", comment="file identity or API batch id"),
    Column(name="_ingested_at", type="timestamp", nullable=False, comment="when it landed"),
    Column(name="_run_id", type="string", nullable=False, comment="the job run that ingested it"),
    Column(name="_corrupt", type="string", comment="why the record could not be parsed"),
    Column(name="_raw", type="string", comment="the raw record text, kept when unparseable"),
    Column(name="_rescued_data", type="string", comment="JSON of values that did not fit"),
)
