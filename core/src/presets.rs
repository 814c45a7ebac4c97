//! Network presets as data: the four public OP Stack chains an operator most often joins.
//!
//! Each value names its public source. Sources read (through a public code index):
//! - `[REG]` ethereum-optimism/superchain-registry: `superchain/configs/mainnet/op.toml` and
//!   `mainnet/base.toml` @ 0ed9bb35c5f6265cee21431803cf1c3b0347c03b,
//!   `sepolia/op.toml` @ 22ef022f2bfbc23fd2a630f5e18f77be1805dde8,
//!   `sepolia/base.toml` @ c7ac1442c4f431f96dff53cfc113ab120f7b672c (chain id, `block_time`,
//!   `UnsafeBlockSigner`, Canyon and Ecotone times).
//! - `[HF]` crate `alloy-op-hardforks` 0.5.0 (crates.io), `src/optimism/{mainnet,sepolia}.rs`
//!   and `src/base/{mainnet,sepolia}.rs` (all four fork times; Base uses the OP constants).
//! - `[OPN]` ethereum-optimism/optimism `op-node/p2p/config.go` `DefaultBootnodes`, the
//!   `[]string` form with the OP Labs, Base, Conduit and Uniswap Labs entries (spec §7.4).
//!   The OP networks use it: op-node is their consensus client.
//! - `[BASE]` base/base `crates/common/chains/src/config.rs` @
//!   136b6f61a1d4cb8ed42762df05357e6f9e15b0f4, `MAINNET.bootnodes` and `SEPOLIA.bootnodes`:
//!   the bootnodes `base-consensus` (Base's own consensus client) is built with. Only the `enr:`
//!   entries are kept: the `enode://…:30301` entries of that list are Base's execution-layer
//!   bootnodes, which base/base PR #2482 later moved to a separate execution list (a consensus
//!   bootstrap that asks them times out). Base's consensus network is its own since the Azul
//!   fork, so op-node's shared list is not what Base's CL runs.
//! - `[BNODE]` base/node `.env.mainnet` @ da8b360829f5febdf058c055a9747275b638df5e
//!   (`BASE_NODE_P2P_BOOTNODES`, the node operators' published config for `base-consensus`):
//!   the same five Base mainnet records. (Its `.env.sepolia` repeats the mainnet records, the
//!   wrong-chain bug of base/node#1041, so Base Sepolia follows `[BASE]` only.)
//!
//! The unsafe block signer is the registry's genesis-era value. op-node follows the
//! `SystemConfig` contract on L1, which can rotate it; an embedder that tracks L1 should
//! override this value.
//!
//! ⚠ Jovian on mainnet: the registry's `mainnet/base.toml` at
//! 0ab241dfa733589f488d26356e168edde4b0be19 still shows the first schedule, 1764086401
//! (25 Nov 2025); `[HF]` 0.5.0 and the later superchain-wide value give 1764691201 (2 Dec 2025),
//! which we use.

use alloy_primitives::{Address, address};

use crate::discovery::{Bootnode, BootnodeError};
use crate::fork::ForkSchedule;

/// op-node's built-in bootnodes (`[OPN]`). op-node uses this one list for every network,
/// because discovery filters records by chain; entries are kept exactly as op-node has them
/// (including the key listed twice, with and without a TCP port, and a DNS-named enode).
pub const OP_NODE_BOOTNODES: &[&str] = &[
    // OP Labs
    "enode://869d07b5932f17e8490990f75a3f94195e9504ddb6b85f7189e5a9c0a8fff8b00aecf6f3ac450ecba6cdabdb5858788a94bde2b613e0f2d82e9b395355f76d1a@34.65.67.101:30305",
    "enode://2d4e7e9d48f4dd4efe9342706dd1b0024681bd4c3300d021f86fc75eab7865d4e0cbec6fbc883f011cfd6a57423e7e2f6e104baad2b744c3cafaec6bc7dc92c1@34.65.43.171:30305",
    // Base
    "enr:-J24QNz9lbrKbN4iSmmjtnr7SjUMk4zB7f1krHZcTZx-JRKZd0kA2gjufUROD6T3sOWDVDnFJRvqBBo62zuF-hYCohOGAYiOoEyEgmlkgnY0gmlwhAPniryHb3BzdGFja4OFQgCJc2VjcDI1NmsxoQKNVFlCxh_B-716tTs-h1vMzZkSs1FTu_OYTNjgufplG4N0Y3CCJAaDdWRwgiQG",
    "enr:-J24QH-f1wt99sfpHy4c0QJM-NfmsIfmlLAMMcgZCUEgKG_BBYFc6FwYgaMJMQN5dsRBJApIok0jFn-9CS842lGpLmqGAYiOoDRAgmlkgnY0gmlwhLhIgb2Hb3BzdGFja4OFQgCJc2VjcDI1NmsxoQJ9FTIv8B9myn1MWaC_2lJ-sMoeCDkusCsk4BYHjjCq04N0Y3CCJAaDdWRwgiQG",
    "enr:-J24QDXyyxvQYsd0yfsN0cRr1lZ1N11zGTplMNlW4xNEc7LkPXh0NAJ9iSOVdRO95GPYAIc6xmyoCCG6_0JxdL3a0zaGAYiOoAjFgmlkgnY0gmlwhAPckbGHb3BzdGFja4OFQgCJc2VjcDI1NmsxoQJwoS7tzwxqXSyFL7g0JM-KWVbgvjfB8JA__T7yY_cYboN0Y3CCJAaDdWRwgiQG",
    "enr:-J24QHmGyBwUZXIcsGYMaUqGGSl4CFdx9Tozu-vQCn5bHIQbR7On7dZbU61vYvfrJr30t0iahSqhc64J46MnUO2JvQaGAYiOoCKKgmlkgnY0gmlwhAPnCzSHb3BzdGFja4OFQgCJc2VjcDI1NmsxoQINc4fSijfbNIiGhcgvwjsjxVFJHUstK9L1T8OTKUjgloN0Y3CCJAaDdWRwgiQG",
    "enr:-J24QG3ypT4xSu0gjb5PABCmVxZqBjVw9ca7pvsI8jl4KATYAnxBmfkaIuEqy9sKvDHKuNCsy57WwK9wTt2aQgcaDDyGAYiOoGAXgmlkgnY0gmlwhDbGmZaHb3BzdGFja4OFQgCJc2VjcDI1NmsxoQIeAK_--tcLEiu7HvoUlbV52MspE0uCocsx1f_rYvRenIN0Y3CCJAaDdWRwgiQG",
    // Conduit
    "enode://d25ce99435982b04d60c4b41ba256b84b888626db7bee45a9419382300fbe907359ae5ef250346785bff8d3b9d07cd3e017a27e2ee3cfda3bcbb0ba762ac9674@bootnode.conduit.xyz:0?discport=30301",
    "enode://2d4e7e9d48f4dd4efe9342706dd1b0024681bd4c3300d021f86fc75eab7865d4e0cbec6fbc883f011cfd6a57423e7e2f6e104baad2b744c3cafaec6bc7dc92c1@34.65.43.171:0?discport=30305",
    "enode://9d7a3efefe442351217e73b3a593bcb8efffb55b4807699972145324eab5e6b382152f8d24f6301baebbfb5ecd4127bd3faab2842c04cd432bdf50ba092f6645@34.65.109.126:0?discport=30305",
    // Uniswap Labs
    "enode://010800c668896c100e8d64abc388ac5a22a8134a96fb0107c5d0c56d79ba7225c12d9e9e012d3cc0ee2701d7f63dd45f8abf0bbcf6f3c541f91742b1d7a99355@3.134.214.169:9222",
    "enode://b97abcc7011d06299c4bc44742be4a0e631a1a2925a2992adcfe80ed86bec5ff0ddf1b90d015f2dbb5e305560e12c9873b2dad72d84d131ac4be9f2a4c74b763@52.14.30.39:9222",
    "enode://760230a662610620d6d2e4ad846a6dccbceaa4556872dfacf9cdca7c2f5b49e4c66e822ed2e8813debb5fb7391f0519b8d075e565a2a89c79a9e4092e81b3e5b@3.148.100.173:9222",
];

/// Base mainnet's consensus-layer bootnodes (`[BASE]` `MAINNET.bootnodes`, the `enr:` entries;
/// `[BNODE]` lists the same five). Each record's `opstack` entry is chain 8453, UDP/TCP 9222.
pub const BASE_MAINNET_BOOTNODES: &[&str] = &[
    // [BASE] MAINNET.bootnodes[0], [BNODE] 1st (3.231.138.188)
    "enr:-J24QNz9lbrKbN4iSmmjtnr7SjUMk4zB7f1krHZcTZx-JRKZd0kA2gjufUROD6T3sOWDVDnFJRvqBBo62zuF-hYCohOGAYiOoEyEgmlkgnY0gmlwhAPniryHb3BzdGFja4OFQgCJc2VjcDI1NmsxoQKNVFlCxh_B-716tTs-h1vMzZkSs1FTu_OYTNjgufplG4N0Y3CCJAaDdWRwgiQG",
    // [BASE] MAINNET.bootnodes[1], [BNODE] 2nd (184.72.129.189)
    "enr:-J24QH-f1wt99sfpHy4c0QJM-NfmsIfmlLAMMcgZCUEgKG_BBYFc6FwYgaMJMQN5dsRBJApIok0jFn-9CS842lGpLmqGAYiOoDRAgmlkgnY0gmlwhLhIgb2Hb3BzdGFja4OFQgCJc2VjcDI1NmsxoQJ9FTIv8B9myn1MWaC_2lJ-sMoeCDkusCsk4BYHjjCq04N0Y3CCJAaDdWRwgiQG",
    // [BASE] MAINNET.bootnodes[2], [BNODE] 3rd (3.220.145.177)
    "enr:-J24QDXyyxvQYsd0yfsN0cRr1lZ1N11zGTplMNlW4xNEc7LkPXh0NAJ9iSOVdRO95GPYAIc6xmyoCCG6_0JxdL3a0zaGAYiOoAjFgmlkgnY0gmlwhAPckbGHb3BzdGFja4OFQgCJc2VjcDI1NmsxoQJwoS7tzwxqXSyFL7g0JM-KWVbgvjfB8JA__T7yY_cYboN0Y3CCJAaDdWRwgiQG",
    // [BASE] MAINNET.bootnodes[3], [BNODE] 4th (3.231.11.52)
    "enr:-J24QHmGyBwUZXIcsGYMaUqGGSl4CFdx9Tozu-vQCn5bHIQbR7On7dZbU61vYvfrJr30t0iahSqhc64J46MnUO2JvQaGAYiOoCKKgmlkgnY0gmlwhAPnCzSHb3BzdGFja4OFQgCJc2VjcDI1NmsxoQINc4fSijfbNIiGhcgvwjsjxVFJHUstK9L1T8OTKUjgloN0Y3CCJAaDdWRwgiQG",
    // [BASE] MAINNET.bootnodes[4], [BNODE] 5th (54.198.153.150)
    "enr:-J24QG3ypT4xSu0gjb5PABCmVxZqBjVw9ca7pvsI8jl4KATYAnxBmfkaIuEqy9sKvDHKuNCsy57WwK9wTt2aQgcaDDyGAYiOoGAXgmlkgnY0gmlwhDbGmZaHb3BzdGFja4OFQgCJc2VjcDI1NmsxoQIeAK_--tcLEiu7HvoUlbV52MspE0uCocsx1f_rYvRenIN0Y3CCJAaDdWRwgiQG",
];

/// Base Sepolia's consensus-layer bootnodes (`[BASE]` `SEPOLIA.bootnodes`, the `enr:` entries,
/// added by base/base PR #2325 for op-node's discv5 port 9222). Chain 84532.
pub const BASE_SEPOLIA_BOOTNODES: &[&str] = &[
    // [BASE] SEPOLIA.bootnodes[2] (107.21.251.55:9222)
    "enr:-J64QFa3qMsONLGphfjEkeYyF6Jkil_jCuJmm7_a42ckZeUQGLVzrzstZNb1dgBp1GGx9bzImq5VxJLP-BaptZThGiWGAYrTytOvgmlkgnY0gmlwhGsV-zeHb3BzdGFja4S0lAUAiXNlY3AyNTZrMaEDahfSECTIS_cXyZ8IyNf4leANlZnrsMEWTkEYxf4GMCmDdGNwgiQGg3VkcIIkBg",
    // [BASE] SEPOLIA.bootnodes[3] (18.210.176.114:9222)
    "enr:-J64QBwRIWAco7lv6jImSOjPU_W266lHXzpAS5YOh7WmgTyBZkgLgOwo_mxKJq3wz2XRbsoBItbv1dCyjIoNq67mFguGAYrTxM42gmlkgnY0gmlwhBLSsHKHb3BzdGFja4S0lAUAiXNlY3AyNTZrMaEDmoWSi8hcsRpQf2eJsNUx-sqv6fH4btmo2HsAzZFAKnKDdGNwgiQGg3VkcIIkBg",
];

/// The data a node needs to join one public network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Preset {
    /// The name accepted by [`Preset::by_name`].
    pub name: &'static str,
    /// L2 chain id (topics, signatures, the ENR `opstack` entry).
    pub chain_id: u64,
    /// The sequencer's block-signing address (see the module docs on rotation).
    pub unsafe_block_signer: Address,
    /// Activation times of the forks that change gossip.
    pub forks: ForkSchedule,
    /// L2 block time in seconds.
    pub block_time_secs: u64,
    /// Default bootnodes (`enr:` or `enode://` strings): the ones the network's consensus
    /// client ships with (op-node's for the OP networks, `base-consensus`'s for Base).
    pub bootnodes: &'static [&'static str],
}

/// OP Mainnet.
pub const OP_MAINNET: Preset = Preset {
    name: "op-mainnet",
    chain_id: 10, // [REG] mainnet/op.toml
    unsafe_block_signer: address!("0xAAAA45d9549EDA09E70937013520214382Ffc4A2"), // [REG] mainnet/op.toml
    forks: ForkSchedule {
        canyon: Some(1_704_992_401), // [REG] mainnet/op.toml, [HF] OP_MAINNET_CANYON_TIMESTAMP
        ecotone: Some(1_710_374_401), // [REG] mainnet/op.toml, [HF] OP_MAINNET_ECOTONE_TIMESTAMP
        isthmus: Some(1_746_806_401), // [HF] OP_MAINNET_ISTHMUS_TIMESTAMP (9 May 2025)
        jovian: Some(1_764_691_201), // [HF] OP_MAINNET_JOVIAN_TIMESTAMP (2 Dec 2025), see ⚠
    },
    block_time_secs: 2,           // [REG] mainnet/op.toml
    bootnodes: OP_NODE_BOOTNODES, // [OPN]
};

/// Base mainnet.
pub const BASE: Preset = Preset {
    name: "base",
    chain_id: 8453, // [REG] mainnet/base.toml
    unsafe_block_signer: address!("0xAf6E19BE0F9cE7f8afd49a1824851023A8249e8a"), // [REG] mainnet/base.toml
    forks: ForkSchedule {
        canyon: Some(1_704_992_401), // [REG] mainnet/base.toml, [HF] BASE_MAINNET_CANYON_TIMESTAMP
        ecotone: Some(1_710_374_401), // [REG] mainnet/base.toml, [HF] BASE_MAINNET_ECOTONE_TIMESTAMP
        isthmus: Some(1_746_806_401), // [HF] BASE_MAINNET_ISTHMUS_TIMESTAMP; [REG] base.toml @ 0ab241df
        jovian: Some(1_764_691_201),  // [HF] BASE_MAINNET_JOVIAN_TIMESTAMP, see ⚠
    },
    block_time_secs: 2,                // [REG] mainnet/base.toml
    bootnodes: BASE_MAINNET_BOOTNODES, // [BASE], [BNODE]
};

/// OP Sepolia.
pub const OP_SEPOLIA: Preset = Preset {
    name: "op-sepolia",
    chain_id: 11_155_420, // [REG] sepolia/op.toml
    unsafe_block_signer: address!("0x57CACBB0d30b01eb2462e5dC940c161aff3230D3"), // [REG] sepolia/op.toml
    forks: ForkSchedule {
        canyon: Some(1_699_981_200), // [REG] sepolia/op.toml, [HF] OP_SEPOLIA_CANYON_TIMESTAMP
        ecotone: Some(1_708_534_800), // [REG] sepolia/op.toml, [HF] OP_SEPOLIA_ECOTONE_TIMESTAMP
        isthmus: Some(1_744_905_600), // [HF] OP_SEPOLIA_ISTHMUS_TIMESTAMP (17 Apr 2025)
        jovian: Some(1_763_568_001), // [HF] OP_SEPOLIA_JOVIAN_TIMESTAMP (19 Nov 2025)
    },
    block_time_secs: 2,           // [REG] sepolia/op.toml
    bootnodes: OP_NODE_BOOTNODES, // [OPN]
};

/// Base Sepolia.
pub const BASE_SEPOLIA: Preset = Preset {
    name: "base-sepolia",
    chain_id: 84_532, // [REG] sepolia/base.toml
    unsafe_block_signer: address!("0xb830b99c95Ea32300039624Cb567d324D4b1D83C"), // [REG] sepolia/base.toml
    forks: ForkSchedule {
        canyon: Some(1_699_981_200), // [REG] sepolia/base.toml, [HF] BASE_SEPOLIA_CANYON_TIMESTAMP
        ecotone: Some(1_708_534_800), // [REG] sepolia/base.toml, [HF] BASE_SEPOLIA_ECOTONE_TIMESTAMP
        isthmus: Some(1_744_905_600), // [HF] BASE_SEPOLIA_ISTHMUS_TIMESTAMP
        jovian: Some(1_763_568_001),  // [HF] BASE_SEPOLIA_JOVIAN_TIMESTAMP
    },
    block_time_secs: 2,                // [REG] sepolia/base.toml
    bootnodes: BASE_SEPOLIA_BOOTNODES, // [BASE]
};

/// Every preset, mainnets first.
pub const ALL: [&Preset; 4] = [&OP_MAINNET, &BASE, &OP_SEPOLIA, &BASE_SEPOLIA];

impl Preset {
    /// The preset called `name`: `op-mainnet`, `base`, `op-sepolia` or `base-sepolia`.
    pub fn by_name(name: &str) -> Option<&'static Preset> {
        ALL.into_iter().find(|p| p.name == name)
    }

    /// The preset of a chain id.
    pub fn by_chain_id(chain_id: u64) -> Option<&'static Preset> {
        ALL.into_iter().find(|p| p.chain_id == chain_id)
    }

    /// The bootnodes parsed; the first bad one is an error.
    pub fn parse_bootnodes(&self) -> Result<Vec<Bootnode>, BootnodeError> {
        self.bootnodes.iter().map(|s| Bootnode::parse(s)).collect()
    }
}

// ---- L1: where each network's unsafe block signer lives ----
//
// Sources: `[REG-L1]` ethereum-optimism/superchain-registry
// - `superchain/configs/mainnet/op.toml` and `sepolia/op.toml` @
//   8336d2aedd19b87a57b01ae36ba4afef8ea377d0 (`[addresses] SystemConfigProxy`);
// - `superchain/configs/mainnet/base.toml` and `sepolia/base.toml` @
//   5b055be4d294ce43814a44c8839d89b2436dc8aa, the last commit before the registry removed Base
//   (0d9aefc4, "superchain: remove base-mainnet|sepolia|sepolia-dev-0");
// - `superchain/configs/{mainnet,sepolia}/superchain.toml` `[l1] chain_id` (1, 11155111).

/// Where a network's unsafe block signer is kept on L1: op-node reads it from the
/// `SystemConfig` contract's storage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct L1Preset {
    /// The L1's chain id (1 for Ethereum mainnet, 11155111 for Sepolia).
    pub chain_id: u64,
    /// The chain's `SystemConfig` proxy on L1.
    pub system_config: Address,
}

/// Ethereum mainnet's chain id.
pub const L1_MAINNET: u64 = 1; // [REG-L1] mainnet/superchain.toml
/// Sepolia's chain id.
pub const L1_SEPOLIA: u64 = 11_155_111; // [REG-L1] sepolia/superchain.toml

impl Preset {
    /// Where this network's unsafe block signer is kept on L1, for the presets that know it
    /// (all four).
    pub fn l1(&self) -> Option<L1Preset> {
        let (chain_id, system_config) = match self.name {
            "op-mainnet" => (
                L1_MAINNET,
                address!("0x229047fed2591dbec1eF1118d64F7aF3dB9EB290"), // [REG-L1] mainnet/op.toml
            ),
            "base" => (
                L1_MAINNET,
                address!("0x73a79Fab69143498Ed3712e519A88a918e1f4072"), // [REG-L1] mainnet/base.toml
            ),
            "op-sepolia" => (
                L1_SEPOLIA,
                address!("0x034edD2A225f7f429A63E0f1D2084B9E0A93b538"), // [REG-L1] sepolia/op.toml
            ),
            "base-sepolia" => (
                L1_SEPOLIA,
                address!("0xf272670eb55e895584501d564AfEB048bEd26194"), // [REG-L1] sepolia/base.toml
            ),
            _ => return None,
        };
        Some(L1Preset {
            chain_id,
            system_config,
        })
    }
}

#[cfg(test)]
mod l1_tests {
    use super::*;

    #[test]
    fn every_preset_names_its_l1_and_system_config() {
        for p in ALL {
            let l1 = p.l1().expect(p.name);
            let want = if p.name.ends_with("sepolia") {
                L1_SEPOLIA
            } else {
                L1_MAINNET
            };
            assert_eq!(l1.chain_id, want, "{}", p.name);
            assert!(!l1.system_config.is_zero());
        }
        let all: std::collections::BTreeSet<_> =
            ALL.iter().map(|p| p.l1().unwrap().system_config).collect();
        assert_eq!(all.len(), ALL.len());
    }
}

// ---- end L1 ----

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::{OpStackEntry, filter_enr};
    use crate::gossip::topic::BlockVersion;

    #[test]
    fn names_and_chain_ids_resolve() {
        for p in ALL {
            assert_eq!(Preset::by_name(p.name), Some(p));
            assert_eq!(Preset::by_chain_id(p.chain_id), Some(p));
        }
        assert_eq!(Preset::by_name("op-mainnet").unwrap().chain_id, 10);
        assert_eq!(Preset::by_name("base").unwrap().chain_id, 8453);
        assert_eq!(Preset::by_name("op-sepolia").unwrap().chain_id, 11_155_420);
        assert_eq!(Preset::by_name("base-sepolia").unwrap().chain_id, 84_532);
        assert_eq!(Preset::by_name("OP-Mainnet"), None);
        assert_eq!(Preset::by_name("goerli"), None);
        assert_eq!(Preset::by_chain_id(420), None);
    }

    #[test]
    fn every_preset_bootnode_parses() {
        for p in ALL {
            let nodes = p
                .parse_bootnodes()
                .unwrap_or_else(|e| panic!("{}: {e}", p.name));
            assert_eq!(nodes.len(), p.bootnodes.len());
            // Only op-node's Conduit entry needs DNS resolution.
            let dns = usize::from(p.bootnodes == OP_NODE_BOOTNODES);
            assert_eq!(nodes.iter().filter(|b| b.needs_resolution()).count(), dns);
            assert!(nodes.iter().all(|b| b.peer_id().is_some()));
        }
    }

    /// Base's presets carry Base's own consensus records, each advertising its own chain (the
    /// base/node#1041 class: a Sepolia node given mainnet records finds no peers).
    #[test]
    fn base_presets_carry_their_own_chains_records() {
        for (p, n) in [(&BASE, 5), (&BASE_SEPOLIA, 2)] {
            assert_eq!(p.bootnodes.len(), n, "{}", p.name);
            for node in p.parse_bootnodes().unwrap() {
                let Bootnode::Enr(enr) = node else {
                    panic!("{}: an enode in a consensus list", p.name)
                };
                assert_eq!(
                    filter_enr(&enr, p.chain_id),
                    Ok(OpStackEntry::new(p.chain_id))
                );
                assert_eq!(enr.udp4(), Some(9222), "op-node's discv5 port");
            }
        }
        // Base mainnet's consensus records are the ones op-node also lists.
        assert!(BASE.bootnodes.iter().all(|b| OP_NODE_BOOTNODES.contains(b)));
        assert_eq!(OP_MAINNET.bootnodes, OP_NODE_BOOTNODES);
        assert_eq!(OP_SEPOLIA.bootnodes, OP_NODE_BOOTNODES);
    }

    #[test]
    fn base_bootnode_records_advertise_base() {
        let base_records: Vec<_> = OP_NODE_BOOTNODES
            .iter()
            .filter_map(|s| match <Bootnode>::parse(s).unwrap() {
                Bootnode::Enr(enr) => Some(enr),
                Bootnode::Enode(_) => None,
            })
            .collect();
        assert_eq!(base_records.len(), 5);
        for enr in base_records {
            assert_eq!(filter_enr(&enr, BASE.chain_id), Ok(OpStackEntry::new(8453)));
        }
    }

    #[test]
    fn fork_schedules_are_ordered_and_reach_v4() {
        for p in ALL {
            let f = p.forks;
            let times = [f.canyon, f.ecotone, f.isthmus, f.jovian].map(Option::unwrap);
            assert!(times.windows(2).all(|w| w[0] < w[1]), "{}", p.name);
            assert_eq!(f.publish_version(times[0] - 1), BlockVersion::V1);
            assert_eq!(f.publish_version(times[2]), BlockVersion::V4);
            assert!(f.is_jovian(times[3]) && !f.is_jovian(times[3] - 1));
            assert_eq!(p.block_time_secs, 2);
        }
        // Each Base network shares its OP network's schedule (Superchain hardforks).
        assert_eq!(OP_MAINNET.forks, BASE.forks);
        assert_eq!(OP_SEPOLIA.forks, BASE_SEPOLIA.forks);
    }

    #[test]
    fn preset_chain_ids_match_the_opstack_vectors() {
        let v = crate::op_node_vectors("enr_opstack.json");
        for p in ALL {
            let e = v["opstack_encodings"]
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e["chain_id"].as_u64() == Some(p.chain_id))
                .unwrap_or_else(|| panic!("no vector for {}", p.name));
            assert_eq!(
                alloy_primitives::hex::encode(OpStackEntry::new(p.chain_id).to_rlp()),
                e["opstack_value_rlp_hex"].as_str().unwrap()
            );
        }
    }
}
