"""The MERGE statement builder (pure: no session needed)."""

from __future__ import annotations

from lakehouse.io.merge import merge_statement


def test_upsert_updates_only_changed_rows_and_inserts_the_rest() -> None:
    sql = merge_statement("`s`.`t`", "v", ["id", "x"], ["id"])
    assert sql == (
        "MERGE INTO `s`.`t` t USING v s ON t.`id` <=> s.`id` "
        "WHEN MATCHED AND NOT false AND (NOT (t.`x` <=> s.`x`)) THEN UPDATE SET `x` = s.`x` "
        "WHEN NOT MATCHED AND NOT false THEN INSERT (`id`, `x`) VALUES (s.`id`, s.`x`)"
    )


def test_deletes_respect_newer_than_and_insert_only_never_updates() -> None:
    sql = merge_statement(
        "`s`.`t`", "v", ["id", "ts"], ["id"], newer_than="ts", delete_flag="_deleted"
    )
    assert "WHEN MATCHED AND s.`_deleted` AND s.`ts` >= t.`ts` THEN DELETE" in sql
    assert "WHEN NOT MATCHED AND NOT s.`_deleted` THEN INSERT" in sql
    only = merge_statement("`s`.`t`", "v", ["id", "x"], ["id"], insert_only=True)
    assert "UPDATE" not in only and "WHEN NOT MATCHED" in only
