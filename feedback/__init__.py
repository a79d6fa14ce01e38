"""Countersign domain: models, services, queries and errors."""
