//! The `op-p2p` binary's `node` and `keygen` command lines.

use std::process::Command;

use op_p2p_node::datadir;

fn op_p2p() -> Command {
    Command::new(env!("CARGO_BIN_EXE_op-p2p"))
}

#[test]
fn node_help_lists_op_nodes_flag_names() {
    let out = op_p2p().args(["node", "--help"]).output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for flag in [
        "--p2p.listen.ip",
        "--p2p.listen.tcp",
        "--p2p.listen.udp",
        "--p2p.advertise.ip",
        "--p2p.priv.path",
        "--p2p.bootnodes",
        "--p2p.static",
        "--p2p.netrestrict",
        "OP_P2P_NETRESTRICT",
        "--p2p.no-discovery",
        "--p2p.peers.lo",
        "--p2p.peers.hi",
        "--p2p.peers.grace",
        "--p2p.ban.peers",
        "--p2p.ban.threshold",
        "--p2p.ban.duration",
        "--network",
        "--chain-id",
        "--unsafe-signer",
        "--canyon-time",
        "--ecotone-time",
        "--isthmus-time",
        "--jovian-time",
        "--block-time",
        "--rpc.addr",
        "--rpc.port",
        "--rpc.vhosts",
        "--metrics.addr",
        "--metrics.port",
        "--metrics.enabled",
        "--datadir",
        "--events-json",
        // op-node's environment variable names, with OP_NODE_ shortened to OP_.
        "OP_P2P_LISTEN_TCP_PORT",
        "OP_P2P_PEER_BANNING_DURATION",
        "OP_P2P_RPC_VHOSTS",
    ] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
    }
    assert!(!help.contains("--rng-seed"), "testing flag is hidden");
    let top = op_p2p().arg("--help").output().unwrap();
    let top = String::from_utf8(top.stdout).unwrap();
    assert!(top.contains("node") && top.contains("keygen"), "{top}");
}

#[test]
fn keygen_writes_op_node_format_that_loads_back_and_never_overwrites() {
    let tmp = tempfile::tempdir().unwrap();
    let out_path = tmp.path().join("p2p_priv.txt");
    let out = op_p2p()
        .args(["keygen", "--out"])
        .arg(&out_path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8(out.stdout).unwrap();
    let printed = printed.trim();
    assert!(printed.starts_with("16Uiu2HA"), "{printed}");
    let text = std::fs::read_to_string(&out_path).unwrap();
    assert_eq!(text.len(), 64);
    assert!(
        text.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    );
    let back = datadir::load_or_create_key_file(&out_path, [9; 32]).unwrap();
    assert_eq!(back.public().to_peer_id().to_string(), printed);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&out_path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let again = op_p2p()
        .args(["keygen", "--out"])
        .arg(&out_path)
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already exists"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(std::fs::read_to_string(&out_path).unwrap(), text);
}

#[test]
fn node_reports_configuration_errors_before_starting() {
    let out = op_p2p()
        .args(["node", "--network", "goerli"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown network \"goerli\""), "{err}");
}
