"""Webhooks: signed deliveries of backlog and catalog events to other systems."""
