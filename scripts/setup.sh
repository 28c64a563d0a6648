#!/usr/bin/env bash
# Create .venv and install mcp_magic with what the tutorials need.
# With --test: also the test tools, the npm reference servers, and warm uv's cache
# for the PyPI reference servers that run in their own environments.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo -n "$@"; fi
}

# Install a Debian package; apt-get update only when the lists do not know it or are stale.
apt_install() {
    if ! command -v apt-get >/dev/null; then
        echo "warning: no apt-get; install the Debian package $1 by hand for the tests" >&2
        return 0
    fi
    install_it() {
        as_root env DEBIAN_FRONTEND=noninteractive \
            apt-get install -y -qq -o Dpkg::Use-Pty=0 "$1" >/dev/null
    }
    if ! apt-cache policy "$1" 2>/dev/null | grep -q "Candidate: [0-9]" || ! install_it "$1"; then
        as_root apt-get update -qq
        install_it "$1"
    fi
}

# A Python >= 3.12 already on the machine (never downloaded): PATH, then pyenv's versions.
find_python312() {
    local candidate
    for candidate in python3.14 python3.13 python3.12 python3 \
        "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.1[2-9]*/bin/python3; do
        if "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1
        then
            command -v "$candidate"
            return 0
        fi
    done
    return 1
}

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
    echo "== PostgreSQL (Debian) for the throwaway clusters of tests/postgres.py"
    if ! command -v initdb >/dev/null && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1
    then
        # Only the programs: no system cluster left running on port 5432.
        apt_install postgresql-common
        as_root sed -ri 's/^#?\s*(create_main_cluster)\s*=.*/\1 = false/' \
            /etc/postgresql-common/createcluster.conf
        apt_install postgresql
    fi
    echo "== Data servers from PyPI, each in its own environment (tests/data_servers/envs)"
    export UV_PYTHON_DOWNLOADS=never
    PY312="$(find_python312)" || {
        echo "error: the data servers need Python >= 3.12 (python3.12+ or pyenv); none found" >&2
        exit 1
    }
    for req in tests/data_servers/*.txt; do
        name="$(basename "$req" .txt)"
        [ "$name" = overrides ] && continue
        env="tests/data_servers/envs/$name"
        if [ ! -x "$env/bin/python" ]; then
            .venv/bin/uv venv --quiet --python "$PY312" "$env"
        fi
        VIRTUAL_ENV="$env" .venv/bin/uv pip install --quiet -r "$req" \
            --overrides tests/data_servers/overrides.txt
    done
    echo "== Chromium for tests/browser (Debian's package: Playwright's own download fails here)"
    if [ ! -x /usr/bin/chromium ]; then
        apt_install chromium
    fi
else
    .venv/bin/python -m pip install --quiet -e ".[notebooks]"
fi
