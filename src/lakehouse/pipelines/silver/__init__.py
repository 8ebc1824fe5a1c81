"""Silver: typed, deduplicated, validated tables."""
