"""Apps served over HTTP or the PostgreSQL wire: model serving, the web UI, the SQL endpoint."""
