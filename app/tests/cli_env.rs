//! `op-p2p node` flags read from `OP_P2P_*` environment variables. The only test in this
//! binary, so setting the process environment races with nothing.

use std::time::Duration;

use clap::Parser;
use op_p2p_cli::cli::{NodeArgs, node_config};

#[derive(Debug, Parser)]
struct Wrap {
    #[command(flatten)]
    args: NodeArgs,
}

#[test]
fn environment_variables_set_flags_and_flags_win() {
    let tmp = tempfile::tempdir().unwrap();
    let vars = [
        ("OP_P2P_NETWORK", "op-sepolia"),
        ("OP_P2P_LISTEN_IP", "127.0.0.1"),
        ("OP_P2P_LISTEN_TCP_PORT", "9100"),
        ("OP_P2P_LISTEN_UDP_PORT", "9101"),
        ("OP_P2P_ADVERTISE_IP", "198.51.100.1"),
        ("OP_P2P_NO_DISCOVERY", "true"),
        ("OP_P2P_PEERS_LO", "2"),
        ("OP_P2P_PEERS_HI", "4"),
        ("OP_P2P_PEERS_GRACE", "1m"),
        ("OP_P2P_PEER_BANNING", "false"),
        ("OP_P2P_PEER_BANNING_THRESHOLD", "-50"),
        ("OP_P2P_PEER_BANNING_DURATION", "2h"),
        ("OP_P2P_RPC_PORT", "0"),
        ("OP_P2P_RPC_VHOSTS", "localhost,node.internal"),
        ("OP_P2P_METRICS_ENABLED", "true"),
        ("OP_P2P_METRICS_PORT", "7301"),
        ("OP_P2P_BLOCK_TIME", "1"),
        ("OP_P2P_OVERRIDE_JOVIAN", "123"),
        ("OP_P2P_RNG_SEED", "5"),
    ];
    for (k, v) in vars {
        // SAFETY: this test binary runs this one test; no other thread reads the environment.
        unsafe { std::env::set_var(k, v) };
    }
    let datadir = tmp.path().join("d");
    // SAFETY: as above.
    unsafe { std::env::set_var("OP_P2P_DATADIR", &datadir) };
    // Operator flags: the bootnodes file and the gossip timestamp threshold.
    let bootnodes_file = tmp.path().join("bootnodes.txt");
    let one_bootnode = op_p2p_core::presets::OP_NODE_BOOTNODES[3];
    std::fs::write(&bootnodes_file, format!("# env\n{one_bootnode}\n")).unwrap();
    // SAFETY: as above.
    unsafe {
        std::env::set_var("OP_P2P_BOOTNODES_FILE", &bootnodes_file);
        std::env::set_var("OP_P2P_GOSSIP_TIMESTAMP_THRESHOLD", "90s");
    }

    let args = Wrap::try_parse_from(["node", "--p2p.peers.hi=6"])
        .unwrap()
        .args;
    assert_eq!(args.peers_hi, 6, "a flag beats its env var");
    assert_eq!(args.peers_grace, Duration::from_secs(60));
    let c = node_config(&args, [0x21; 32]).unwrap();
    assert_eq!(c.core.validator.chain_id, 11_155_420);
    assert_eq!(
        c.listen_ip,
        "127.0.0.1".parse::<std::net::IpAddr>().unwrap()
    );
    assert_eq!((c.tcp_port, c.udp_port), (9100, 9101));
    assert_eq!(c.advertise_ip, Some("198.51.100.1".parse().unwrap()));
    assert!(!c.discovery() && c.core.discovery.is_none());
    assert_eq!((c.core.conn.low, c.core.conn.high), (2, 6));
    assert_eq!(c.core.conn.grace_ms, 60_000);
    assert!(!c.core.bans.enabled);
    assert_eq!(c.core.bans.threshold, -50.0);
    assert_eq!(c.core.bans.duration_ms, 2 * 3_600_000);
    assert_eq!(c.rpc_addr, Some("127.0.0.1:0".parse().unwrap()));
    assert_eq!(c.rpc_vhosts, ["localhost", "node.internal"]);
    assert_eq!(c.metrics_addr, Some("0.0.0.0:7301".parse().unwrap()));
    assert_eq!(c.core.block_time_secs, 1);
    assert_eq!(c.core.validator.forks.jovian, Some(123));
    assert_eq!(
        c.core.validator.forks.isthmus,
        op_p2p_core::presets::OP_SEPOLIA.forks.isthmus
    );
    assert_eq!(c.core.rng_seed, 5);
    assert_eq!(c.datadir.as_deref(), Some(datadir.as_path()));
    assert!(datadir.join("p2p_priv.txt").is_file());
    assert_eq!(c.core.validator.max_past_secs, 90);
    assert_eq!(
        c.bootnodes
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        [one_bootnode]
    );
}
