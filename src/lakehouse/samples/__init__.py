"""Demo data: a deterministic generator of file drops."""
