"""Pure pandas/statsmodels analytics; no Flask, no database session."""
