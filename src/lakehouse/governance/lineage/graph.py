"""The lineage graph of a table, from ``meta.lineage``: a tree for the terminal and a picture.

Per output table the graph keeps the edges of its most recent recorded write (the highest
Delta version written), so it shows what the table's current version was built from, with the
versions read. Upstream follows inputs back to the Bronze tables and their landing directories
and APIs; downstream follows the tables built from it.

The picture is Graphviz DOT rendered to SVG or PNG by ``graphviz-pure`` (a PyPI package with
a self-contained ``dot`` port, a project dependency) or a system Graphviz ``dot``; ``.dot``
writes the DOT source and ``.mmd`` / ``.md`` a Mermaid flowchart. Tables are grouped by layer,
sources have their own shapes, edges carry the Delta version read.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from lakehouse.config.project import Project
from lakehouse.config.system_tables import SystemTable, system_table_name
from lakehouse.core.errors import LakehouseError
from lakehouse.governance.lineage.columns import source_ref, split_column

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table
    from rich.tree import Tree

    from lakehouse.io.store import TableStore

Direction = Literal["upstream", "downstream", "both"]
LAYERS = ("source", "bronze", "silver", "gold", "system", "other")
_LAYER_STYLE = {  # fill, border of the layer's box in the picture
    "source": ("#f5f5f5", "#9e9e9e"),
    "bronze": ("#f6e3cf", "#b0733a"),
    "silver": ("#e9edf1", "#7d8a96"),
    "gold": ("#fbf0c9", "#c9a227"),
    "system": ("#eeeeee", "#9e9e9e"),
    "other": ("#ffffff", "#9e9e9e"),
}
_RICH_LAYER = {
    "source": "grey62",
    "bronze": "dark_orange3",
    "silver": "grey70",
    "gold": "gold3",
    "system": "grey50",
    "other": "white",
}
PICTURE_FORMATS = (".svg", ".png", ".jpg", ".jpeg", ".dot", ".gv", ".mmd", ".md")


@dataclass(frozen=True)
class LineageNode:
    id: str  # a table's full name, or "files:<path>" / "http:<url>"
    kind: str  # table | files | http | none
    name: str
    layer: str
    version: int | None = None  # tables: the latest version recorded as written
    title: str | None = None  # sources: the configured source name


@dataclass(frozen=True)
class LineageEdge:
    source: str  # node id of the input
    target: str  # the output table
    input_version: int | None
    output_version: int
    operation: str
    job: str | None
    task: str | None
    run_id: str
    event_time: dt.datetime | None
    columns: dict[str, list[str]] = field(default_factory=dict, compare=False, hash=False)

    @property
    def task_name(self) -> str:
        return ".".join(p for p in (self.job, self.task) if p) or "-"


@dataclass
class LineageGraph:
    root: str
    direction: Direction
    nodes: dict[str, LineageNode]
    edges: list[LineageEdge]
    writes: dict[str, LineageEdge] = field(default_factory=dict)  # a latest-write edge per table

    def inputs_of(self, node: str) -> list[LineageEdge]:
        return sorted((e for e in self.edges if e.target == node), key=lambda e: e.source)

    def outputs_of(self, node: str) -> list[LineageEdge]:
        return sorted((e for e in self.edges if e.source == node), key=lambda e: e.target)

    def columns_of(self, table: str) -> dict[str, list[str]]:
        """Column lineage of the table's latest write."""
        for edge in self.inputs_of(table):
            if edge.columns:
                return edge.columns
        return {}


# ---------------------------------------------------------------- edges


def node_id(kind: str, name: str) -> str:
    return name if kind == "table" else f"{kind}:{name}"


def edges_from_rows(rows: Iterable[Mapping[str, Any]]) -> list[LineageEdge]:
    """``meta.lineage`` rows -> edges (a write without inputs has none)."""
    edges = []
    for r in rows:
        kind = str(r["input_kind"] or "none")
        if kind == "none" or not r["input_name"]:
            continue
        raw = r.get("column_lineage")
        edges.append(
            LineageEdge(
                source=node_id(kind, str(r["input_name"])),
                target=str(r["output_table"]),
                input_version=None if r["input_version"] is None else int(r["input_version"]),
                output_version=int(r["output_version"]),
                operation=str(r["operation"]),
                job=r.get("job"),
                task=r.get("task"),
                run_id=str(r["run_id"]),
                event_time=r.get("event_time"),
                columns=json.loads(raw) if raw else {},
            )
        )
    return edges


def latest_edges(edges: Iterable[LineageEdge]) -> list[LineageEdge]:
    """Per output table, the edges of its most recent write (highest version, then time)."""
    best: dict[str, tuple[int, dt.datetime, str]] = {}
    for e in edges:
        key = (e.output_version, e.event_time or dt.datetime.min, e.run_id)
        if e.target not in best or key > best[e.target]:
            best[e.target] = key
    return [
        e
        for e in dict.fromkeys(edges)
        if (e.output_version, e.event_time or dt.datetime.min, e.run_id) == best[e.target]
    ]


def load_edges(tables: TableStore) -> list[LineageEdge]:
    """The latest write's edges of every output table recorded in ``meta.lineage``."""
    from pyspark.sql import functions as F

    name = system_table_name(tables.project.catalog.name, SystemTable.LINEAGE)
    if not tables.exists(name):
        return []
    df = tables.read(name)
    latest = df.groupBy("output_table").agg(F.max("output_version").alias("output_version"))
    rows = df.join(latest, ["output_table", "output_version"]).collect()
    return latest_edges(edges_from_rows(r.asDict() for r in rows))


# ---------------------------------------------------------------- the graph


def build_graph(
    edges: Iterable[LineageEdge],
    root: str,
    direction: Direction = "upstream",
    layers: Mapping[str, str] | None = None,
    titles: Mapping[str, str] | None = None,
) -> LineageGraph:
    """The part of the lineage reachable from ``root`` going up and/or down.

    ``layers`` maps tables to their layer, ``titles`` node ids of sources to source names.
    """
    edges = list(edges)
    layers = layers or {}
    titles = titles or {}
    chosen: dict[LineageEdge, None] = {}
    if direction in ("upstream", "both"):
        chosen.update(dict.fromkeys(_walk(edges, root, upstream=True)))
    if direction in ("downstream", "both"):
        chosen.update(dict.fromkeys(_walk(edges, root, upstream=False)))
    written: dict[str, int] = {}
    writes: dict[str, LineageEdge] = {}
    for e in edges:
        written[e.target] = max(written.get(e.target, -1), e.output_version)
        if e.target not in writes or e.output_version > writes[e.target].output_version:
            writes[e.target] = e
    nodes: dict[str, LineageNode] = {}
    for nid in [root, *(n for e in chosen for n in (e.source, e.target))]:
        if nid in nodes:
            continue
        kind, _, name = (
            nid.partition(":") if nid.startswith(("files:", "http:")) else ("table", "", nid)
        )
        layer = "source" if kind != "table" else layers.get(nid) or _layer_from_name(nid)
        nodes[nid] = LineageNode(nid, kind, name, layer, written.get(nid), titles.get(nid))
    return LineageGraph(root, direction, nodes, list(chosen), writes)


def _walk(edges: list[LineageEdge], root: str, *, upstream: bool) -> list[LineageEdge]:
    found: list[LineageEdge] = []
    seen = {root}
    frontier = [root]
    while frontier:
        node = frontier.pop(0)
        for e in edges:
            if (e.target if upstream else e.source) != node:
                continue
            found.append(e)
            nxt = e.source if upstream else e.target
            if nxt not in seen:
                seen.add(nxt)
                frontier.append(nxt)
    return found


def _layer_from_name(table: str) -> str:
    parts = table.split(".")
    schema = parts[-2] if len(parts) >= 2 else ""
    if schema in ("bronze", "silver", "gold"):
        return schema
    return "system" if schema == "meta" else "other"


def lineage_graph(
    tables: TableStore, table: str, direction: Direction = "upstream"
) -> LineageGraph:
    """The lineage of ``table`` recorded in the catalog's ``meta.lineage``."""
    return _graph(tables.project, load_edges(tables), table, direction)


def _graph(
    project: Project, edges: list[LineageEdge], table: str, direction: Direction
) -> LineageGraph:
    layers = {name: ref.spec.layer for name, ref in project.tables.items()}
    titles = {}
    for name in project.sources:
        ref = source_ref(project, name)
        titles[node_id(ref.kind, ref.name)] = name
    return build_graph(edges, table, direction, layers, titles)


# ---------------------------------------------------------------- the terminal tree


def _version(v: int | None) -> str:
    return f"v{v}" if v is not None else "v?"


def _node_label(graph: LineageGraph, node: LineageNode, via: LineageEdge | None) -> str:
    from rich.markup import escape

    colour = _RICH_LAYER.get(node.layer, "white")
    if node.kind != "table":
        title = f"[bold]{escape(node.title)}[/] " if node.title else ""
        return f"{title}[{colour}]{node.kind}[/] {escape(node.name)}"
    parts = [f"[bold]{escape(node.name)}[/]"]
    if via is None:
        parts.append(f"[cyan]{_version(node.version)}[/]")
    elif via.target == node.id:  # downstream: this node was written from its parent
        built = f" (from {_version(via.input_version)})" if via.input_version is not None else ""
        parts.append(f"[cyan]{_version(via.output_version)}[/]{built}")
    else:  # upstream: the parent read this version
        parts.append(f"[cyan]read {_version(via.input_version)}[/]")
        if node.version is not None and node.version != via.input_version:
            parts.append(f"[yellow](latest {_version(node.version)})[/]")
    w = graph.writes.get(node.id)
    root_write = graph.writes.get(graph.root)
    root_run = root_write.run_id if root_write else None
    detail = [node.layer]
    if w is not None:
        detail.append(f"{w.operation} by {escape(w.task_name)}")
        if via is None or w.run_id != root_run:  # runs other than the root's are worth a look
            detail.append(f"run {escape(w.run_id)}")
    parts.append(f"[{colour}]{' · '.join(detail)}[/]")
    return "  ".join(parts)


def render_tree(graph: LineageGraph) -> Tree:
    """The graph as a rich tree: inputs (upstream) or outputs (downstream) as children."""
    from rich.tree import Tree

    root = graph.nodes[graph.root]
    tree = Tree(_node_label(graph, root, None))

    def grow(branch: Tree, node: str, upstream: bool, path: tuple[str, ...]) -> None:
        edges = graph.inputs_of(node) if upstream else graph.outputs_of(node)
        for e in edges:
            nxt = e.source if upstream else e.target
            arrow = "←" if upstream else "→"
            label = f"{arrow} {_node_label(graph, graph.nodes[nxt], e)}"
            if nxt in path:
                branch.add(label + " [red](cycle)[/]")
                continue
            grow(branch.add(label), nxt, upstream, (*path, nxt))

    if graph.direction == "both":
        up = tree.add("[dim]upstream[/]")
        grow(up, graph.root, True, (graph.root,))
        down = tree.add("[dim]downstream[/]")
        grow(down, graph.root, False, (graph.root,))
    else:
        grow(tree, graph.root, graph.direction == "upstream", (graph.root,))
    return tree


def column_table(graph: LineageGraph, table: str | None = None) -> Table | None:
    """The column lineage of a table's latest write (None when only table-level is known)."""
    from rich.table import Table

    table = table or graph.root
    columns = graph.columns_of(table)
    if not columns:
        return None
    out = Table(title=f"column lineage of {table}", title_justify="left")
    out.add_column("column")
    out.add_column("from", overflow="fold")
    for column, sources in sorted(columns.items()):
        out.add_row(column, ", ".join(_short_column(s, table) for s in sources))
    return out


def _short_column(qualified: str, table: str) -> str:
    owner, column = split_column(qualified)
    if owner == table:
        return f"{column} (this table)"
    return f"{owner.split('.', 1)[-1]}.{column}"


# ---------------------------------------------------------------- pictures


def _dot_id(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _short(name: str) -> str:
    """``cat.schema.table`` -> ``schema.table``."""
    return name.split(".", 1)[-1] if name.count(".") >= 2 else name


def _wrap(text: str, width: int = 48) -> str:
    """Long paths / URLs: keep the tail, which names the thing."""
    return text if len(text) <= width else "…" + text[-(width - 1) :]


def to_dot(graph: LineageGraph) -> str:
    """The graph as Graphviz DOT: layers as boxes, sources as folders / components."""
    e = html.escape
    direction = "upstream and downstream" if graph.direction == "both" else graph.direction
    title = f"lineage of {graph.root} ({direction})"
    lines = [
        "digraph lineage {",
        "  rankdir=LR;",
        f'  graph [fontname="Helvetica", fontsize=13, labelloc=t, label=<<b>{e(title)}</b>>, '
        "nodesep=0.35, ranksep=0.9, pad=0.3];",
        '  node [fontname="Helvetica", fontsize=11, shape=box, style="rounded,filled", '
        'fillcolor=white, color="#555555"];',
        '  edge [fontname="Helvetica", fontsize=9, color="#555555", fontcolor="#333333"];',
    ]
    for layer in LAYERS:
        members = [n for n in graph.nodes.values() if n.layer == layer]
        if not members:
            continue
        fill, border = _LAYER_STYLE[layer]
        lines.append(f"  subgraph cluster_{layer} {{")
        lines.append(
            f"    label=<<b>{e(layer if layer != 'source' else 'sources')}</b>>; "
            f'style="rounded,filled"; fillcolor="{fill}"; color="{border}"; fontsize=12;'
        )
        for n in sorted(members, key=lambda n: n.id):
            lines.append(f"    {_dot_id(n.id)} [{_dot_node(n, n.id == graph.root)}];")
        lines.append("  }")
    for edge in sorted(graph.edges, key=lambda x: (x.source, x.target)):
        label = f"read {_version(edge.input_version)}" if edge.input_version is not None else ""
        tooltip = f"{edge.operation} by {edge.task_name}, run {edge.run_id}"
        lines.append(
            f"  {_dot_id(edge.source)} -> {_dot_id(edge.target)} "
            f'[label="{label}", tooltip={_dot_id(tooltip)}];'
        )
    lines.append("}")
    return "\n".join(lines) + "\n"


def _dot_node(n: LineageNode, is_root: bool) -> str:
    e = html.escape
    if n.kind == "table":
        catalog = n.name.split(".", 1)[0] if n.name.count(".") >= 2 else ""
        sub = " · ".join(
            p for p in (catalog, _version(n.version) if n.version is not None else "") if p
        )
        label = f'<<b>{e(_short(n.name))}</b><br/><font point-size="9">{e(sub)}</font>>'
        attrs = [f"label={label}", f"tooltip={_dot_id(n.name)}"]
        if is_root:
            attrs += ["penwidth=2.5", 'color="#c62828"']
        return ", ".join(attrs)
    shape = "folder" if n.kind == "files" else "component"
    head = f"{n.title} ({n.kind})" if n.title else n.kind
    label = f'<<b>{e(head)}</b><br/><font point-size="9">{e(_wrap(n.name))}</font>>'
    return f'shape={shape}, style=filled, fillcolor="#ffffff", label={label}, tooltip={_dot_id(n.name)}'


def to_mermaid(graph: LineageGraph) -> str:
    """The graph as a Mermaid flowchart (GitHub and many editors render it)."""
    ids = {nid: f"n{i}" for i, nid in enumerate(sorted(graph.nodes))}

    def text(s: str) -> str:
        return s.replace('"', "#quot;")

    lines = ["flowchart LR"]
    for layer in LAYERS:
        members = [n for n in graph.nodes.values() if n.layer == layer]
        if not members:
            continue
        lines.append(f'  subgraph {layer}["{layer if layer != "source" else "sources"}"]')
        for n in sorted(members, key=lambda n: n.id):
            if n.kind == "table":
                label = f"{_short(n.name)}<br/>{_version(n.version)}"
                lines.append(f'    {ids[n.id]}["{text(label)}"]')
            else:
                head = f"{n.title} ({n.kind})" if n.title else n.kind
                label = text(f"{head}<br/>{_wrap(n.name)}")
                shape = ('[/"', '"/]') if n.kind == "files" else ('{{"', '"}}')
                lines.append(f"    {ids[n.id]}{shape[0]}{label}{shape[1]}")
        lines.append("  end")
    for edge in sorted(graph.edges, key=lambda x: (x.source, x.target)):
        arrow = (
            f'-- "read {_version(edge.input_version)}" -->'
            if edge.input_version is not None
            else "-->"
        )
        lines.append(f"  {ids[edge.source]} {arrow} {ids[edge.target]}")
    lines.append(f"  style {ids[graph.root]} stroke:#c62828,stroke-width:3px")
    return "\n".join(lines) + "\n"


def graphviz_renderer() -> str | None:
    """A Graphviz ``dot`` program: graphviz-pure (from PyPI) next to Python, else on PATH."""
    beside = Path(sys.executable).parent / "graphviz-pure"
    if beside.is_file():
        return str(beside)
    return shutil.which("graphviz-pure") or shutil.which("dot")


def write_picture(graph: LineageGraph, path: Path) -> Path:
    """Write the picture; the suffix picks the format (.svg .png .jpg .dot .gv .mmd .md)."""
    suffix = path.suffix.lower()
    if suffix not in PICTURE_FORMATS:
        raise LakehouseError(
            f"{path}: unknown picture format {suffix or '(none)'} "
            f"(use one of {', '.join(PICTURE_FORMATS)})"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix in (".mmd", ".md"):
        chart = to_mermaid(graph)
        path.write_text(f"```mermaid\n{chart}```\n" if suffix == ".md" else chart, encoding="utf-8")
        return path
    dot = to_dot(graph)
    if suffix in (".dot", ".gv"):
        path.write_text(dot, encoding="utf-8")
        return path
    renderer = graphviz_renderer()
    if renderer is None:
        raise LakehouseError(
            "no Graphviz renderer found (pip install graphviz-pure, or install Graphviz); "
            "or write a .dot or .mmd file instead"
        )
    fmt = "jpeg" if suffix == ".jpg" else suffix[1:]
    done = subprocess.run(
        [renderer, f"-T{fmt}", "-o", str(path)],
        input=dot.encode("utf-8"),
        capture_output=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0 or not path.is_file():
        message = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise LakehouseError(
            f"{Path(renderer).name} could not draw {path.name}: {message[-1] if message else done.returncode}"
        )
    return path


def default_picture_path(project: Project, table: str, direction: Direction) -> Path:
    """``<data_root>/lineage/<table>-<direction>.svg``."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", table)
    return project.data_root / "lineage" / f"{safe}-{direction}.svg"


def show_lineage(
    tables: TableStore,
    table: str,
    direction: Direction,
    console: Console,
    output: Path | None = None,
) -> Path:
    """Print the lineage tree (and column lineage) of ``table`` and write its picture."""
    ref = tables.project.tables.get(table)
    if ref is not None and ref.spec.layer == "system":
        raise LakehouseError(f"{table} is bookkeeping: its lineage is not recorded")
    edges = load_edges(tables)
    if not any(table in (e.source, e.target) for e in edges):
        raise LakehouseError(
            f"no lineage recorded for {table} yet: run a job that writes it (or reads it)"
        )
    graph = _graph(tables.project, edges, table, direction)
    console.print(render_tree(graph))
    if not graph.edges:
        console.print(f"[dim]nothing {direction} of {table}[/]")
    columns = column_table(graph)
    if columns is not None:
        console.print(columns)
    path = write_picture(graph, output or default_picture_path(tables.project, table, direction))
    console.print(f"picture: {path}")
    return path
