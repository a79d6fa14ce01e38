"""Review: recommendations ingested, cases claimed, decisions recorded and taken back."""
