"""A semantic cache in front of the agent: vector recall, then deterministic verification guards."""

from app.cache.guards import GUARDS, Guard, conflict

__all__ = ["GUARDS", "Guard", "conflict"]
