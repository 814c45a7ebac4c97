//! A throwaway Linux network namespace joined to this host by a veth pair, for the bench's
//! spammer: from inside it, the spammer reaches the target at [`NetNs::HOST_IP`] and the target
//! sees it come from [`NetNs::PEER_IP`], an address that is neither loopback nor exempt, so the
//! IP ban and the accept rate apply as they would to an outside attacker. Nothing leaves the
//! machine: the pair is a private /30 between this host and the namespace.
//!
//! Needs root (or CAP_NET_ADMIN) and iproute2's `ip`. Dropping the [`NetNs`] deletes the
//! namespace, which removes the veth pair with it.

use std::net::{IpAddr, Ipv4Addr};
use std::process::Command;

/// Why the namespace could not be made.
#[derive(Debug, thiserror::Error)]
pub enum NetNsError {
    /// `ip` could not be run.
    #[error("running `ip {args}`")]
    Spawn {
        /// The arguments.
        args: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// `ip` failed (not root, no netns support, a name in use).
    #[error("`ip {args}` failed: {stderr}")]
    Failed {
        /// The arguments.
        args: String,
        /// What it printed.
        stderr: String,
    },
}

/// A network namespace with a veth link to the host; deleted on drop.
#[derive(Debug)]
pub struct NetNs {
    name: String,
}

impl NetNs {
    /// The host's end of the link: what the namespace dials.
    pub const HOST_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 213, 0, 1));
    /// The namespace's end: where its connections come from.
    pub const PEER_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 213, 0, 2));

    /// Creates `opp2p-<tag>-<pid>` with the veth pair up and addressed.
    pub fn create(tag: &str) -> Result<Self, NetNsError> {
        let pid = std::process::id();
        let name = format!("opp2p-{tag}-{pid}");
        // Interface names are at most 15 bytes.
        let host_if = format!("op{}h", pid % 1_000_000);
        let ns_if = format!("op{}n", pid % 1_000_000);
        ip(&["netns", "add", &name])?;
        let ns = Self { name };
        let host = format!("{}/30", Self::HOST_IP);
        let peer = format!("{}/30", Self::PEER_IP);
        let n = ns.name.as_str();
        ip(&[
            "link", "add", &host_if, "type", "veth", "peer", "name", &ns_if,
        ])?;
        let steps: [&[&str]; 6] = [
            &["link", "set", &ns_if, "netns", n],
            &["addr", "add", &host, "dev", &host_if],
            &["link", "set", &host_if, "up"],
            &["-n", n, "addr", "add", &peer, "dev", &ns_if],
            &["-n", n, "link", "set", &ns_if, "up"],
            &["-n", n, "link", "set", "lo", "up"],
        ];
        for step in steps {
            if let Err(e) = ip(step) {
                // The pair's host end is not in the namespace yet if the first step failed.
                let _ = ip(&["link", "del", &host_if]);
                return Err(e);
            }
        }
        Ok(ns)
    }

    /// The namespace's name (for `ip netns exec`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `program args…` run inside the namespace.
    pub fn command(&self, program: &std::path::Path) -> tokio::process::Command {
        let mut c = tokio::process::Command::new("ip");
        c.args(["netns", "exec", &self.name]).arg(program);
        c
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        if let Err(e) = ip(&["netns", "del", &self.name]) {
            tracing::warn!(error = %e, "network namespace not deleted");
        }
    }
}

fn ip(args: &[&str]) -> Result<(), NetNsError> {
    let joined = args.join(" ");
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|source| NetNsError::Spawn {
            args: joined.clone(),
            source,
        })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(NetNsError::Failed {
            args: joined,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}
