//! `op-p2p verdicts`: replay captured gossip through one core [`Node`], in order, and report
//! each message's verdict, reason and message id.
//!
//! The manifest is `{"cases": [{"file": "000.bin", "topic": "/optimism/901/2/blocks"}, ...]}`;
//! files are relative to the manifest and hold one message's gossipsub `data` each. Other
//! fields are ignored. Every problem with the manifest or a file is a [`VerdictsError`] naming
//! the file, never a panic.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use op_p2p_core::alloy_primitives::Address;
use op_p2p_core::fork::ForkSchedule;
use op_p2p_core::gossip::wire::{MAX_GOSSIP_SIZE, message_id};
use op_p2p_core::{Action, Config, GossipMessage, Input, MessageHandle, Node, Reason, Verdict};
use serde::{Deserialize, Serialize};

/// Largest manifest read: 64 MiB.
pub const MAX_MANIFEST_BYTES: u64 = 64 * 1024 * 1024;
/// Largest message file read: a 10 MiB message plus snappy's worst-case expansion.
pub const MAX_MESSAGE_FILE_BYTES: u64 = (MAX_GOSSIP_SIZE + MAX_GOSSIP_SIZE / 6 + 64) as u64;
/// Most cases in one manifest.
pub const MAX_CASES: usize = 1_000_000;

/// What the replay needs besides the manifest.
#[derive(Debug, Clone)]
pub struct VerdictsParams {
    /// L2 chain id.
    pub chain_id: u64,
    /// Unsafe block signer.
    pub unsafe_signer: Address,
    /// Wall-clock time of the replay, Unix seconds (every case is judged at this time).
    pub now: u64,
    /// Fork schedule.
    pub forks: ForkSchedule,
    /// L2 block time, seconds (sizes the seen-block bound).
    pub block_time: u64,
}

/// One case of the manifest.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Case {
    /// Message file, relative to the manifest.
    pub file: String,
    /// Gossipsub topic the message arrived on.
    pub topic: String,
}

/// The manifest.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Manifest {
    /// Cases, replayed in order.
    pub cases: Vec<Case>,
}

/// One output line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseResult {
    /// Position in the manifest.
    pub index: usize,
    /// The case's file, as written in the manifest.
    pub file: String,
    /// `accept`, `reject` or `ignore`.
    pub verdict: String,
    /// The rule that decided ([`Reason::as_str`]).
    pub reason: String,
    /// op-node's message id, `0x`-prefixed hex.
    pub message_id: String,
}

/// The closing line.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Cases replayed.
    pub total: usize,
    /// Accepted.
    pub accept: usize,
    /// Rejected.
    pub reject: usize,
    /// Ignored.
    pub ignore: usize,
}

/// Why a replay could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerdictsError {
    /// The manifest could not be read.
    #[error("cannot read manifest {path}: {source}")]
    ReadManifest {
        /// Manifest path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The manifest is not valid JSON of the expected shape.
    #[error("invalid manifest {path}: {source}")]
    ParseManifest {
        /// Manifest path.
        path: PathBuf,
        /// Cause.
        source: serde_json::Error,
    },
    /// A file or manifest is larger than the tool reads.
    #[error("{path} is {size} bytes, more than the {limit}-byte limit")]
    TooLarge {
        /// Offending path.
        path: PathBuf,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// More cases than the tool replays.
    #[error("manifest {path} has {count} cases, more than {MAX_CASES}")]
    TooManyCases {
        /// Manifest path.
        path: PathBuf,
        /// Case count.
        count: usize,
    },
    /// A case's file could not be read.
    #[error("case {index}: cannot read {path}: {source}")]
    ReadCase {
        /// Case index.
        index: usize,
        /// File path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// A case's file name is empty or absolute.
    #[error("case {index}: file {file:?} must be a non-empty path relative to the manifest")]
    BadFileName {
        /// Case index.
        index: usize,
        /// The name given.
        file: String,
    },
}

fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>, Result<std::io::Error, u64>> {
    let file = File::open(path).map_err(Ok)?;
    let size = file.metadata().map_err(Ok)?.len();
    if size > limit {
        return Err(Err(size));
    }
    let mut out = Vec::with_capacity(size as usize);
    // `take` bounds the read even if the file grows after the size check.
    file.take(limit + 1).read_to_end(&mut out).map_err(Ok)?;
    if out.len() as u64 > limit {
        return Err(Err(out.len() as u64));
    }
    Ok(out)
}

/// Reads and parses a manifest.
pub fn load_manifest(path: &Path) -> Result<Manifest, VerdictsError> {
    let bytes = read_bounded(path, MAX_MANIFEST_BYTES).map_err(|e| match e {
        Ok(source) => VerdictsError::ReadManifest {
            path: path.into(),
            source,
        },
        Err(size) => VerdictsError::TooLarge {
            path: path.into(),
            size,
            limit: MAX_MANIFEST_BYTES,
        },
    })?;
    let manifest: Manifest =
        serde_json::from_slice(&bytes).map_err(|source| VerdictsError::ParseManifest {
            path: path.into(),
            source,
        })?;
    if manifest.cases.len() > MAX_CASES {
        return Err(VerdictsError::TooManyCases {
            path: path.into(),
            count: manifest.cases.len(),
        });
    }
    Ok(manifest)
}

/// Replays every case of the manifest at `path` through one fresh core node, calling `emit`
/// with each result as it is decided, and returns the summary.
pub fn replay(
    params: &VerdictsParams,
    path: &Path,
    mut emit: impl FnMut(&CaseResult),
) -> Result<Summary, VerdictsError> {
    let manifest = load_manifest(path)?;
    let base = path.parent().unwrap_or(Path::new("."));
    // Only the validation side of the node is used: no peers, no discovery.
    let mut config = Config::new(
        params.chain_id,
        params.unsafe_signer,
        params.forks,
        params.block_time,
        op_p2p_core::testkit::peer_id(0),
    );
    config.discovery = None;
    let mut node = Node::new(config);
    let now_ms = params.now.saturating_mul(1000);
    let mut summary = Summary::default();
    for (index, case) in manifest.cases.iter().enumerate() {
        if case.file.is_empty() || Path::new(&case.file).is_absolute() {
            return Err(VerdictsError::BadFileName {
                index,
                file: case.file.clone(),
            });
        }
        let file_path = base.join(&case.file);
        let data = read_bounded(&file_path, MAX_MESSAGE_FILE_BYTES).map_err(|e| match e {
            Ok(source) => VerdictsError::ReadCase {
                index,
                path: file_path.clone(),
                source,
            },
            Err(size) => VerdictsError::TooLarge {
                path: file_path.clone(),
                size,
                limit: MAX_MESSAGE_FILE_BYTES,
            },
        })?;
        let id = message_id(&case.topic, &data);
        node.handle_input(
            now_ms,
            Input::Gossip(GossipMessage {
                handle: MessageHandle(index as u64),
                topic: case.topic.clone(),
                data: data.into(),
                source: None,
            }),
        );
        let mut decided: Option<(Verdict, Reason)> = None;
        while let Some(action) = node.poll_action() {
            if let Action::Verdict {
                verdict, reason, ..
            } = action
            {
                decided = Some((verdict, reason));
            }
        }
        // The node answers every gossip input with exactly one verdict.
        let (verdict, reason) = decided.unwrap_or((Verdict::Reject, Reason::UnknownTopic));
        summary.total += 1;
        match verdict {
            Verdict::Accept => summary.accept += 1,
            Verdict::Reject => summary.reject += 1,
            Verdict::Ignore => summary.ignore += 1,
        }
        emit(&CaseResult {
            index,
            file: case.file.clone(),
            verdict: verdict.as_str().into(),
            reason: reason.as_str().into(),
            message_id: id.to_string(),
        });
    }
    Ok(summary)
}
