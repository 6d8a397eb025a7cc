#!/usr/bin/env bash
# Runs the Ferry demo: the reference sync server on embedded SQLite, serving the sample app.
#
#   bash scripts/demo.sh      # then open http://127.0.0.1:8787
#
# Installs what is missing (scripts/setup.sh), builds the npm package + sample app when the
# `build:app` npm script exists, then starts ferry-server in the foreground (Ctrl-C stops it).
# FERRY_DEMO_LISTEN / FERRY_DEMO_DB override the address and the SQLite file.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

LISTEN="${FERRY_DEMO_LISTEN:-127.0.0.1:8787}"
DB="${FERRY_DEMO_DB:-sqlite://ferry-demo.db}"

echo "==> setup (scripts/setup.sh)"
bash scripts/setup.sh

echo
echo "==> build the npm package and the sample app (npm run build:app, if present)"
npm run build:app --if-present

STATIC=www/dist
if [ ! -d "$STATIC" ]; then
    echo "www/dist not built: serving www/ as it is"
    STATIC=www
fi

echo
echo "==> ferry-server on http://$LISTEN (database $DB, static files from $STATIC)"
exec cargo run --release -p ferry-server -- --database "$DB" --listen "$LISTEN" --static "$STATIC" --demo
