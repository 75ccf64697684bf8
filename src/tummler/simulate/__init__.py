"""A synthetic brand with a known response model, for regret and tests. Pure."""
