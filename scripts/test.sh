#!/usr/bin/env bash
# Every test of the workspace: installs the pinned JS interop peers (tests/interop, npm) when
# needed, builds the kona-p2p bench child, then runs `cargo test` over all crates. Extra
# arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/interop/install.sh
# The kona-p2p bench child (bench/kona: its own project and lock file) for the mixed-mesh
# interop test (app/tests/bench.rs); a cold build takes about 5 minutes on two cores.
kona_target="${KONA_TARGET_DIR:-${CARGO_TARGET_DIR:-$PWD/target}/kona}"
mkdir -p "$kona_target"
kona_target="$(cd "$kona_target" && pwd)"
cargo build --locked --manifest-path bench/kona/Cargo.toml --target-dir "$kona_target"
export OP_P2P_KONA_CHILD="$kona_target/debug/op-p2p-bench-kona"
cargo test --workspace --locked "$@"
