"""The built-in MCP data server of mcp_magic: SQL over SQLite and files under a root.

Runs as its own process (``python -m mcp_magic.server`` or ``mcp-magic-server``) and so
imports nothing from the rest of ``mcp_magic``. Every tabular tool answers with the
same structured content, which the host turns into a DataFrame::

    {"columns": [...], "types": [...], "rows": [[...], ...], "row_count": N, "truncated": false}

``query_db`` is read-only unless the server is started with ``--allow-writes``. That is
enforced three times over: the database is opened with ``mode=ro``, ``PRAGMA query_only``
is on, and an authorizer denies every action that is not a read. ``ATTACH`` (and with it
``VACUUM INTO``) is refused even with writes allowed: it would reach files outside the
database. File tools are confined to ``--root``.
"""

from .cli import main

__all__ = ["main"]
