"""The coffee shop's report job (the bundle's wheel)."""
