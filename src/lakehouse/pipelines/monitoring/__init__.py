"""Model monitoring: input drift, data quality, performance over time and A/B reports."""
