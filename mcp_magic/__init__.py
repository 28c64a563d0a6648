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
    from .magics import McpMagics, agent_questions

    if _magics is not None:
        return
    _magics = McpMagics(shell=ipython)
    ipython.register_magics(_magics)
    ipython.input_transformers_cleanup.append(agent_questions)
    atexit.register(_close)


def unload_ipython_extension(ipython: Any) -> None:
    global _magics
    if _magics is None:
        return
    _close()
    from .magics import agent_questions

    if agent_questions in ipython.input_transformers_cleanup:
        ipython.input_transformers_cleanup.remove(agent_questions)
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
