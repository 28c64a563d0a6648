#!/usr/bin/env bash
# Install, then run the quickstart notebook on the built-in data server (no account,
# no network beyond the package index). With --lab, open it in JupyterLab instead.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ "${1:-}" = "--lab" ]; then
    exec .venv/bin/jupyter lab notebooks/quickstart.ipynb
fi
.venv/bin/python scripts/run_notebook.py notebooks/quickstart.ipynb
echo
echo "Open it yourself with: .venv/bin/jupyter lab notebooks/quickstart.ipynb"
