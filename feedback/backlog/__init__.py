"""The retraining backlog: over-override patterns mined into work items and triaged."""
