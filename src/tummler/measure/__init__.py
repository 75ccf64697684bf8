"""Holdout lift, variant tests, ROI, breadth and depth, goals. Pure."""
