#!/usr/bin/env bash
# Every test of the workspace: installs the pinned JS interop peers (tests/interop, npm) when
# needed, then runs `cargo test` over all crates. Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/interop/install.sh
cargo test --workspace --locked "$@"
