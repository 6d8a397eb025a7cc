#!/usr/bin/env bash
# Builds the `ferry` browser engine to WebAssembly and generates its JS bindings in pkg/.
#
#   npm run build:wasm      (or: bash scripts/build-wasm.sh)
#
# 1. cargo build --release --target wasm32-unknown-unknown -p ferry
# 2. wasm-bindgen --target web --out-dir pkg   (ES module + ferry_bg.wasm)
# 3. wasm-opt -Os on pkg/ferry_bg.wasm (npm `binaryen`, or a recent system one; a failure only warns)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

echo "build-wasm: cargo build --release --target wasm32-unknown-unknown -p ferry"
cargo build --release --target wasm32-unknown-unknown -p ferry

TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
WASM="$TARGET_DIR/wasm32-unknown-unknown/release/ferry.wasm"
[ -f "$WASM" ] || { echo "build-wasm: $WASM not found" >&2; exit 1; }

echo "build-wasm: wasm-bindgen --target web --out-dir pkg"
command -v wasm-bindgen >/dev/null 2>&1 || { echo "build-wasm: wasm-bindgen not found (run scripts/setup.sh)" >&2; exit 1; }
wasm-bindgen --target web --out-dir pkg "$WASM"

OUT=pkg/ferry_bg.wasm
# wasm-opt: the npm package `binaryen` (a devDependency, pinned) comes first. Debian's
# binaryen is only used when it is recent: Debian 12's version 108 was seen to break
# wasm-bindgen 0.2.130 output (the externref table: "WebAssembly.Table.set(): Argument 1
# is invalid for table" on load), so older ones are skipped.
MIN_SYSTEM_WASM_OPT=116
WASM_OPT=""
if [ -x node_modules/.bin/wasm-opt ]; then
    WASM_OPT=node_modules/.bin/wasm-opt
elif command -v wasm-opt >/dev/null 2>&1; then
    sys_ver="$(wasm-opt --version | awk '{print $3}')"
    if [ "${sys_ver:-0}" -ge "$MIN_SYSTEM_WASM_OPT" ] 2>/dev/null; then
        WASM_OPT=wasm-opt
    else
        echo "build-wasm: system wasm-opt is version ${sys_ver:-?} (< $MIN_SYSTEM_WASM_OPT): not used"
    fi
fi
if [ -n "$WASM_OPT" ]; then
    echo "build-wasm: wasm-opt -Os ($("$WASM_OPT" --version))"
    # Features come from the module's target_features section (rustc writes it).
    # FERRY_WASM_NAMES=1 keeps the name section, for CPU profiles (bench/profile.mjs).
    keep_names=()
    [ "${FERRY_WASM_NAMES:-0}" = 1 ] && keep_names=(-g)
    if "$WASM_OPT" -Os "${keep_names[@]}" "$OUT" -o "$OUT.opt"; then
        mv "$OUT.opt" "$OUT"
    else
        rm -f "$OUT.opt"
        echo "build-wasm: warning: wasm-opt failed; keeping the unoptimized $OUT" >&2
    fi
else
    echo "build-wasm: no usable wasm-opt (run npm ci): skipping size optimization"
fi
echo "build-wasm: $(du -h "$OUT" | cut -f1) $OUT"
