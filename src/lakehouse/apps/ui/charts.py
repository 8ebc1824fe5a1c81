"""Server-side charts as inline SVG, drawn with matplotlib (no browser-side JavaScript).

Figures are built with the object API (``Figure`` + the SVG canvas), not ``pyplot``, so
concurrent requests do not share global state. Text stays text (``svg.fonttype: none``)
and element ids are prefixed per chart so several charts can share one HTML page.
"""

from __future__ import annotations

import io
import re

from lakehouse.apps.ui.views import DriftSeries

ALERT = "#c62828"
LINE = "#1565c0"
THRESHOLD = "#9e9e9e"


def drift_chart_svg(series: DriftSeries, width_in: float = 4.6, height_in: float = 2.3) -> str:
    """A line chart of one feature's drift metric over time; alert points in red.

    The threshold of the latest point is drawn as a dashed line.
    """
    import matplotlib
    from matplotlib.backends.backend_svg import FigureCanvasSVG
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter, date2num
    from matplotlib.figure import Figure

    xs = [float(date2num(p.at)) for p in series.points]
    ys = [p.value for p in series.points]
    with matplotlib.rc_context(
        {"svg.fonttype": "none", "svg.hashsalt": f"drift-{series.feature}", "font.size": 8}
    ):
        fig = Figure(figsize=(width_in, height_in), dpi=96)
        FigureCanvasSVG(fig)
        ax = fig.add_subplot()
        ax.plot(xs, ys, color=LINE, linewidth=1.5, marker="o", markersize=3.5, zorder=2)
        alerts = [(x, y) for x, y, p in zip(xs, ys, series.points, strict=True) if p.alert]
        if alerts:
            ax.scatter(
                [a[0] for a in alerts],
                [a[1] for a in alerts],
                color=ALERT,
                s=36,
                zorder=3,
                label="alert",
            )
        threshold = series.latest.threshold
        if threshold is not None:
            ax.axhline(threshold, color=THRESHOLD, linestyle="--", linewidth=1, zorder=1)
            ax.annotate(
                f"threshold {threshold:g}",
                xy=(1, threshold),
                xycoords=("axes fraction", "data"),
                xytext=(-2, 3),
                textcoords="offset points",
                ha="right",
                fontsize=7,
                color="#616161",
            )
        top = max([*ys, threshold or 0.0])
        ax.set_ylim(0, top * 1.2 if top > 0 else 1.0)
        locator = AutoDateLocator(minticks=2, maxticks=5)
        ax.xaxis_date()
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
        ax.set_title(series.feature, loc="left", fontsize=9, fontweight="bold")
        ax.set_ylabel(series.metric.upper())
        ax.grid(axis="y", color="#eeeeee", linewidth=0.8)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        fig.tight_layout(pad=0.4)
        out = io.StringIO()
        fig.savefig(out, format="svg")
    return _prefix_ids(_inline(out.getvalue()), f"drift-{_slug(series.feature)}-")


def _inline(svg: str) -> str:
    """An SVG document as an element to inline in HTML: no XML prolog or DOCTYPE."""
    svg = re.sub(r"^\s*<\?xml[^>]*\?>\s*", "", svg)
    svg = re.sub(r"<!DOCTYPE[^>]*>\s*", "", svg, count=1)
    svg = re.sub(r"<!--.*?-->\s*", "", svg, flags=re.DOTALL)
    svg = re.sub(r"<metadata>.*?</metadata>\s*", "", svg, flags=re.DOTALL)
    return svg.strip()


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "_", text)


def _prefix_ids(svg: str, prefix: str) -> str:
    """Prefix every element id and its ``#id`` references: ids stay unique on a page."""
    svg = re.sub(r'\bid="([^"]+)"', lambda m: f'id="{prefix}{m.group(1)}"', svg)
    svg = re.sub(r"url\(#([^)]+)\)", lambda m: f"url(#{prefix}{m.group(1)})", svg)
    return re.sub(r'href="#([^"]+)"', lambda m: f'href="#{prefix}{m.group(1)}"', svg)


def inline_svg(svg: str) -> str:
    """A rendered SVG file's text, ready to inline (prolog, DOCTYPE and comments removed)."""
    return _inline(svg)
