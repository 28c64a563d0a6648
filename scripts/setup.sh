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
    echo "== MCP conformance harness + Node 22 from npm (tests/conformance; Debian's node is 20)"
    npm ci --prefix tests/conformance --no-audit --no-fund --loglevel=error
    npm ci --prefix tests/conformance/next --no-audit --no-fund --loglevel=error
    echo "== PyPI reference servers in their own environments (uv cache)"
    # mcp-server-sqlite crashes next to mcp 2.x: it gets its own env with mcp<2.
    .venv/bin/uvx --with "mcp<2" --from mcp-server-sqlite python -c "import mcp_server_sqlite"
    .venv/bin/uvx --from mcp-server-time python -c "import mcp_server_time"
    echo "== Chromium for tests/browser (Debian's package: Playwright's own download fails here)"
    if [ -x /usr/bin/chromium ]; then
        :
    elif ! command -v apt-get >/dev/null; then
        echo "warning: no apt-get; install chromium as /usr/bin/chromium for tests/browser" >&2
    else
        SUDO=""
        if [ "$(id -u)" -ne 0 ]; then SUDO="sudo -n"; fi
        install_chromium() {
            $SUDO env DEBIAN_FRONTEND=noninteractive \
                apt-get install -y -qq -o Dpkg::Use-Pty=0 chromium >/dev/null
        }
        # apt-get update only when the package lists do not know chromium or are stale.
        if ! apt-cache policy chromium 2>/dev/null | grep -q "Candidate: [0-9]" \
            || ! install_chromium; then
            $SUDO apt-get update -qq
            install_chromium
        fi
    fi
else
    .venv/bin/python -m pip install --quiet -e ".[notebooks]"
fi
