#!/usr/bin/env bash
# Builds the npm package `ferry-sync` in pkg/: the WebAssembly build (npm run build:wasm,
# unless SKIP_WASM=1) plus the package.json, entry point and README from pkg-template/.
#
#   bash scripts/build-pkg.sh && (cd pkg && npm pack)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

if [ "${SKIP_WASM:-0}" != "1" ]; then
    bash scripts/build-wasm.sh
fi
[ -f pkg/ferry_bg.wasm ] || { echo "build-pkg: pkg/ferry_bg.wasm missing (run npm run build:wasm)" >&2; exit 1; }
# wasm-bindgen writes a .gitignore of `*` into pkg/, which would make npm pack skip files.
rm -f pkg/.gitignore pkg/package.json
cp pkg-template/package.json pkg-template/index.js pkg-template/index.d.ts pkg-template/README.md pkg/
echo "build-pkg: pkg/ is ready ($(cd pkg && ls | tr '\n' ' '))"
