"""Outcomes: what later turned out to be true for a case, reported by other systems."""
