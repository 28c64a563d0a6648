"""What the user sees and answers, on the kernel's main thread.

Tables, text and progress bars for the notebook and the terminal (`render`), an agent
run as it happens (`agent_view`), and questions to the user: servers' forms and links,
approvals of sampling, tool calls and code (`asking`: widgets in Jupyter, else prompts).
Tool views (MCP Apps) are their own package, `mcp_magic.apps`. IPython, ipywidgets and
pandas are imported where used, never here, so `%load_ext mcp_magic` stays light.
"""
