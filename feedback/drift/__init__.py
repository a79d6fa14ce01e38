"""Drift of a version's inputs and outputs: histograms kept at ingest, compared between two windows."""
