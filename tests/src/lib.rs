//! Cross-crate and multi-node tests of op-p2p live in `tests/tests/`; this library holds what
//! they share.

/// The repository root, for tests that read committed fixtures.
pub fn repo_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}
