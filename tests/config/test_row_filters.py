"""Row filters are checked when the catalog loads: errors name the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from lakehouse.config import load_project
from lakehouse.core.errors import ConfigError
from lakehouse.governance.policy import AccessPolicy
from tests.governance.row_filter_project import BUNDLE, CATALOG, ORDERS

KEY = "conf/catalog.yml: catalog.schemas.sales.tables.orders.row_filters"
FIRST_RULE = """\
            - {to: [eu-analysts], predicate: "region = 'EU'"}
"""


def _load(tmp_path: Path, rule: str) -> None:
    (tmp_path / "conf").mkdir()
    (tmp_path / "bundle.yml").write_text(BUNDLE)
    assert FIRST_RULE in CATALOG
    (tmp_path / "conf" / "catalog.yml").write_text(CATALOG.replace(FIRST_RULE, rule))
    load_project(tmp_path)


def test_the_fixture_catalog_loads_with_its_rules(tmp_path: Path) -> None:
    _load(tmp_path, FIRST_RULE)


@pytest.mark.parametrize(
    ("predicate", "message"),
    [
        (
            "region =",
            "[0].predicate: cannot parse 'region =': Required keyword: 'expression' missing "
            "for <class 'sqlglot.expressions.core.EQ'>. Line 1, Col: 8.",
        ),
        ("SELECT 1", "[0].predicate: 'SELECT 1' is not a boolean expression"),
        ("1", "[0].predicate: '1' is a constant, not a boolean expression"),
        (
            "region = 'EU'; DROP TABLE x",
            "[0].predicate: give one boolean expression (got 2 statements)",
        ),
        (
            "region IN (SELECT region FROM shop.sales.orders)",
            "[0].predicate: a row filter cannot contain a subquery (it sees one row of its table)",
        ),
        ("rand() < 0.5", "[0].predicate: rand() is not deterministic; a row filter must be"),
        (
            "current_timestamp() > '2026-01-01'",
            "[0].predicate: current_timestamp() is not deterministic; a row filter must be",
        ),
        (
            "current_user() = 'bob'",
            "[0].predicate: current_user() is not deterministic; a row filter must be",
        ),
        (
            "count(*) > 1",
            "[0].predicate: a row filter works row by row: no aggregate or window functions",
        ),
        (
            "country = 'EU'",
            "[0].predicate: 'country' is not a column of the table "
            "(columns: id, region, email, amount)",
        ),
    ],
)
def test_a_bad_predicate_is_refused(tmp_path: Path, predicate: str, message: str) -> None:
    rule = f'            - {{to: [eu-analysts], predicate: "{predicate}"}}\n'
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, rule)
    assert str(err.value) == f"{KEY}{message}"


def test_to_names_catalog_principals_or_groups(tmp_path: Path) -> None:
    rule = "            - {to: [bob, eu], predicate: \"region = 'EU'\"}\n"
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, rule)
    assert str(err.value) == (
        f"{KEY}[0].to[1]: unknown principal 'eu': declare it under catalog.principals "
        "(users, service_principals or groups)"
    )


def test_a_rule_needs_a_predicate(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, "            - {to: [bob]}\n")
    assert str(err.value) == f"{KEY}[0].predicate: required key is missing"


# ------------------------------------------------------------------ conf/grants.yml


def _load_with_grants_file(tmp_path: Path, grants: str) -> AccessPolicy:
    (tmp_path / "conf").mkdir()
    (tmp_path / "bundle.yml").write_text(BUNDLE)
    (tmp_path / "conf" / "catalog.yml").write_text(CATALOG)
    (tmp_path / "conf" / "grants.yml").write_text(grants)
    project = load_project(tmp_path)
    return AccessPolicy(project.catalog, project.grants)


def test_row_filters_declared_next_to_grants_join_the_tables_own(tmp_path: Path) -> None:
    policy = _load_with_grants_file(
        tmp_path,
        "row_filters:\n"
        '  - {table: shop.sales.orders, to: [bob], predicate: "amount > 100"}\n'
        '  - {table: shop.sales.orders, to: [erin], predicate: "id = 1"}\n',
    )
    assert policy.row_filter_for("bob", ORDERS) == "(region = 'EU') OR (amount > 100)"
    assert policy.row_filter_for("erin", ORDERS) == "id = 1"
    assert policy.row_filter_for("dave", ORDERS) == "email LIKE '%@example.com'"


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        (
            '{table: shop.sales.refunds, predicate: "true"}',
            "row_filters[1].table: unknown table 'shop.sales.refunds' "
            "(give a catalog.schema.table of the catalog)",
        ),
        (
            '{table: sales.orders, predicate: "true"}',
            "row_filters[1].table: unknown table 'sales.orders' "
            "(give a catalog.schema.table of the catalog)",
        ),
        (
            '{table: shop.sales.orders, predicate: "rand() > 0"}',
            "row_filters[1].predicate: rand() is not deterministic; a row filter must be",
        ),
        (
            '{table: shop.sales.orders, to: [nobody], predicate: "true"}',
            "row_filters[1].to[0]: unknown principal 'nobody': declare it under "
            "catalog.principals (users, service_principals or groups)",
        ),
    ],
)
def test_a_bad_row_filter_next_to_grants_names_that_file(
    tmp_path: Path, rule: str, message: str
) -> None:
    grants = f'row_filters:\n  - {{table: shop.sales.orders, predicate: "true"}}\n  - {rule}\n'
    with pytest.raises(ConfigError) as err:
        _load_with_grants_file(tmp_path, grants)
    assert str(err.value) == f"conf/grants.yml: {message}"
