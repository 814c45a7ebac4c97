//! [`Host`]: several nodes — one per chain — on one runtime, sharing one HTTP server (JSON-RPC,
//! `/metrics`, `/healthz`) and one metrics endpoint (issue 16).
//!
//! Each chain is a whole node as [`crate::spawn`] builds it (its own identity, swarm, discv5
//! table, data dir, bans, peer book, metrics registry); the host only adds shared HTTP:
//!
//! | request on the host's RPC listener | answer |
//! |---|---|
//! | `POST /chain/<id>` (chain id or name) | that chain's `opp2p_*` JSON-RPC, shapes as on a single node |
//! | `GET /chain/<id>/healthz` | that chain's `{"name","chain_id","status","reasons"}` |
//! | `GET /healthz` | worst of the chains, each listed ([`Chains::health_json`]) |
//! | `GET /metrics` | every chain's series, each with a `chain_id` label ([`merge_metrics`]) |
//!
//! The host's metrics listener serves `GET /metrics` and `GET /healthz` only, as a single
//! node's does. A chain may also have its own RPC port (its [`NodeConfig::rpc_addr`]): that
//! listener is the single-node one, serving only that chain, as op-node tooling expects.
//!
//! A chain that fails to start is kept in the list as `failed` with its error ([`Host::spawn`]
//! records it), so `/healthz` shows it while the other chains keep running.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use futures::FutureExt;
use futures::channel::oneshot;
use futures::future::{BoxFuture, RemoteHandle};
use prometheus_client::registry::Registry;
use serde_json::{Value, json};

use crate::health::HealthReport;
use crate::http::{HttpState, VirtualHosts};
use crate::{AdminClient, NodeConfig, NodeHandle, Runtime, SpawnError, SpawnOptions};

/// Most chains one host holds (running or failed): the `chain_id` label's bound.
pub const MAX_CHAINS: usize = 256;

/// The host's shared listeners.
#[derive(Debug, Clone, Default)]
pub struct HostConfig {
    /// The shared JSON-RPC listener (`/chain/<id>`, `/metrics`, `/healthz`); `None` for none.
    pub rpc_addr: Option<SocketAddr>,
    /// The shared metrics listener (`GET /metrics`, `GET /healthz` only); `None` for none, or
    /// the RPC address to serve both on one listener.
    pub metrics_addr: Option<SocketAddr>,
    /// The `Host` names the RPC listener answers ([`VirtualHosts`]).
    pub rpc_vhosts: VirtualHosts,
}

/// Why a host or one of its chains could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HostError {
    /// A shared HTTP listener could not bind.
    #[error("http listen on {addr}")]
    Http {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A chain with this chain id is already running (or starting) in the host.
    #[error("chain {name:?}: chain id {chain_id} is already served by chain {other:?}")]
    DuplicateChain {
        /// The refused chain's name.
        name: String,
        /// The chain id both have.
        chain_id: u64,
        /// The chain already holding it.
        other: String,
    },
    /// [`MAX_CHAINS`] chains are already registered.
    #[error("chain {name:?}: the host already holds {MAX_CHAINS} chains")]
    TooManyChains {
        /// The refused chain's name.
        name: String,
    },
}

/// What a chain is doing, as the host sees it.
#[derive(Debug, Clone)]
enum SlotState {
    Starting,
    Running {
        admin: AdminClient,
        registry: Arc<Registry>,
        health: HealthReport,
    },
    Stopped,
    Failed(String),
}

#[derive(Debug, Clone)]
struct Slot {
    name: String,
    chain_id: Option<u64>,
    state: SlotState,
}

/// The chains of a host, shared by its HTTP listeners and the chains' node tasks. Holds at
/// most [`MAX_CHAINS`] entries.
#[derive(Debug, Default)]
pub struct Chains {
    slots: RwLock<Vec<Slot>>,
}

impl Chains {
    fn read(&self) -> RwLockReadGuard<'_, Vec<Slot>> {
        self.slots.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Vec<Slot>> {
        self.slots.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a slot, refusing a chain id some live slot already has.
    fn reserve(&self, name: &str, chain_id: Option<u64>) -> Result<usize, HostError> {
        let mut slots = self.write();
        if let Some(id) = chain_id
            && let Some(other) = slots.iter().find(|s| {
                s.chain_id == Some(id)
                    && !matches!(s.state, SlotState::Failed(_) | SlotState::Stopped)
            })
        {
            return Err(HostError::DuplicateChain {
                name: name.to_owned(),
                chain_id: id,
                other: other.name.clone(),
            });
        }
        // A failed or stopped slot of the same name is reused: a retry does not grow the list.
        if let Some(i) = slots.iter().position(|s| {
            s.name == name && matches!(s.state, SlotState::Failed(_) | SlotState::Stopped)
        }) {
            slots[i] = Slot {
                name: name.to_owned(),
                chain_id,
                state: SlotState::Starting,
            };
            return Ok(i);
        }
        if slots.len() >= MAX_CHAINS {
            return Err(HostError::TooManyChains {
                name: name.to_owned(),
            });
        }
        slots.push(Slot {
            name: name.to_owned(),
            chain_id,
            state: SlotState::Starting,
        });
        Ok(slots.len() - 1)
    }

    fn set(&self, index: usize, state: SlotState) {
        if let Some(s) = self.write().get_mut(index) {
            s.state = state;
        }
    }

    /// The names and chain ids of the chains, with `"starting"`, `"running"`, `"stopped"` or
    /// `"failed"`.
    pub fn list(&self) -> Vec<(String, Option<u64>, &'static str)> {
        self.read()
            .iter()
            .map(|s| {
                let what = match s.state {
                    SlotState::Starting => "starting",
                    SlotState::Running { .. } => "running",
                    SlotState::Stopped => "stopped",
                    SlotState::Failed(_) => "failed",
                };
                (s.name.clone(), s.chain_id, what)
            })
            .collect()
    }

    /// The chain whose id (decimal) is `key`, else the one named `key`.
    fn find(&self, key: &str) -> Option<Slot> {
        let id = key.parse::<u64>().ok();
        let slots = self.read();
        id.and_then(|id| slots.iter().find(|s| s.chain_id == Some(id)))
            .or_else(|| slots.iter().find(|s| s.name == key))
            .cloned()
    }

    /// The admin API of the running chain `key` (id or name): `None` if there is no such
    /// chain, `Some(None)` if it is not running.
    pub(crate) fn admin(&self, key: &str) -> Option<Option<AdminClient>> {
        self.find(key).map(|s| match s.state {
            SlotState::Running { admin, .. } => Some(admin),
            _ => None,
        })
    }

    fn slot_json(s: &Slot) -> (Value, bool) {
        let mut v = json!({"name": s.name, "chain_id": s.chain_id});
        let ok = match &s.state {
            SlotState::Running { health, .. } => {
                let h = health.health();
                let ok = h.status == op_p2p_core::HealthStatus::Ok;
                if let (Ok(Value::Object(m)), Some(o)) =
                    (serde_json::to_value(&h), v.as_object_mut())
                {
                    o.extend(m);
                }
                ok
            }
            SlotState::Starting => {
                v["status"] = json!("starting");
                false
            }
            SlotState::Stopped => {
                v["status"] = json!("stopped");
                false
            }
            SlotState::Failed(e) => {
                v["status"] = json!("failed");
                v["error"] = json!(e);
                false
            }
        };
        (v, ok)
    }

    /// `GET /chain/<key>/healthz`: `{"name","chain_id","status","reasons"}` (`status` is
    /// `starting`, `stopped` or `failed` with an `error` when the chain is not running).
    pub fn chain_health_json(&self, key: &str) -> Option<String> {
        self.find(key).map(|s| Self::slot_json(&s).0.to_string())
    }

    /// `GET /healthz`: `{"status":"ok"|"degraded","chains":[...]}`, `ok` only when every chain
    /// runs and is ok; each chain as in [`Chains::chain_health_json`].
    pub fn health_json(&self) -> String {
        let slots = self.read().clone();
        let mut all_ok = true;
        let chains: Vec<Value> = slots
            .iter()
            .map(|s| {
                let (v, ok) = Self::slot_json(s);
                all_ok &= ok;
                v
            })
            .collect();
        let status = if all_ok && !chains.is_empty() {
            "ok"
        } else {
            "degraded"
        };
        json!({"status": status, "chains": chains}).to_string()
    }

    /// `GET /metrics`: every running chain's registry, merged ([`merge_metrics`]).
    pub fn metrics_text(&self) -> Result<String, std::fmt::Error> {
        let running: Vec<(u64, Arc<Registry>)> = self
            .read()
            .iter()
            .filter_map(|s| match (&s.state, s.chain_id) {
                (SlotState::Running { registry, .. }, Some(id)) => Some((id, registry.clone())),
                _ => None,
            })
            .collect();
        let mut parts = Vec::with_capacity(running.len());
        for (id, registry) in running {
            let mut text = String::new();
            prometheus_client::encoding::text::encode(&mut text, &registry)?;
            parts.push((id, text));
        }
        Ok(merge_metrics(&parts))
    }
}

/// A chain's place in a host, carried by [`SpawnOptions`] into the node task.
#[derive(Debug, Clone)]
pub(crate) struct HostSlot {
    chains: Arc<Chains>,
    index: usize,
}

impl HostSlot {
    /// The node is up: the host may route to it.
    pub(crate) fn running(
        &self,
        admin: AdminClient,
        registry: Arc<Registry>,
        health: HealthReport,
    ) {
        self.chains.set(
            self.index,
            SlotState::Running {
                admin,
                registry,
                health,
            },
        );
    }

    /// The node has stopped.
    pub(crate) fn stopped(&self) {
        self.chains.set(self.index, SlotState::Stopped);
    }
}

/// Merges OpenMetrics texts of several chains into one exposition: each family's `# HELP`,
/// `# TYPE`, `# UNIT` lines once, then its samples from every chain with `chain_id="<id>"`
/// added as the first label; one `# EOF` at the end.
pub fn merge_metrics(parts: &[(u64, String)]) -> String {
    // (header lines, sample lines, the part that wrote the header), in first-seen order.
    let mut families: Vec<(Vec<String>, Vec<String>, usize)> = Vec::new();
    let mut index: std::collections::HashMap<String, usize> = Default::default();
    for (part, (id, text)) in parts.iter().enumerate() {
        let mut current: Option<usize> = None;
        for line in text.lines() {
            if line == "# EOF" || line.is_empty() {
                continue;
            }
            if let Some(rest) = line.strip_prefix("# ") {
                let name = rest.split(' ').nth(1).unwrap_or("").to_owned();
                let i = *index.entry(name).or_insert_with(|| {
                    families.push((Vec::new(), Vec::new(), part));
                    families.len() - 1
                });
                if families[i].2 == part {
                    families[i].0.push(line.to_owned());
                }
                current = Some(i);
            } else if let Some(i) = current {
                families[i].1.push(with_chain_label(line, *id));
            }
        }
    }
    let mut out = String::new();
    for (header, samples, _) in families {
        for l in header.iter().chain(samples.iter()) {
            out.push_str(l);
            out.push('\n');
        }
    }
    out.push_str("# EOF\n");
    out
}

/// `name{a="b"} 1` → `name{chain_id="7",a="b"} 1`; `name 1` → `name{chain_id="7"} 1`.
fn with_chain_label(line: &str, id: u64) -> String {
    let mut out = String::with_capacity(line.len() + 24);
    match line.find(['{', ' ']) {
        Some(i) if line.as_bytes()[i] == b'{' => {
            out.push_str(&line[..=i]);
            let _ = write!(out, "chain_id=\"{id}\"");
            if !line[i + 1..].starts_with('}') {
                out.push(',');
            }
            out.push_str(&line[i + 1..]);
        }
        Some(i) => {
            out.push_str(&line[..i]);
            let _ = write!(out, "{{chain_id=\"{id}\"}}");
            out.push_str(&line[i..]);
        }
        None => out.push_str(line),
    }
    out
}

/// Several chains on one runtime with shared HTTP listeners (see the module docs). Dropping
/// it, like [`Host::shutdown`], stops its listeners (without waiting for them); the chains run
/// until their handles stop them.
#[derive(Debug)]
pub struct Host {
    chains: Arc<Chains>,
    servers: Vec<(oneshot::Sender<()>, RemoteHandle<()>)>,
    rpc_addr: Option<SocketAddr>,
    metrics_addr: Option<SocketAddr>,
}

impl Host {
    /// Binds the shared listeners on `rt` and starts serving (no chains yet).
    pub async fn start<R: Runtime>(rt: &R, config: HostConfig) -> Result<Host, HostError> {
        let chains = Arc::new(Chains::default());
        let mut wanted: Vec<SocketAddr> = config.rpc_addr.into_iter().collect();
        if let Some(m) = config.metrics_addr
            && config.rpc_addr != Some(m)
        {
            wanted.push(m);
        }
        let mut listeners = Vec::new();
        for addr in wanted {
            let (listener, local) = rt
                .bind_http(addr)
                .await
                .map_err(|source| HostError::Http { addr, source })?;
            listeners.push((addr, listener, local));
        }
        let mut host = Host {
            chains: chains.clone(),
            servers: Vec::new(),
            rpc_addr: None,
            metrics_addr: None,
        };
        for (addr, listener, local) in listeners {
            let is_rpc = config.rpc_addr == Some(addr);
            let state = if is_rpc {
                HttpState::host(chains.clone(), Some(config.rpc_vhosts.clone()))
            } else {
                HttpState::host(chains.clone(), None)
            };
            let (stop, stopped) = oneshot::channel::<()>();
            let (server, done) =
                crate::http::serve(rt.clone(), listener, Arc::new(state), async move {
                    let _ = stopped.await;
                })
                .remote_handle();
            rt.spawn(server.boxed());
            let what = if is_rpc {
                "json-rpc /chain/<id>, /metrics"
            } else {
                "/metrics only"
            };
            tracing::info!(%local, what, "host http listening");
            host.servers.push((stop, done));
            if is_rpc {
                host.rpc_addr = Some(local);
            }
            if config.metrics_addr == Some(addr) {
                host.metrics_addr = Some(local);
            }
        }
        Ok(host)
    }

    /// The shared RPC listener's bound address.
    pub fn rpc_addr(&self) -> Option<SocketAddr> {
        self.rpc_addr
    }

    /// The shared metrics listener's bound address (the RPC one if they are the same).
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// The chains the host serves.
    pub fn chains(&self) -> &Arc<Chains> {
        &self.chains
    }

    /// Starts chain `name` (its node from `config`) on `rt` and registers it with the host.
    /// A chain id another live chain has is refused ([`HostError::DuplicateChain`]); a chain
    /// that fails to start stays listed as `failed` with its error.
    pub fn spawn<R: Runtime>(
        &self,
        rt: R,
        name: &str,
        config: NodeConfig,
        mut options: SpawnOptions,
    ) -> BoxFuture<'static, Result<NodeHandle, SpawnError>> {
        let chain_id = config.core.validator.chain_id;
        let index = match self.chains.reserve(name, Some(chain_id)) {
            Ok(i) => i,
            Err(e) => return Box::pin(futures::future::ready(Err(SpawnError::Host(e)))),
        };
        let chains = self.chains.clone();
        options.host = Some(HostSlot {
            chains: chains.clone(),
            index,
        });
        let spawning = crate::spawn(rt, config, options);
        Box::pin(async move {
            let r = spawning.await;
            if let Err(e) = &r {
                chains.set(index, SlotState::Failed(error_chain(e)));
            }
            r
        })
    }

    /// Records chain `name` as failed before it could be spawned (say, its configuration was
    /// refused), so `/healthz` lists it.
    pub fn report_failed(
        &self,
        name: &str,
        chain_id: Option<u64>,
        error: &(dyn std::error::Error + 'static),
    ) -> Result<(), HostError> {
        let i = self.chains.reserve(name, None)?;
        let mut slots = self.chains.write();
        if let Some(s) = slots.get_mut(i) {
            s.chain_id = chain_id;
            s.state = SlotState::Failed(error_chain(error));
        }
        Ok(())
    }

    /// Stops the shared listeners (the chains' nodes are stopped through their handles).
    pub async fn shutdown(self) {
        let (stops, dones): (Vec<_>, Vec<_>) = self.servers.into_iter().unzip();
        for stop in stops {
            let _ = stop.send(());
        }
        for done in dones {
            done.await;
        }
    }
}

/// `error: cause: cause…` on one line.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let _ = write!(s, ": {c}");
        cause = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_metrics_label_every_sample_and_keep_one_header_per_family() {
        let a = "# HELP x_total Things.\n# TYPE x_total counter\nx_total 3\n\
                 # HELP y A gauge.\n# TYPE y gauge\ny{k=\"v\"} 1\ny{k=\"w\"} 2\n# EOF\n";
        let b = "# HELP x_total Things.\n# TYPE x_total counter\nx_total 5\n\
                 # HELP z Only here.\n# TYPE z gauge\nz{} 9\n# EOF\n";
        let m = merge_metrics(&[(10, a.into()), (8453, b.into())]);
        assert_eq!(
            m,
            "# HELP x_total Things.\n# TYPE x_total counter\n\
             x_total{chain_id=\"10\"} 3\nx_total{chain_id=\"8453\"} 5\n\
             # HELP y A gauge.\n# TYPE y gauge\n\
             y{chain_id=\"10\",k=\"v\"} 1\ny{chain_id=\"10\",k=\"w\"} 2\n\
             # HELP z Only here.\n# TYPE z gauge\nz{chain_id=\"8453\"} 9\n# EOF\n"
        );
        assert_eq!(merge_metrics(&[]), "# EOF\n");
    }

    #[test]
    fn a_live_chain_id_is_refused_and_a_failed_name_is_reused() {
        let c = Chains::default();
        let i = c.reserve("base", Some(8453)).unwrap();
        assert!(matches!(
            c.reserve("base2", Some(8453)),
            Err(HostError::DuplicateChain { chain_id: 8453, ref other, .. }) if other == "base"
        ));
        c.set(i, SlotState::Failed("bind".into()));
        assert_eq!(c.reserve("base", Some(8453)).unwrap(), i);
        assert_eq!(c.list(), vec![("base".to_owned(), Some(8453), "starting")]);
        // An id wins over a name that looks like one.
        c.reserve("10", Some(8453 + 1)).unwrap();
        c.reserve("op", Some(10)).unwrap();
        assert_eq!(c.find("10").unwrap().name, "op");
        assert_eq!(c.find("base").unwrap().chain_id, Some(8453));
        assert!(c.find("nope").is_none());
        let h: Value = serde_json::from_str(&c.health_json()).unwrap();
        assert_eq!(h["status"], "degraded");
        assert_eq!(h["chains"][0]["status"], "starting");
        assert_eq!(h["chains"].as_array().unwrap().len(), 3);
    }

    #[test]
    fn the_host_holds_at_most_max_chains() {
        let c = Chains::default();
        for i in 0..MAX_CHAINS {
            c.reserve(&format!("c{i}"), Some(i as u64)).unwrap();
        }
        assert!(matches!(
            c.reserve("one-more", Some(99_999)),
            Err(HostError::TooManyChains { .. })
        ));
    }
}
