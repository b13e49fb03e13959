"""Firebreak's services: gateway, resilience, limits, containment, cache, planning, canary, tools, telemetry.

They stand on ``memory`` and ``core`` and know nothing of the graph that drives them or the faces above it.
"""
