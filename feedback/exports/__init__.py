"""Exports: labelled training data as CSV, JSON Lines or Parquet."""
