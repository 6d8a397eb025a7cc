#!/usr/bin/env bash
# Installs what Ferry's build and tests need, skipping whatever is already present.
#
#   bash scripts/setup.sh
#
# Needs: Rust via rustup, Node 20 + npm. Installs (only when missing):
#   - rustup target wasm32-unknown-unknown, components rustfmt + clippy
#   - Debian packages chromium, chromium-driver, postgresql, binaryen
#   - wasm-bindgen-cli at exactly the wasm-bindgen version in Cargo.lock
#   - node_modules via `npm ci` (when missing or older than package-lock.json)
# Safe to run repeatedly and non-interactively (CI=true); works as root or with sudo.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

export DEBIAN_FRONTEND=noninteractive
export CI="${CI:-true}"

say() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: ERROR: %s\n' "$*" >&2; exit 1; }

if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
elif command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo -n)
else
    SUDO=()
fi

# ---------------------------------------------------------------- Rust toolchain
command -v cargo >/dev/null 2>&1 || die "cargo not found: install Rust with rustup first"
command -v rustup >/dev/null 2>&1 || die "rustup not found: install Rust with rustup first"

if rustup target list --installed | grep -qx 'wasm32-unknown-unknown'; then
    say "rust target wasm32-unknown-unknown: present"
else
    say "rust target wasm32-unknown-unknown: installing"
    rustup target add wasm32-unknown-unknown
fi

installed_components="$(rustup component list --installed)"
for component in rustfmt clippy; do
    if grep -q "^${component}\(-\|$\)" <<<"$installed_components"; then
        say "rust component $component: present"
    else
        say "rust component $component: installing"
        rustup component add "$component"
    fi
done

# ---------------------------------------------------------------- Debian packages
apt_missing=()
for pkg in chromium chromium-driver postgresql binaryen; do
    if dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
        say "apt package $pkg: present"
    else
        apt_missing+=("$pkg")
    fi
done
if [ "${#apt_missing[@]}" -gt 0 ]; then
    command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install by hand: ${apt_missing[*]}"
    if [ "$(id -u)" -ne 0 ] && [ "${#SUDO[@]}" -eq 0 ]; then
        die "not root and no sudo; install by hand: ${apt_missing[*]}"
    fi
    say "apt packages missing: ${apt_missing[*]} (apt-get update + install)"
    "${SUDO[@]}" apt-get update -q
    "${SUDO[@]}" apt-get install -y -q --no-install-recommends "${apt_missing[@]}"
fi

# ---------------------------------------------------------------- wasm-bindgen-cli
# The CLI must match the wasm-bindgen library version exactly, so it is read from Cargo.lock.
lock_version() {
    [ -f Cargo.lock ] || return 0
    awk '
        /^\[\[package\]\]/ { name = ""; next }
        /^name = /         { name = $3; gsub(/"/, "", name); next }
        /^version = / && name == "wasm-bindgen" { v = $3; gsub(/"/, "", v); print v; exit }
    ' Cargo.lock
}

if [ ! -f Cargo.lock ]; then
    say "Cargo.lock missing: generating it (cargo generate-lockfile)"
    cargo generate-lockfile --quiet || say "could not generate Cargo.lock (workspace not buildable yet?)"
fi
wb_want="$(lock_version)"
if [ -z "$wb_want" ]; then
    say "wasm-bindgen-cli: skipped (no wasm-bindgen package in Cargo.lock yet)"
else
    wb_have=""
    if command -v wasm-bindgen >/dev/null 2>&1; then
        wb_have="$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')"
    fi
    if [ "$wb_have" = "$wb_want" ] && command -v wasm-bindgen-test-runner >/dev/null 2>&1; then
        say "wasm-bindgen-cli $wb_want: present"
    else
        say "wasm-bindgen-cli: have '${wb_have:-none}', need $wb_want: cargo install (takes several minutes)"
        # --locked first, as asked for reproducibility. If the registry lacks one of the
        # CLI's locked dependencies (seen: a yanked/missing patch release), resolve afresh.
        if ! cargo install wasm-bindgen-cli --version "$wb_want" --locked --force; then
            say "wasm-bindgen-cli: --locked install failed; retrying with a fresh resolution"
            cargo install wasm-bindgen-cli --version "$wb_want" --force
        fi
        wb_have="$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')"
        [ "$wb_have" = "$wb_want" ] || die "wasm-bindgen on PATH is '${wb_have:-none}', wanted $wb_want (is ~/.cargo/bin on PATH?)"
    fi
fi

# ---------------------------------------------------------------- npm packages
if [ -f package.json ]; then
    command -v npm >/dev/null 2>&1 || die "npm not found: install Node 20 + npm first"
    if [ ! -f package-lock.json ]; then
        say "npm: no package-lock.json, running npm install"
        npm install --no-audit --no-fund
    elif [ ! -d node_modules ] || [ ! -f node_modules/.package-lock.json ] \
        || [ package-lock.json -nt node_modules/.package-lock.json ]; then
        say "npm: node_modules missing or older than package-lock.json, running npm ci"
        npm ci --no-audit --no-fund
    else
        say "npm node_modules: up to date"
    fi
fi

say "done"
