"""The agent: the tool-calling loop and what it needs and leaves behind.

The loop, provider-neutral (`loop`), the events it publishes (`events`), running it
from the kernel's main thread (`driver`), one module per model wire format
(`providers/`), the `notebook` server's tools (`notebook_tools`), code mode
(`code_mode`), the names of its tables (`naming`), the run log (`runlog`, `%agent log`),
its export to code (`export`), and servers' sampling requests answered by a model
(`sampling`). Nothing here imports IPython or ipywidgets at module
level: the loop publishes events and `mcp_magic.display` shows them (the driver asks
through `mcp_magic.display.asking` only when the caller gives no other way to ask).
This file imports nothing, so `%load_ext mcp_magic` stays light.
"""
