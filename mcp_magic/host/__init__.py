"""The host side: MCP servers and what they send back to the user.

Server specs and `mcpServers` files (`config`), the sessions on their loop thread
(`sessions`), OAuth (`auth`), requests from servers (`client_requests`: elicitation,
sampling, roots), `%mcp log` (`server_log`), tool arguments (`arguments`) and paged
tools (`paging`). Nothing here imports IPython or ipywidgets at module level (OAuth shows
its link in the cell lazily); this file imports nothing, so `%load_ext mcp_magic` stays
light.
"""
