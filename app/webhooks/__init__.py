"""Outbound webhooks: events recorded with each change, signed deliveries by the worker."""
