"""Catalog models: the catalog, its schemas and tables, columns, grants and principals."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, field_validator, model_validator

from lakehouse.config.base import Identifier, StrictModel

# Table features the embedded engine (Sail) refuses to write; a table carrying them
# could no longer be written by the default engine.
UNSUPPORTED_TABLE_PROPERTIES = frozenset(
    {
        "delta.enablechangedatafeed",
        "delta.enablerowtracking",
        "delta.feature.domainmetadata",
        "delta.feature.rowtracking",
        "delta.feature.changedatafeed",
    }
)

SPARK_TYPE = re.compile(
    r"^(string|boolean|tinyint|byte|smallint|short|int|integer|bigint|long|float|double|date|"
    r"timestamp|timestamp_ntz|binary|decimal\(\s*\d+\s*,\s*\d+\s*\)|"
    r"(array|map|struct)<.+>)$",
    re.IGNORECASE,
)


PRIVILEGES = (
    "USE CATALOG",
    "USE SCHEMA",
    "SELECT",
    "MODIFY",
    "CREATE TABLE",
    "UNMASK",
    "ALL PRIVILEGES",
)


def _privilege_spelling(value: Any) -> Any:
    """Databricks' API spelling (``USE_SCHEMA``, ``ALL_PRIVILEGES``) as the SQL one."""
    return value.replace("_", " ") if isinstance(value, str) else value


Privilege = Annotated[
    Literal[
        "USE CATALOG", "USE SCHEMA", "SELECT", "MODIFY", "CREATE TABLE", "UNMASK", "ALL PRIVILEGES"
    ],
    BeforeValidator(_privilege_spelling),
]
MaskKind = Literal["hash", "redact", "null"]


class Grant(StrictModel):
    """Privileges for a user, service principal or group (Unity Catalog privilege names)."""

    principal: str = Field(min_length=1)
    privileges: list[Privilege] = Field(min_length=1)


class SecurableGrant(Grant):
    """A grant declared apart from its object (e.g. in a conf/grants.yml)."""

    securable: str = Field(description="catalog, catalog.schema or catalog.schema.table")


class Principals(StrictModel):
    users: list[str] = Field(default_factory=list)
    service_principals: list[str] = Field(default_factory=list)
    groups: dict[str, list[str]] = Field(
        default_factory=dict, description="group -> members (users, service principals, groups)"
    )


class Column(StrictModel):
    name: Identifier
    type: str
    nullable: bool = True
    comment: str = ""
    tags: list[str] = Field(default_factory=list, description="e.g. pii")
    mask: MaskKind | None = Field(
        default=None, description="hash | redact | null unless the reader holds UNMASK"
    )

    @field_validator("type")
    @classmethod
    def _spark_type(cls, value: str) -> str:
        if not SPARK_TYPE.match(value.strip()):
            raise ValueError(f"{value!r} is not a Spark SQL type (e.g. string, int, decimal(10,2))")
        return value.strip().lower()


class RowFilter(StrictModel):
    """Which rows of a table a reader sees (Unity Catalog style row filter).

    A reader sees the rows matching any filter whose ``to`` names it or one of its groups;
    a reader no filter names sees the rows matching any filter with an empty ``to``; a
    reader no filter applies to sees no rows. Owners are not exempt.
    """

    predicate: str = Field(
        min_length=1, description="a Spark SQL boolean expression over the table's columns"
    )
    to: list[str] = Field(
        default_factory=list, description="principals or groups (empty: everyone else)"
    )


class SecurableRowFilter(RowFilter):
    """A row filter declared apart from its table (e.g. in a conf/grants.yml)."""

    table: str = Field(description="catalog.schema.table")


class TableSpec(StrictModel):
    layer: Literal["bronze", "silver", "gold", "system"]
    description: str = ""
    location: str | None = Field(
        default=None, description="default: <storage_root>/<schema>/<table>"
    )
    columns: list[Column] = Field(default_factory=list)
    keys: list[str] = Field(default_factory=list)
    partition_by: list[str] = Field(default_factory=list)
    properties: dict[str, str] = Field(default_factory=dict)
    owner: str | None = Field(default=None, description="default: the schema's owner")
    tags: dict[str, str] = Field(default_factory=dict)
    grants: list[Grant] = Field(default_factory=list)
    row_filters: list[RowFilter] = Field(
        default_factory=list, description="which rows each reader sees (none: all rows)"
    )

    @model_validator(mode="after")
    def _known_columns(self) -> TableSpec:
        names = [c.name for c in self.columns]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate column: {', '.join(dupes)}")
        for field_name in ("keys", "partition_by"):
            if not names:  # no columns declared: they come from the data
                break
            for col in getattr(self, field_name):
                if col not in names:
                    raise ValueError(f"{field_name} names {col!r}, which is not a declared column")
        for prop in self.properties:
            if prop.lower() in UNSUPPORTED_TABLE_PROPERTIES:
                raise ValueError(
                    f"table property {prop!r} enables a Delta feature the embedded engine "
                    "cannot write; remove it"
                )
        return self


class SchemaSpec(StrictModel):
    description: str = ""
    owner: str | None = Field(default=None, description="default: the catalog's owner")
    tags: dict[str, str] = Field(default_factory=dict)
    grants: list[Grant] = Field(default_factory=list)
    tables: dict[Identifier, TableSpec] = Field(default_factory=dict)


class CatalogSpec(StrictModel):
    name: Identifier
    storage_root: str
    owner: str | None = None
    principals: Principals = Field(default_factory=Principals)
    grants: list[Grant] = Field(default_factory=list)
    schemas: dict[Identifier, SchemaSpec] = Field(default_factory=dict)
