//! Block gossip topics: `/optimism/<chain id>/<n>/blocks`, n = 0..3 for payload v1..v4 (spec §2).

use std::fmt;

/// The execution payload shape carried on a block topic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BlockVersion {
    /// `ExecutionPayloadV1`, topic index 0 (before Canyon).
    V1,
    /// `ExecutionPayloadV2` with withdrawals, topic index 1 (Canyon).
    V2,
    /// Beacon root prefix + `ExecutionPayloadV3`, topic index 2 (Ecotone).
    V3,
    /// Beacon root prefix + OP `ExecutionPayloadV4` with `withdrawals_root`, topic index 3
    /// (Isthmus and Jovian).
    V4,
}

impl BlockVersion {
    /// All versions, in topic-index order.
    pub const ALL: [BlockVersion; 4] = [Self::V1, Self::V2, Self::V3, Self::V4];

    /// The `<n>` in the topic string (0..=3).
    pub const fn topic_index(self) -> u8 {
        match self {
            Self::V1 => 0,
            Self::V2 => 1,
            Self::V3 => 2,
            Self::V4 => 3,
        }
    }

    /// The version for a topic index, if it is one of the four.
    pub const fn from_topic_index(n: u8) -> Option<Self> {
        match n {
            0 => Some(Self::V1),
            1 => Some(Self::V2),
            2 => Some(Self::V3),
            3 => Some(Self::V4),
            _ => None,
        }
    }

    /// Whether the signed bytes start with the 32-byte parent beacon block root (v3, v4).
    pub const fn has_beacon_root(self) -> bool {
        matches!(self, Self::V3 | Self::V4)
    }
}

impl fmt::Display for BlockVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}", self.topic_index() + 1)
    }
}

/// A parsed block topic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BlockTopic {
    /// L2 chain id.
    pub chain_id: u64,
    /// Payload version carried on the topic.
    pub version: BlockVersion,
}

/// Why a string is not a block topic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TopicError {
    /// Not of the form `/optimism/<chain>/<n>/blocks`.
    #[error("not an OP Stack block topic: {0:?}")]
    Malformed(String),
    /// The chain id is not a canonical decimal u64.
    #[error("bad chain id in topic {0:?}")]
    BadChainId(String),
    /// The version index is not 0..=3.
    #[error("unknown block topic version in {0:?}")]
    UnknownVersion(String),
}

impl BlockTopic {
    /// The topic for `chain_id` and `version`.
    pub const fn new(chain_id: u64, version: BlockVersion) -> Self {
        Self { chain_id, version }
    }

    /// The four topics of a chain, v1..v4 (a node subscribes to all of them).
    pub fn all(chain_id: u64) -> [BlockTopic; 4] {
        BlockVersion::ALL.map(|v| Self::new(chain_id, v))
    }

    /// Parses `/optimism/<chain id in decimal>/<0..3>/blocks`. Only canonical decimals (no sign,
    /// no leading zeros, no surrounding text) are accepted, since peers compare topic strings
    /// byte for byte.
    pub fn parse(s: &str) -> Result<Self, TopicError> {
        let malformed = || TopicError::Malformed(truncate(s));
        let rest = s.strip_prefix("/optimism/").ok_or_else(malformed)?;
        let rest = rest.strip_suffix("/blocks").ok_or_else(malformed)?;
        let (chain, n) = rest.split_once('/').ok_or_else(malformed)?;
        if !is_canonical_decimal(chain) {
            return Err(TopicError::BadChainId(truncate(s)));
        }
        let chain_id: u64 = chain
            .parse()
            .map_err(|_| TopicError::BadChainId(truncate(s)))?;
        let version = match n {
            "0" => BlockVersion::V1,
            "1" => BlockVersion::V2,
            "2" => BlockVersion::V3,
            "3" => BlockVersion::V4,
            _ => return Err(TopicError::UnknownVersion(truncate(s))),
        };
        Ok(Self { chain_id, version })
    }
}

impl std::str::FromStr for BlockTopic {
    type Err = TopicError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for BlockTopic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "/optimism/{}/{}/blocks",
            self.chain_id,
            self.version.topic_index()
        )
    }
}

fn is_canonical_decimal(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'))
}

/// Error messages carry at most 128 bytes of the offending input.
fn truncate(s: &str) -> String {
    let mut end = s.len().min(128);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses_all_versions() {
        for (n, v) in BlockVersion::ALL.into_iter().enumerate() {
            let t = BlockTopic::new(901, v);
            let s = t.to_string();
            assert_eq!(s, format!("/optimism/901/{n}/blocks"));
            assert_eq!(BlockTopic::parse(&s).unwrap(), t);
            assert_eq!(BlockVersion::from_topic_index(n as u8), Some(v));
        }
        assert_eq!(BlockVersion::from_topic_index(4), None);
        assert_eq!(
            BlockTopic::parse("/optimism/0/0/blocks").unwrap().chain_id,
            0
        );
        assert_eq!(
            BlockTopic::parse("/optimism/18446744073709551615/3/blocks")
                .unwrap()
                .chain_id,
            u64::MAX
        );
    }

    #[test]
    fn rejects_everything_else() {
        for bad in [
            "",
            "/optimism/10/4/blocks",
            "/optimism/10/00/blocks",
            "/optimism/10/-1/blocks",
            "/optimism/010/0/blocks",
            "/optimism/+10/0/blocks",
            "/optimism//0/blocks",
            "/optimism/10/0/blocks/",
            "optimism/10/0/blocks",
            "/optimism/10/0/block",
            "/optimism/18446744073709551616/0/blocks",
            "/optimism/10/0/1/blocks",
            "/eth2/10/0/blocks",
        ] {
            assert!(BlockTopic::parse(bad).is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn error_text_is_bounded() {
        let long = "x".repeat(10_000);
        let err = BlockTopic::parse(&long).unwrap_err().to_string();
        assert!(err.len() < 200);
    }
}
