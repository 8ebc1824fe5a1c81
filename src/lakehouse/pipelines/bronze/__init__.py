"""Bronze: append-only raw landing tables."""
