//! # op-p2p-tokio
//!
//! The op-p2p node on tokio. [`spawn`] starts a node (libp2p over TCP + Noise + Yamux,
//! gossipsub, identify, ping, `payload_by_number`, discv5, JSON-RPC and metrics) on the current
//! tokio runtime and returns a [`NodeHandle`] to publish, receive blocks, change the signer,
//! call the admin API and shut down. Everything but this crate's [`TokioRuntime`] (executor,
//! timers, TCP) is the runtime-neutral `op-p2p-node`, re-exported here.

#![warn(missing_docs)]

mod runtime;

pub use op_p2p_node::{
    AdminClient, ConfigError, NodeConfig, NodeConfigBuilder, NodeHandle, NodeStopped, SpawnError,
    SpawnOptions, core,
};
pub use runtime::TokioRuntime;

/// The runtime-neutral node crate, for what the re-exports above leave out.
pub use op_p2p_node as node;

/// Starts a node on the current tokio runtime and returns its handle.
///
/// ```
/// use op_p2p_tokio::core::admin::{AdminRequest, AdminResponse};
/// use op_p2p_tokio::core::{Config, fork::ForkSchedule, testkit};
/// use op_p2p_tokio::NodeConfig;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let keypair = testkit::keypair(1); // a secp256k1 identity (op-node's key type)
/// let signer = testkit::dev_key(0).address(); // the chain's unsafe block signer
/// let core = Config::new(901, signer, ForkSchedule::ALL_AT_GENESIS, 2, keypair.public().to_peer_id());
/// let mut node = op_p2p_tokio::spawn(NodeConfig::local(core, keypair), Default::default()).await.unwrap();
/// let _blocks = node.blocks().unwrap(); // stream of blocks accepted from gossip
/// match node.admin().call(AdminRequest::SelfInfo).await {
///     Ok(AdminResponse::SelfInfo(me)) => assert_eq!(me.chain_id, 901),
///     other => panic!("{other:?}"),
/// }
/// node.shutdown().await; // writes state when a data dir is configured
/// # }
/// ```
///
/// Must be called within a tokio runtime (discv5 runs on it too).
pub fn spawn(
    config: NodeConfig,
    options: SpawnOptions,
) -> impl Future<Output = Result<NodeHandle, SpawnError>> + Send + 'static {
    op_p2p_node::spawn(TokioRuntime, config, options)
}
