"""HTML blueprints, one per area."""
