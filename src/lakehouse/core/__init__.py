"""What every layer shares: names and errors."""
