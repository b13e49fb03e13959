"""Benchmarks and evaluations."""

import app  # noqa: F401  (pins the process offline before any benchmark imports litellm)
