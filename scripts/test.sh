#!/usr/bin/env bash
# Runs every Ferry test, installing what is missing first.
#
#   bash scripts/test.sh
#
# Stages: setup, PostgreSQL, rustfmt, clippy, native cargo tests (core, server, ferry rlib),
# browser tests (wasm32 in headless Chromium via wasm-bindgen-test-runner + chromedriver),
# the JS suites (npm run test:packaging: the packed npm package in webpack 5 + Chromium and
# its type declarations; npm run test:engine: the engine against the real ferry-server),
# and the npm end-to-end suite when package.json has a `test:e2e` script.
# Stops at the first failing stage with a non-zero exit code.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

export CI="${CI:-true}"
export DEBIAN_FRONTEND=noninteractive
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

STAGES=9
stage_no=0
stage() {
    stage_no=$((stage_no + 1))
    printf '\n==> [%d/%d] %s\n' "$stage_no" "$STAGES" "$*"
}
# shellcheck disable=SC2154
trap 'rc=$?; if [ $rc -ne 0 ]; then printf "\n==> FAILED in stage %d (exit %d)\n" "$stage_no" "$rc" >&2; fi' EXIT

# ---------------------------------------------------------------------------------------
stage "setup (scripts/setup.sh)"
bash scripts/setup.sh

# ---------------------------------------------------------------------------------------
stage "PostgreSQL for the server tests"
if [ "$(id -u)" -eq 0 ]; then
    as_root=(); as_postgres=(runuser -u postgres --)
else
    as_root=(sudo -n); as_postgres=(sudo -n -u postgres)
fi
if command -v pg_ctlcluster >/dev/null 2>&1 && command -v pg_lsclusters >/dev/null 2>&1; then
    # Use the first existing cluster (Debian 12: 15 main); create one if the package made none.
    read -r pg_ver pg_name pg_port pg_status _ < <(pg_lsclusters -h | head -n 1) || true
    if [ -z "${pg_ver:-}" ]; then
        pg_ver="$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' | sort -V | tail -n 1)"
        pg_name=main
        echo "no PostgreSQL cluster: creating $pg_ver $pg_name"
        "${as_root[@]}" pg_createcluster "$pg_ver" "$pg_name"
        read -r pg_ver pg_name pg_port pg_status _ < <(pg_lsclusters -h | head -n 1)
    fi
    if [ "$pg_status" != "online" ]; then
        echo "starting PostgreSQL cluster $pg_ver/$pg_name"
        "${as_root[@]}" pg_ctlcluster "$pg_ver" "$pg_name" start
    else
        echo "PostgreSQL cluster $pg_ver/$pg_name: already running"
    fi
    pg_ready=0
    for _ in $(seq 1 30); do
        if (cd / && "${as_postgres[@]}" psql -p "$pg_port" -qAtc 'SELECT 1' >/dev/null 2>&1); then
            pg_ready=1
            break
        fi
        sleep 1
    done
    [ "$pg_ready" -eq 1 ] || { echo "PostgreSQL did not come up on port $pg_port" >&2; exit 1; }
    pg() { (cd / && "${as_postgres[@]}" psql -p "$pg_port" -v ON_ERROR_STOP=1 -qAt "$@"); }
    if [ "$(pg -c "SELECT 1 FROM pg_roles WHERE rolname = 'ferry'")" != "1" ]; then
        echo "creating role ferry"
        pg -c "CREATE ROLE ferry LOGIN CREATEDB PASSWORD 'ferry'"
    fi
    if [ "$(pg -c "SELECT 1 FROM pg_database WHERE datname = 'ferry_test'")" != "1" ]; then
        echo "creating database ferry_test"
        pg -c "CREATE DATABASE ferry_test OWNER ferry"
    fi
    export FERRY_TEST_POSTGRES_URL="postgres://ferry:ferry@127.0.0.1:${pg_port}/ferry_test"
    echo "FERRY_TEST_POSTGRES_URL=$FERRY_TEST_POSTGRES_URL"
    # The server's PostgreSQL tests fail (instead of skipping) if the URL goes missing.
    export FERRY_TEST_REQUIRE_POSTGRES=1
else
    echo "pg_ctlcluster not found: PostgreSQL tests of the server will be skipped"
fi

# ---------------------------------------------------------------------------------------
stage "cargo fmt --all -- --check"
cargo fmt --all -- --check

# ---------------------------------------------------------------------------------------
stage "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

# ---------------------------------------------------------------------------------------
stage "cargo test --workspace (native: ferry-core, ferry-server, ferry rlib)"
# The seeded simulation runs on its own right after, uncaptured, so its seed count, fault
# counts and the invariants it checked are printed.
cargo test --workspace -- --skip seeded_simulation_keeps_every_guarantee
echo
echo "--- the seeded simulation (ferry-core) ---"
cargo test -p ferry-core --test simulation seeded_simulation_keeps_every_guarantee -- --nocapture

# ---------------------------------------------------------------------------------------
stage "browser tests: cargo test --target wasm32-unknown-unknown -p ferry (headless Chromium)"
# The runner (.cargo/config.toml) is wasm-bindgen-test-runner; it drives Chromium through
# chromedriver with the extra flags in webdriver.json (offline-safe, root-safe).
export CHROMEDRIVER="${CHROMEDRIVER:-/usr/bin/chromedriver}"
export WASM_BINDGEN_TEST_WEBDRIVER_JSON="${WASM_BINDGEN_TEST_WEBDRIVER_JSON:-$ROOT/webdriver.json}"
# Tests that don't call wasm_bindgen_test_configure! run in the browser too, not in Node.
export WASM_BINDGEN_USE_BROWSER="${WASM_BINDGEN_USE_BROWSER:-1}"
export WASM_BINDGEN_TEST_TIMEOUT="${WASM_BINDGEN_TEST_TIMEOUT:-120}"
[ -x "$CHROMEDRIVER" ] || { echo "chromedriver not found at $CHROMEDRIVER" >&2; exit 1; }
cargo test --target wasm32-unknown-unknown -p ferry

# ---------------------------------------------------------------------------------------
stage "JS suites: npm run test:packaging, npm run test:engine (node --test, Chromium, ferry-server)"
# Both build what they need: pkg/ (scripts/build-pkg.sh, skipped when newer than the sources)
# and, for test:engine, ferry-server in release mode.
npm run test:packaging
npm run test:engine
# The packed package in every common bundler (Vite 8 and 5, webpack 5, Rollup, esbuild, a module
# worker), the README's Vite + React + TypeScript project syncing two browsers through
# ferry-server, and the React/Vue/Svelte bindings; its packages are pinned in tests/bundlers.
npm run test:bundlers
# The browser fault suite (tests/faults/: the trust issue's faults against the real server).
npm run test:faults

# ---------------------------------------------------------------------------------------
stage "end-to-end tests (npm run test:e2e, if present)"
if [ -f package.json ] && node -e 'process.exit(require("./package.json").scripts?.["test:e2e"] ? 0 : 1)'; then
    npm run test:e2e --if-present
else
    echo "no test:e2e script in package.json: skipped"
    if [ -d tests/e2e ]; then
        echo "note: tests/e2e exists; add a \"test:e2e\" npm script to run it here"
    fi
fi

# ---------------------------------------------------------------------------------------
stage "summary"
echo "all stages passed"
