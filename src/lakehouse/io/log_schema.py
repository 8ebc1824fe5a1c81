"""A Delta table's columns read from its log, without an engine session (delta-rs).

For listings of tables whose columns the catalog does not declare: a table registered by
its ``location`` alone, or a Bronze table whose columns were inferred from its files.
"""

from __future__ import annotations

import json
from typing import Any

_PRIMITIVES = {"long": "bigint", "integer": "int", "short": "smallint", "byte": "tinyint"}


def sql_type(delta_type: Any) -> str:
    """A Delta log type (a name or a nested JSON type) as a Spark SQL type string."""
    if isinstance(delta_type, str):
        return _PRIMITIVES.get(delta_type, delta_type)
    kind = delta_type.get("type")
    if kind == "array":
        return f"array<{sql_type(delta_type['elementType'])}>"
    if kind == "map":
        return f"map<{sql_type(delta_type['keyType'])},{sql_type(delta_type['valueType'])}>"
    fields = ",".join(f"{f['name']}:{sql_type(f['type'])}" for f in delta_type.get("fields", []))
    return f"struct<{fields}>"


def delta_log_columns(location: str) -> list[tuple[str, str, bool]] | None:
    """``(name, type, nullable)`` of the Delta table at ``location``; None when there is none
    (or delta-rs cannot read the location)."""
    from deltalake import DeltaTable

    try:
        if not DeltaTable.is_deltatable(location):
            return None
        schema = json.loads(DeltaTable(location).schema().to_json())
    except Exception:
        return None
    return [
        (f["name"], sql_type(f["type"]), bool(f.get("nullable", True))) for f in schema["fields"]
    ]
