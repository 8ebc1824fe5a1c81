"""The lineage graph from meta.lineage rows: latest writes, traversal, tree, DOT, Mermaid, pictures."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from lakehouse.core.errors import LakehouseError
from lakehouse.governance.lineage import graph as lg
from lakehouse.governance.lineage.graph import (
    LineageEdge,
    build_graph,
    column_table,
    edges_from_rows,
    latest_edges,
    render_tree,
    to_dot,
    to_mermaid,
    write_picture,
)

BO = "c.bronze.orders"
BE = "c.bronze.events"
SO = "c.silver.orders"
SE = "c.silver.events"
G = "c.gold.sales"
T0 = dt.datetime(2026, 1, 1, 8, 0)


def row(
    output: str,
    version: int,
    kind: str,
    name: str | None,
    read: int | None,
    *,
    run: str = "r1",
    minutes: int = 0,
    columns: dict[str, list[str]] | None = None,
) -> dict[str, Any]:
    return {
        "event_time": T0 + dt.timedelta(minutes=minutes),
        "run_id": run,
        "job": "demo",
        "task": "t",
        "principal": "p",
        "operation": "merge",
        "output_table": output,
        "output_version": version,
        "input_kind": kind,
        "input_name": name,
        "input_version": read,
        "column_lineage": json.dumps(columns) if columns else None,
    }


ROWS = [
    row(BO, 1, "files", "/landing/orders", None),
    row(BE, 4, "http", "http://api:80/data", None),
    row(SO, 1, "table", BO, 1),
    row(SE, 2, "table", BE, 4),
    # G was built twice: from silver.orders only, then from both Silver tables
    row(G, 1, "table", SO, 1),
    row(G, 2, "table", SO, 1, run="r2", minutes=5, columns={"revenue": [f"{SO}.amount"]}),
    row(G, 2, "table", SE, 2, run="r2", minutes=5, columns={"revenue": [f"{SO}.amount"]}),
    row("c.gold.lonely", 1, "none", None, None),
]
LAYERS = {BO: "bronze", BE: "bronze", SO: "silver", SE: "silver", G: "gold"}


def edges() -> list[LineageEdge]:
    return latest_edges(edges_from_rows(ROWS))


def test_latest_write_per_output_and_no_edge_for_writes_without_input() -> None:
    found = {(e.source, e.target, e.input_version, e.output_version) for e in edges()}
    assert found == {
        ("files:/landing/orders", BO, None, 1),
        ("http:http://api:80/data", BE, None, 4),
        (BO, SO, 1, 1),
        (BE, SE, 4, 2),
        (SO, G, 1, 2),
        (SE, G, 2, 2),
    }


def test_upstream_downstream_and_both() -> None:
    up = build_graph(edges(), G, "upstream", LAYERS, {"files:/landing/orders": "orders_drop"})
    assert len(up.edges) == 6
    assert up.nodes["files:/landing/orders"].layer == "source"
    assert up.nodes["files:/landing/orders"].title == "orders_drop"
    assert up.nodes[G].version == 2
    down = build_graph(edges(), BO, "downstream", LAYERS)
    assert {(e.source, e.target) for e in down.edges} == {(BO, SO), (SO, G)}
    both = build_graph(edges(), SO, "both", LAYERS)
    assert {(e.source, e.target) for e in both.edges} == {
        ("files:/landing/orders", BO),
        (BO, SO),
        (SO, G),
    }
    # without a catalog the layer comes from the schema name
    assert build_graph(edges(), G, "upstream").nodes[SE].layer == "silver"


def _text(renderable: Any) -> str:
    console = Console(record=True, width=200)
    console.print(renderable)
    return console.export_text()


def test_tree_shows_versions_read_and_stale_inputs() -> None:
    stale = [*edges_from_rows([row(SO, 3, "table", BO, 1, minutes=9)]), *edges()]
    text = _text(render_tree(build_graph(latest_edges(stale), G, "upstream", LAYERS)))
    lines = [line.rstrip() for line in text.splitlines()]
    assert lines[0] == f"{G}  v2  gold · merge by demo.t · run r2"
    assert f"← {SO}  read v1  (latest v3)  silver · merge by demo.t · run r1" in text
    assert "← http http://api:80/data" in text
    down = _text(render_tree(build_graph(edges(), BO, "downstream", LAYERS)))
    assert f"→ {SO}  v1 (from v1)" in down


def test_tree_stops_at_a_cycle() -> None:
    loop = edges_from_rows([row(SO, 1, "table", G, 1), row(G, 1, "table", SO, 1)])
    text = _text(render_tree(build_graph(loop, G, "upstream", LAYERS)))
    assert "(cycle)" in text


def test_column_table_lists_the_root_columns() -> None:
    graph = build_graph(edges(), G, "upstream", LAYERS)
    assert "revenue │ silver.orders.amount" in _text(column_table(graph))
    assert column_table(build_graph(edges(), SO, "upstream", LAYERS)) is None


def test_dot_groups_layers_and_labels_edges() -> None:
    dot = to_dot(
        build_graph(edges(), G, "upstream", LAYERS, {"files:/landing/orders": "orders_drop"})
    )
    for expected in (
        "subgraph cluster_source",
        "subgraph cluster_bronze",
        "subgraph cluster_gold",
        '"files:/landing/orders" [shape=folder',
        '"http:http://api:80/data" [shape=component',
        "<b>orders_drop (files)</b>",
        "<b>gold.sales</b>",
        "penwidth=2.5",
        f'"{SO}" -> "{G}" [label="read v1"',
    ):
        assert expected in dot, expected


def test_mermaid_flowchart() -> None:
    chart = to_mermaid(build_graph(edges(), G, "upstream", LAYERS))
    assert chart.startswith("flowchart LR\n")
    assert 'subgraph bronze["bronze"]' in chart
    assert '-- "read v2" -->' in chart
    assert "stroke-width:3px" in chart


@pytest.mark.parametrize("suffix", [".svg", ".png", ".dot", ".mmd", ".md"])
def test_pictures_in_every_format(tmp_path: Path, suffix: str) -> None:
    graph = build_graph(edges(), G, "upstream", LAYERS)
    path = write_picture(graph, tmp_path / "deep" / f"lineage{suffix}")
    data = path.read_bytes()
    assert len(data) > 200
    if suffix == ".png":
        assert data.startswith(b"\x89PNG")
    if suffix == ".svg":
        assert b"<svg" in data and b"gold.sales" in data


def test_picture_errors_are_readable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    graph = build_graph(edges(), G, "upstream", LAYERS)
    with pytest.raises(LakehouseError, match=r"unknown picture format \.pdf"):
        write_picture(graph, tmp_path / "x.pdf")
    monkeypatch.setattr(lg, "graphviz_renderer", lambda: None)
    with pytest.raises(LakehouseError, match="no Graphviz renderer"):
        write_picture(graph, tmp_path / "x.svg")
    assert write_picture(graph, tmp_path / "x.dot").is_file()  # DOT needs no renderer
