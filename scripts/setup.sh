#!/usr/bin/env bash
# Create .venv and install mcp_magic with what the tutorials need.
# With --test: also the test tools, the npm reference servers, and warm uv's cache
# for the PyPI reference servers that run in their own environments.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
if [ "${1:-}" = "--test" ]; then
    .venv/bin/python -m pip install --quiet -e ".[test]"
    echo "== npm reference servers (tests/node)"
    npm ci --prefix tests/node --no-audit --no-fund --loglevel=error
    echo "== PyPI reference servers in their own environments (uv cache)"
    # mcp-server-sqlite crashes next to mcp 2.x: it gets its own env with mcp<2.
    .venv/bin/uvx --with "mcp<2" --from mcp-server-sqlite python -c "import mcp_server_sqlite"
    .venv/bin/uvx --from mcp-server-time python -c "import mcp_server_time"
else
    .venv/bin/python -m pip install --quiet -e ".[notebooks]"
fi
