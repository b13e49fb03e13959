"""Canary rollouts of agent versions (seed pattern 14): releases, analysis, and the controller."""
