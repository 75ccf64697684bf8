"""Decide, per person and per message, which lever to pull — or none. Pure: arrays in, arrays out."""
