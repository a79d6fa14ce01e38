"""Overrides: the rollup counts, the analytics read from them, and the guardrails that watch them."""
