"""The merchant-facing authorization server."""
