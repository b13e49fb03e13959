"""Worked examples built on Firebreak: each is one folder, registered only by configuration.

Nothing in the product imports this package, so deleting an example (or all of them) leaves a working core.
"""
