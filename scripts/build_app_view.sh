#!/usr/bin/env bash
# Bundles the page side of MCP Apps views (mcp_magic/apps/js/view.js with the official
# @modelcontextprotocol/ext-apps AppBridge and its dependencies) into one browser ES module,
# mcp_magic/apps/static/view.js, and writes the licences of what it contains next to it.
# Needs the npm packages of tests/node (npm ci --prefix tests/node). Run it after changing
# view.js or the ext-apps version; the bundle is committed, so users need no Node.
set -euo pipefail
cd "$(dirname "$0")/.."
modules=tests/node/node_modules
out=mcp_magic/apps/static
mkdir -p "$out"
NODE_PATH="$modules" "$modules/.bin/esbuild" mcp_magic/apps/js/view.js \
  --bundle --format=esm --platform=browser --target=es2020 --minify \
  --legal-comments=none --metafile="$out/.meta.json" --outfile="$out/view.js"
# Licences of every package in the bundle.
python3 - "$out" "$modules" <<'PY'
import json, pathlib, sys
out, modules = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
meta = json.loads((out / ".meta.json").read_text())
packages = set()
for path in meta["inputs"]:
    parts = pathlib.PurePosixPath(path).parts
    if "node_modules" in parts:
        rest = parts[len(parts) - parts[::-1].index("node_modules"):]
        name = "/".join(rest[:2]) if rest[0].startswith("@") else rest[0]
        base = pathlib.Path(*parts[: len(parts) - len(rest)]) / name
        packages.add((name, base))
lines = ["Third-party code bundled in view.js (built by scripts/build_app_view.sh).", ""]
for name, base in sorted(packages):
    info = json.loads((base / "package.json").read_text())
    lines += ["=" * 72, f"{name} {info['version']} ({info.get('license', '?')})", "=" * 72]
    for candidate in ("LICENSE", "LICENSE.md", "LICENSE.txt", "NOTICE"):
        if (base / candidate).exists():
            lines += [(base / candidate).read_text().strip(), ""]
(out / "THIRD_PARTY_LICENSES.txt").write_text("\n".join(lines) + "\n")
(out / ".meta.json").unlink()
print("bundled:", ", ".join(f"{n}" for n, _ in sorted(packages)))
PY
