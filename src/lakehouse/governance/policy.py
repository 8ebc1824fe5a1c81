"""Who may do what: Unity Catalog style privileges resolved from the catalog YAML (pure).

Securables form a hierarchy: catalog > schema > table. A privilege granted on a catalog or
schema is inherited by everything below it; ``ALL PRIVILEGES`` includes every privilege;
the owner of an object (or of anything above it) holds all privileges on it. A principal
acts with its own grants and those of every group it belongs to, directly or through other
groups. As in Unity Catalog, reading a table needs ``USE CATALOG`` on its catalog and
``USE SCHEMA`` on its schema as well as ``SELECT`` on the table.

``UNMASK`` is this project's privilege for masked columns: without it a reader sees a
column declared with ``mask`` hashed, redacted or nulled.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from lakehouse.config.catalog import CatalogSpec, Grant, SecurableGrant, TableSpec
from lakehouse.config.validate import governance_enabled

ALL = "ALL PRIVILEGES"


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str


def parents(securable: str) -> list[str]:
    """``c.s.t`` -> ``[c, c.s, c.s.t]``."""
    parts = securable.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


class AccessPolicy:
    """Grants, owners and group memberships of one catalog."""

    def __init__(self, catalog: CatalogSpec, external: list[SecurableGrant] | None = None):
        self.catalog = catalog
        self.enabled = governance_enabled(catalog, external or [])
        self._grants: dict[str, list[Grant]] = {catalog.name: list(catalog.grants)}
        self._owners: dict[str, str] = {}
        if catalog.owner:
            self._owners[catalog.name] = catalog.owner
        self._tables: dict[str, TableSpec] = {}
        for schema_name, schema in catalog.schemas.items():
            s_name = f"{catalog.name}.{schema_name}"
            self._grants[s_name] = list(schema.grants)
            if schema.owner:
                self._owners[s_name] = schema.owner
            for table_name, table in schema.tables.items():
                t_name = f"{s_name}.{table_name}"
                self._grants[t_name] = list(table.grants)
                self._tables[t_name] = table
                if table.owner:
                    self._owners[t_name] = table.owner
        for grant in external or []:
            self._grants.setdefault(grant.securable, []).append(grant)
        self._groups = catalog.principals.groups

    # ------------------------------------------------------------ identities

    def identities(self, principal: str) -> set[str]:
        """The principal and every group it belongs to (transitively)."""
        found = {principal}
        changed = True
        while changed:
            changed = False
            for group, members in self._groups.items():
                if group not in found and found.intersection(members):
                    found.add(group)
                    changed = True
        return found

    def owner(self, securable: str) -> str | None:
        """The effective owner: the object's own, else the nearest owner above it."""
        for level in reversed(parents(securable)):
            if level in self._owners:
                return self._owners[level]
        return None

    def effective_grants(self, securable: str) -> list[tuple[str, list[str], str]]:
        """(principal, privileges, granted on) for the object and everything above it."""
        out: list[tuple[str, list[str], str]] = []
        for level in parents(securable):
            out.extend(
                (g.principal, list(g.privileges), level) for g in self._grants.get(level, [])
            )
        return out

    def members(self, group: str) -> list[str]:
        return list(self._groups.get(group, []))

    # ------------------------------------------------------------ decisions

    def holds(self, principal: str, privilege: str, securable: str) -> Decision:
        """Whether ``principal`` holds ``privilege`` on ``securable`` (no prerequisites)."""
        if not self.enabled:
            return Decision(True, "no access control declared in the catalog")
        who = self.identities(principal)
        for level in parents(securable):
            owner = self._owners.get(level)
            if owner in who:
                via = "" if owner == principal else f" (member of {owner})"
                return Decision(True, f"owner of {level}{via}")
        for level in parents(securable):
            for grant in self._grants.get(level, []):
                if grant.principal in who and (
                    privilege in grant.privileges or ALL in grant.privileges
                ):
                    granted = privilege if privilege in grant.privileges else ALL
                    via = "" if grant.principal == principal else f" to {grant.principal}"
                    return Decision(True, f"{granted} on {level}{via}")
        return Decision(False, f"{principal} lacks {privilege} on {securable}")

    def check(self, principal: str, privilege: str, securable: str) -> Decision:
        """Unity Catalog semantics: USE CATALOG and USE SCHEMA on the path, then the privilege.

        ``securable`` is a table for SELECT / MODIFY / UNMASK and a schema for CREATE TABLE.
        """
        path = parents(securable)
        needed = [("USE CATALOG", path[0])]
        if len(path) > 1:
            needed.append(("USE SCHEMA", path[1]))
        needed.append((privilege, securable))
        decision = Decision(True, "")
        for need, on in needed:
            decision = self.holds(principal, need, on)
            if not decision.allowed:
                return decision
        return decision

    # ------------------------------------------------------------ masks

    def masked_columns(self, table: str) -> dict[str, str]:
        """Column -> mask kind for the table's masked columns."""
        spec = self._tables.get(table)
        if spec is None:
            return {}
        return {c.name: c.mask for c in spec.columns if c.mask is not None}

    def mask(self, principal: str, table: str, df: DataFrame) -> DataFrame:
        """``df`` with masked columns replaced, unless the principal holds UNMASK."""
        masks = {c: m for c, m in self.masked_columns(table).items() if c in df.columns}
        if not masks or self.holds(principal, "UNMASK", table).allowed:
            return df
        types = {f.name: f.dataType for f in df.schema.fields}
        return df.withColumns(
            {name: mask_expression(name, kind).cast(types[name]) for name, kind in masks.items()}
        )


def mask_expression(column: str, kind: str) -> Column:
    """hash: SHA-256 hex of the value (joins still match); redact: '***'; null: NULL."""
    col = F.col(column)
    if kind == "hash":
        return F.when(col.isNull(), F.lit(None)).otherwise(F.sha2(col.cast("string"), 256))
    if kind == "redact":
        return F.when(col.isNull(), F.lit(None)).otherwise(F.lit("***"))
    return F.lit(None)
