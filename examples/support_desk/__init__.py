"""The support-desk demo: orders, refunds, an e-mail outbox, help-centre articles and the tools over them.

Registered by ``[tools] modules = ["examples.support_desk.tools"]`` in ``firebreak.toml``; its tables are
migrated by its own Alembic history (``migrations/``, version table ``alembic_version_examples_support_desk``)
whenever that module is configured. To start your own agent, delete this folder and drop that line.
"""
