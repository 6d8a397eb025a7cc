#!/usr/bin/env bash
# Ferry's side-by-side benchmarks: builds everything in release mode, then runs the browser
# benchmarks (headless Chromium) and the server benchmarks (loopback, SQLite + PostgreSQL),
# and writes bench/results/latest.md and bench/results/latest.json.
#
#   bash scripts/bench.sh                 # the full run (about 20-30 minutes on 2 cores, plus the scale
#                                         # section: ~20 minutes at 10,000 and 100,000, far more at 1,000,000)
#   bash scripts/bench.sh --reps 2 --n 2000 --only write1,writeMany   # a quick partial run
#   bash scripts/bench.sh --only scale --scale 10000,100000            # the scale section (issue 16)
#
# Options are passed to bench/run.mjs (see its header). Run it on a quiet machine: the figures
# are only comparable within one run. Nothing here asserts a timing.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

say() { printf 'bench: %s\n' "$*"; }

# Tools (node_modules, wasm-bindgen, chromium, postgresql): the project's setup installs them.
if [ "${FERRY_BENCH_SKIP_SETUP:-0}" != 1 ]; then
    bash scripts/setup.sh
fi

say "building the engine's npm package (scripts/build-pkg.sh -> pkg/)"
bash scripts/build-pkg.sh
# Snapshot the package at once: other builds in this tree may rewrite pkg/ during the run.
rm -rf bench/results/tmp/pkg && mkdir -p bench/results/tmp && cp -r pkg bench/results/tmp/pkg
export FERRY_BENCH_PKG="$ROOT/bench/results/tmp/pkg"
say "building ferry-server (cargo build --release -p ferry-server)"
cargo build --release -p ferry-server
say "building the server bench driver (bench/server-bench, standalone)"
export FERRY_BENCH_TARGET_DIR="${FERRY_BENCH_TARGET_DIR:-$ROOT/bench/server-bench/target}"
CARGO_TARGET_DIR="$FERRY_BENCH_TARGET_DIR" cargo build --release --manifest-path bench/server-bench/Cargo.toml

# PostgreSQL: role ferry/ferry (as scripts/test.sh makes it) and a database ferry_bench.
if command -v pg_lsclusters >/dev/null 2>&1; then
    if [ "$(id -u)" -eq 0 ]; then as_root=(); as_postgres=(runuser -u postgres --); else as_root=(sudo -n); as_postgres=(sudo -n -u postgres); fi
    read -r pg_ver pg_name pg_port pg_status _ < <(pg_lsclusters -h | head -n 1) || true
    if [ -n "${pg_ver:-}" ]; then
        [ "$pg_status" = online ] || "${as_root[@]}" pg_ctlcluster "$pg_ver" "$pg_name" start || true
        for _ in $(seq 1 30); do
            (cd / && "${as_postgres[@]}" psql -p "$pg_port" -qAtc 'SELECT 1' >/dev/null 2>&1) && break
            sleep 1
        done
        pg() { (cd / && "${as_postgres[@]}" psql -p "$pg_port" -v ON_ERROR_STOP=1 -qAt "$@"); }
        if [ "$(pg -c "SELECT 1 FROM pg_roles WHERE rolname = 'ferry'")" != "1" ]; then
            pg -c "CREATE ROLE ferry LOGIN CREATEDB PASSWORD 'ferry'"
        fi
        if [ "$(pg -c "SELECT 1 FROM pg_database WHERE datname = 'ferry_bench'")" != "1" ]; then
            (cd / && "${as_postgres[@]}" createdb -p "$pg_port" -O ferry ferry_bench)
        fi
        export FERRY_BENCH_POSTGRES_URL="${FERRY_BENCH_POSTGRES_URL:-postgres://ferry:ferry@127.0.0.1:${pg_port}/ferry_bench}"
    fi
fi
[ -n "${FERRY_BENCH_POSTGRES_URL:-}" ] || say "no PostgreSQL cluster: the PostgreSQL server benchmark will be reported as unavailable"

say "load average before the run: $(cut -d' ' -f1-3 /proc/loadavg) (figures are only comparable within one run)"
node bench/run.mjs "$@"
say "done: bench/results/latest.md"
