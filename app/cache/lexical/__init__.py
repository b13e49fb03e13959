"""The semantic cache's lexical guards, one module per kind of detail an embedding blurs (see app/cache/guards.py)."""
