#!/usr/bin/env bash
# Install everything the tests need, then run them: lint, unit and server tests,
# real-kernel tests, the notebooks under nbval, and the benchmarks in quick mode.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
export PATH="$PWD/.venv/bin:$PATH"
echo "== ruff"
ruff check mcp_magic tests bench scripts

echo "== local model for the notebooks' %%agent cells (tests/fakes/notebook_model.py)"
# A scripted OpenAI-compatible endpoint on 127.0.0.1: no key, no network. Every provider
# the tutorials name is pointed at it; the keys are dummies it does not check.
model_dir="$(mktemp -d)"
python tests/fakes/notebook_model.py --port 0 --port-file "$model_dir/port" \
    >"$model_dir/log" 2>&1 &
model_pid=$!
trap 'kill "$model_pid" 2>/dev/null || true; wait "$model_pid" 2>/dev/null || true; rm -rf "$model_dir"' EXIT
for _ in $(seq 200); do
    [ -s "$model_dir/port" ] && break
    kill -0 "$model_pid" 2>/dev/null || break
    sleep 0.05
done
if [ ! -s "$model_dir/port" ]; then
    echo "the notebook model did not start:" >&2
    cat "$model_dir/log" >&2
    exit 1
fi
model_url="http://127.0.0.1:$(cat "$model_dir/port")/v1"
echo "listening on $model_url"
export OPENROUTER_BASE_URL="$model_url" OPENAI_BASE_URL="$model_url"
export OPENROUTER_API_KEY=local-notebook-model OPENAI_API_KEY=local-notebook-model
unset MCP_MAGIC_MODEL

echo "== pytest"
python -m pytest tests --nbval-lax notebooks --nbval-sanitize-with notebooks/nbval.cfg "$@"
echo "== benchmarks (quick)"
python bench/run_all.py --quick
