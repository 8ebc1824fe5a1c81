"""Who may do what: Unity Catalog style privileges resolved from the catalog YAML (pure).

Securables form a hierarchy: catalog > schema > table. A privilege granted on a catalog or
schema is inherited by everything below it; ``ALL PRIVILEGES`` includes every privilege;
the owner of an object (or of anything above it) holds all privileges on it. A principal
acts with its own grants and those of every group it belongs to, directly or through other
groups. As in Unity Catalog, reading a table needs ``USE CATALOG`` on its catalog and
``USE SCHEMA`` on its schema as well as ``SELECT`` on the table.

``UNMASK`` is this project's privilege for masked columns: without it a reader sees a
column declared with ``mask`` hashed (keyed: see :mod:`lakehouse.governance.masks`),
redacted or nulled.

Row filters (:mod:`lakehouse.governance.row_filters`) say which rows each reader sees;
:meth:`AccessPolicy.restrict` applies them, then the masks, for every governed Spark read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from lakehouse.config.catalog import CatalogSpec, Grant, RowFilter, SecurableGrant, TableSpec
from lakehouse.config.validate import governance_enabled
from lakehouse.governance import row_filters
from lakehouse.governance.masks import MaskKey, spark_mask

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
    """Grants, owners and group memberships of one catalog.

    ``mask_key`` gives the catalog's mask key when a ``hash`` mask is first applied (it may
    read or create the key file); without it a ``hash`` mask is refused.
    """

    def __init__(
        self,
        catalog: CatalogSpec,
        external: list[SecurableGrant] | None = None,
        mask_key: Callable[[], MaskKey] | None = None,
    ):
        self.catalog = catalog
        self._mask_key_source = mask_key
        self._mask_key: MaskKey | None = None
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
        row_filter = self.row_filter_for(principal, securable) if privilege == "SELECT" else None
        if row_filter is not None:  # on record with the decision (the access audit)
            return Decision(True, f"{decision.reason}; row filter: {row_filter}")
        return decision

    # ------------------------------------------------------------ row filters

    def row_filter_for(self, principal: str, table: str) -> str | None:
        """The Spark SQL predicate selecting the rows ``principal`` sees (None: all rows);
        owners are not exempt. See :mod:`lakehouse.governance.row_filters`."""
        rules = self._row_filters(table)
        return row_filters.spark_row_filter(rules, self.identities(principal)) if rules else None

    def duckdb_row_filter(self, principal: str, table: str) -> str | None:
        """:meth:`row_filter_for` in DuckDB SQL (the SQL endpoint's mirror)."""
        rules = self._row_filters(table)
        if not rules:
            return None
        return row_filters.duckdb_row_filter(rules, self.identities(principal), table)

    def _row_filters(self, table: str) -> list[RowFilter]:
        spec = self._tables.get(table)
        return list(spec.row_filters) if spec is not None else []

    def restrict(self, principal: str, table: str, df: DataFrame) -> DataFrame:
        """``df`` as ``principal`` may see it: rows filtered (on raw values), then masked.
        Every governed Spark read goes through here (:meth:`GovernedStore.read`)."""
        row_filter = self.row_filter_for(principal, table)
        if row_filter is not None:
            df = df.filter(F.expr(row_filter))
        return self.mask(principal, table, df)

    # ------------------------------------------------------------ masks

    def masked_columns(self, table: str) -> dict[str, str]:
        """Column -> mask kind for the table's masked columns."""
        spec = self._tables.get(table)
        if spec is None:
            return {}
        return {c.name: c.mask for c in spec.columns if c.mask is not None}

    def mask_key(self) -> MaskKey | None:
        """The catalog's mask key (loaded once), or None when the policy was given none."""
        if self._mask_key is None and self._mask_key_source is not None:
            self._mask_key = self._mask_key_source()
        return self._mask_key

    def masks_for(self, principal: str, table: str) -> dict[str, str]:
        """Column -> mask kind as ``principal`` reads the table: none with UNMASK. Every
        reader applies these (Spark reads, ``lakehouse sql``, the SQL endpoint's mirror)."""
        masks = self.masked_columns(table)
        if not masks or self.holds(principal, "UNMASK", table).allowed:
            return {}
        return masks

    def mask(self, principal: str, table: str, df: DataFrame) -> DataFrame:
        """``df`` with masked columns replaced, unless the principal holds UNMASK."""
        masks = {c: m for c, m in self.masks_for(principal, table).items() if c in df.columns}
        if not masks:
            return df
        types = {f.name: f.dataType for f in df.schema.fields}
        key = self.mask_key() if "hash" in masks.values() else None
        return df.withColumns(
            {
                name: mask_expression(name, kind, key).cast(types[name])
                for name, kind in masks.items()
            }
        )


def mask_expression(column: str, kind: str, key: MaskKey | None = None) -> Column:
    """hash: HMAC-SHA256 hex of the value under ``key`` (joins still match; refused without
    a key); redact: '***'; null: NULL. See :mod:`lakehouse.governance.masks`."""
    return spark_mask(column, kind, key)
