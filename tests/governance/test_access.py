"""Privilege resolution and masks from the catalog YAML (pure)."""

from __future__ import annotations

import hashlib

import pytest
from pyspark.sql import SparkSession

from lakehouse.config.catalog import CatalogSpec, SecurableGrant
from lakehouse.governance.policy import AccessPolicy, parents

CATALOG = CatalogSpec.model_validate(
    {
        "name": "c",
        "storage_root": "/tmp/x",
        "owner": "admins",
        "principals": {
            "users": ["ann", "bob", "cid", "dee"],
            "service_principals": ["job"],
            "groups": {
                "admins": ["ann", "job"],
                "analysts": ["bob", "seniors"],
                "seniors": ["cid"],
            },
        },
        "grants": [{"principal": "analysts", "privileges": ["USE CATALOG"]}],
        "schemas": {
            "silver": {
                "grants": [{"principal": "analysts", "privileges": ["USE SCHEMA"]}],
                "tables": {
                    "customers": {
                        "layer": "silver",
                        "grants": [{"principal": "seniors", "privileges": ["SELECT"]}],
                        "columns": [
                            {"name": "id", "type": "string"},
                            {"name": "email", "type": "string", "tags": ["pii"], "mask": "hash"},
                            {"name": "name", "type": "string", "tags": ["pii"], "mask": "redact"},
                            {"name": "age", "type": "int", "tags": ["pii"], "mask": "null"},
                        ],
                    },
                    "orders": {"layer": "silver", "columns": [{"name": "id", "type": "string"}]},
                },
            },
            "gold": {
                "owner": "dee",
                "tables": {"f": {"layer": "gold", "columns": [{"name": "id", "type": "string"}]}},
            },
        },
    }
)
EXTERNAL = [
    SecurableGrant(securable="c.silver.orders", principal="bob", privileges=["ALL PRIVILEGES"])
]


@pytest.fixture()
def policy() -> AccessPolicy:
    return AccessPolicy(CATALOG, EXTERNAL)


def test_parents() -> None:
    assert parents("c.s.t") == ["c", "c.s", "c.s.t"]


def test_groups_are_transitive(policy: AccessPolicy) -> None:
    assert policy.identities("cid") == {"cid", "seniors", "analysts"}
    assert policy.identities("job") == {"job", "admins"}


def test_owners_hold_everything_below_them(policy: AccessPolicy) -> None:
    for privilege in ("SELECT", "MODIFY", "UNMASK"):
        decision = policy.check("job", privilege, "c.silver.customers")
        assert decision.allowed and "owner of c (member of admins)" in decision.reason
    assert policy.check("job", "CREATE TABLE", "c.silver").allowed
    # a schema owner owns its tables but not the catalog's other schemas
    assert policy.holds("dee", "SELECT", "c.gold.f").allowed
    assert not policy.holds("dee", "SELECT", "c.silver.orders").allowed
    assert policy.owner("c.gold.f") == "dee"
    assert policy.owner("c.silver.orders") == "admins"


def test_select_needs_use_catalog_and_use_schema_too(policy: AccessPolicy) -> None:
    # cid inherits USE CATALOG / USE SCHEMA through analysts and SELECT through seniors
    allowed = policy.check("cid", "SELECT", "c.silver.customers")
    assert allowed.allowed and allowed.reason == "SELECT on c.silver.customers to seniors"
    denied = policy.check("bob", "SELECT", "c.silver.customers")
    assert not denied.allowed and denied.reason == "bob lacks SELECT on c.silver.customers"
    # ALL PRIVILEGES on a table is not enough without USE SCHEMA on its schema
    assert policy.check("bob", "MODIFY", "c.silver.orders").allowed
    no_path = AccessPolicy(CATALOG.model_copy(update={"grants": []}), EXTERNAL)
    denied = no_path.check("bob", "MODIFY", "c.silver.orders")
    assert denied.reason == "bob lacks USE CATALOG on c"
    assert not policy.check("cid", "MODIFY", "c.silver.customers").allowed
    assert not policy.check("stranger", "SELECT", "c.silver.orders").allowed


def test_a_catalog_without_principals_or_grants_is_open() -> None:
    bare = CatalogSpec(name="c", storage_root="/tmp/x")
    policy = AccessPolicy(bare)
    assert not policy.enabled
    assert policy.check("anyone", "MODIFY", "c.s.t").allowed


def test_effective_grants_include_inherited_ones(policy: AccessPolicy) -> None:
    assert policy.effective_grants("c.silver.customers") == [
        ("analysts", ["USE CATALOG"], "c"),
        ("analysts", ["USE SCHEMA"], "c.silver"),
        ("seniors", ["SELECT"], "c.silver.customers"),
    ]


@pytest.mark.transform
def test_masks_apply_without_unmask(spark: SparkSession, policy: AccessPolicy) -> None:
    df = spark.createDataFrame(
        [("1", "a@x.io", "Ann", 41), ("2", None, "Bob", None)],
        "id string, email string, name string, age int",
    )
    masked = policy.mask("cid", "c.silver.customers", df)
    assert masked.schema == df.schema
    rows = sorted(tuple(r) for r in masked.collect())
    assert rows == [
        ("1", hashlib.sha256(b"a@x.io").hexdigest(), "***", None),
        ("2", None, "***", None),
    ]
    clear = policy.mask("job", "c.silver.customers", df)  # the owner holds UNMASK
    assert sorted(tuple(r) for r in clear.collect()) == sorted(tuple(r) for r in df.collect())
