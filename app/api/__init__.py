"""The public REST API under /api/v1: token auth, resources, the OpenAPI document."""
