"""An MCP host for Jupyter: `%load_ext mcp_magic`, then `%mcp` and `%%agent`.

Loading stays cheap: `mcp`, `pandas` and `ipywidgets` are imported on first use.
"""

from __future__ import annotations

import atexit
from typing import Any

__version__ = "0.1.0"

_magics: Any = None


def load_ipython_extension(ipython: Any) -> None:
    global _magics
    from .magics import McpMagics

    if _magics is not None:
        return
    _magics = McpMagics(shell=ipython)
    ipython.register_magics(_magics)
    atexit.register(_close)


def unload_ipython_extension(ipython: Any) -> None:
    global _magics
    if _magics is None:
        return
    _close()
    for kind in ("line", "cell"):
        for name in list(ipython.magics_manager.magics[kind]):
            owner = getattr(ipython.magics_manager.magics[kind][name], "__self__", None)
            if owner is _magics:
                del ipython.magics_manager.magics[kind][name]
    ipython.magics_manager.registry.pop(type(_magics).__name__, None)
    _magics = None
    atexit.unregister(_close)


def _close() -> None:
    if _magics is not None:
        _magics.close()


def __getattr__(name: str) -> Any:
    """`from mcp_magic import Host` without importing it at `%load_ext` time."""
    if name == "Host":
        from .api import Host

        return Host
    raise AttributeError(f"module 'mcp_magic' has no attribute {name!r}")
