"""Settings → API and webhooks: the owner's tokens and webhook endpoints."""
