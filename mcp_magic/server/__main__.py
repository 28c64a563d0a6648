"""``python -m mcp_magic.server``."""

from .cli import main

main()
