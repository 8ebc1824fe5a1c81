"""Demo data: a deterministic generator of file drops and a local sample HTTP API (with faults)."""
