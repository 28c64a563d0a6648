#!/usr/bin/env bash
# Install everything the tests need, then run them: lint, unit and server tests,
# real-kernel tests, the notebooks under nbval, and the benchmarks in quick mode.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
export PATH="$PWD/.venv/bin:$PATH"
echo "== ruff"
ruff check mcp_magic tests bench scripts
echo "== pytest"
python -m pytest tests --nbval-lax notebooks "$@"
echo "== benchmarks (quick)"
python bench/run_all.py --quick
