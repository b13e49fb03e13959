"""Containment: when a conversation leaves the bot and goes to a human."""
