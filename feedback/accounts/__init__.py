"""Accounts: people, their passwords, sign-in throttling, sessions and API tokens."""
