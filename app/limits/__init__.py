"""Blast-radius limits: caps on what one request, one session and one tenant's day may spend."""
