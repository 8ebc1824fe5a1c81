"""A small web UI for one model: registry versions, a prediction form, DQ, drift, lineage.

:func:`lakehouse.apps.ui.app.create_app` builds it; ``lakehouse ui`` serves it. Pages are
server-rendered HTML (Jinja2) with charts as inline SVG drawn by matplotlib on the server:
no JavaScript, no external assets, works offline.
"""
