"""Online policy updates from logged rewards. Pure."""
