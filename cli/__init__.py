"""The ``firebreak`` command line: one face of the agent, beside the web UI."""
