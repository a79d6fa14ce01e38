"""Shadow challengers: other versions of a case's model scoring the same case, never shown to reviewers."""
