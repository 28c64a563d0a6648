#!/usr/bin/env bash
# Install, then run the quickstart notebook on the built-in data server (no account,
# no network beyond the package index). With --lab, open it in JupyterLab instead.
# The install puts jupyter, uvx (for PyPI servers) and the server script in .venv/bin;
# JupyterLab started from here has that directory on PATH, so its kernels find uvx.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
if [ "${1:-}" = "--lab" ]; then
    exec .venv/bin/jupyter lab notebooks/quickstart.ipynb
fi
.venv/bin/python scripts/run_notebook.py notebooks/quickstart.ipynb
echo
echo "Open it yourself with:"
echo "    source .venv/bin/activate && jupyter lab notebooks/quickstart.ipynb"
echo "(activating puts .venv/bin, with uvx, on PATH for %mcp connect NAME -- uvx ...)"
