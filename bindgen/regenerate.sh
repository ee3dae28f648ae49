#!/bin/sh
# Rewrites src/bindings.rs from the installed GnuTLS headers with the pinned bindgen, then
# checks it. Needs libclang-dev (and libgnutls28-dev, pkg-config).
set -eu
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target/gnutls-sys-bindgen}"
TLSRESUME_BLESS=1 cargo test -p tlsresume-gnutls-sys --features buildtime-bindgen --test bindings_fresh
cargo test -p tlsresume-gnutls-sys --features buildtime-bindgen
echo "bindgen/src/bindings.rs regenerated"
