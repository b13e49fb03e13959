"""Resilience services: circuit breakers, retries, idempotent operations."""
