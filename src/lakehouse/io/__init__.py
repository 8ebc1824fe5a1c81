"""Storage: the TableStore protocol and its Delta implementation (no governance here)."""
