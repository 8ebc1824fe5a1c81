"""The ``MERGE INTO`` statement of an upsert on keys (a pure function of its options)."""

from __future__ import annotations

from lakehouse.io.sql import quote


def merge_statement(
    target: str,
    source_view: str,
    columns: list[str],
    keys: list[str],
    *,
    newer_than: str | None = None,
    insert_only: bool = False,
    delete_flag: str | None = None,
) -> str:
    """``MERGE INTO target t USING source_view s ...`` on ``keys``.

    Matched rows are updated only when a column changed (so replaying the same data commits
    nothing), and, with ``newer_than``, only when the source's value of that column is at
    least the target's. ``insert_only`` never updates matched rows. ``delete_flag`` names a
    boolean source column: flagged rows delete their match (respecting ``newer_than``) and
    are never inserted. ``columns`` are the table columns the source carries.
    """
    on = " AND ".join(f"t.{quote(k)} <=> s.{quote(k)}" for k in keys)
    newer = f" AND s.{quote(newer_than)} >= t.{quote(newer_than)}" if newer_than else ""
    flagged = f"s.{quote(delete_flag)}" if delete_flag else "false"
    clauses = []
    if delete_flag:
        clauses.append(f"WHEN MATCHED AND {flagged}{newer} THEN DELETE")
    if not insert_only:
        others = [c for c in columns if c not in keys]
        changed = " OR ".join(f"NOT (t.{quote(c)} <=> s.{quote(c)})" for c in others) or "false"
        assignments = ", ".join(f"{quote(c)} = s.{quote(c)}" for c in others)
        if assignments:
            clauses.append(
                f"WHEN MATCHED AND NOT {flagged} AND ({changed}){newer} THEN UPDATE SET {assignments}"
            )
    names = ", ".join(quote(c) for c in columns)
    values = ", ".join(f"s.{quote(c)}" for c in columns)
    clauses.append(f"WHEN NOT MATCHED AND NOT {flagged} THEN INSERT ({names}) VALUES ({values})")
    return f"MERGE INTO {target} t USING {source_view} s ON {on} {' '.join(clauses)}"
