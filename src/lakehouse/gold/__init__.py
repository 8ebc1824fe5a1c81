"""Gold: feature and BI tables built from Silver by pure DataFrame transforms."""
