"""SQL of the schema migrations (``mailinfra_agent.store.schema``).

``NNNN_name.sql`` serves both dialects, ``NNNN_name.<dialect>.sql`` one dialect.

A later feature adds its tables as a new file with the next number; an applied file never changes.
"""
