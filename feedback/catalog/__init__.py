"""The model catalog: models, their owners and versions, and each version's stage."""
