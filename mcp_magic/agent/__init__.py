"""The agent: the tool-calling loop and what it needs and leaves behind.

The loop, provider-neutral (`loop`), the events it publishes (`events`), running it
from the kernel's main thread (`driver`), one module per model wire format
(`providers/`), the `notebook` server's tools (`notebook_tools`), code mode
(`code_mode`), the names of its tables (`naming`), the run log (`runlog`, `%agent log`)
and its export to code (`export`). Imports neither IPython nor ipywidgets at module
level (the driver asks through `mcp_magic.asking` only when no one else answers); this
file imports nothing, so `%load_ext mcp_magic` stays light.
"""
