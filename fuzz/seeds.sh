#!/usr/bin/env bash
# Regenerates the seed corpora in fuzz/corpus/<target> from real handshakes on every backend,
# a real on-disk cache and real rustls ticket states (see fuzz/examples/seeds.rs). Stable
# toolchain; needs the system OpenSSL and GnuTLS, as the workspace does.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here/corpus}"
# Start afresh: the handshakes differ from run to run (random keys, times).
rm -rf "$out"
mkdir -p "$out"
cargo run --quiet --release -j1 --manifest-path "$here/Cargo.toml" --example seeds -- "$out"
du -sh "$out"
