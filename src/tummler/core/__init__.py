"""Records, ids, errors, settings, clock and seeded randomness: what every layer may import."""
