//! The operator commands as processes on loopback: `op-p2p bootnode` (discovery only),
//! `op-p2p enr` (the same identity without sockets), `op-p2p bootnodes check` against our
//! bootnode, a @chainsafe/discv5 node, a wrong-chain record, a dead port and a bad entry, and
//! `--log.format json`.

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use op_p2p_core::testkit;
use op_p2p_tests::{JsPeer, Rt, enr_node_id_hex, free_udp_port, interop_dir};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const BIN: &str = env!("CARGO_BIN_EXE_op-p2p");
/// Every test body's bound.
const TEST_TIMEOUT: Duration = Duration::from_secs(90);
/// How long a started process has to print or stop.
const PROCESS_WAIT: Duration = Duration::from_secs(20);
const CHAIN: u64 = 901;

/// A running `op-p2p bootnode`: its record (first stdout line) and its stderr lines.
struct BootnodeProcess {
    child: Child,
    enr: String,
    stderr: tokio::task::JoinHandle<Vec<String>>,
}

impl BootnodeProcess {
    /// Starts `op-p2p <global…> bootnode` on 127.0.0.1, a free UDP port, chain [`CHAIN`], no
    /// bootnodes of its own (an empty file), key in `datadir`; waits for its record.
    async fn start(datadir: &Path, global: &[&str]) -> BootnodeProcess {
        let empty = datadir.with_extension("bootnodes");
        std::fs::write(&empty, "# none\n").unwrap();
        let mut child = Command::new(BIN)
            .args(global)
            .args(["bootnode", "--chain-id", &CHAIN.to_string()])
            .args(["--p2p.listen.ip", "127.0.0.1", "--p2p.listen.udp", "0"])
            .arg("--datadir")
            .arg(datadir)
            .arg("--p2p.bootnodes-file")
            .arg(&empty)
            .env_remove("OP_P2P_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start op-p2p bootnode");
        let stderr = child.stderr.take().unwrap();
        let stderr = tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            let mut all = Vec::new();
            while let Ok(Some(l)) = lines.next_line().await {
                all.push(l);
            }
            all
        });
        let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        let enr = tokio::time::timeout(PROCESS_WAIT, stdout.next_line())
            .await
            .expect("the bootnode prints its record in time")
            .unwrap()
            .expect("a record line");
        assert!(enr.starts_with("enr:"), "{enr}");
        BootnodeProcess { child, enr, stderr }
    }

    /// SIGTERM, then its exit status and stderr lines.
    async fn stop(mut self) -> (std::process::ExitStatus, Vec<String>) {
        let pid = self.child.id().unwrap().to_string();
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        assert!(sent.success());
        let status = tokio::time::timeout(PROCESS_WAIT, self.child.wait())
            .await
            .expect("the bootnode stops on SIGTERM in time")
            .unwrap();
        (status, self.stderr.await.unwrap())
    }
}

/// Runs the binary to completion (bounded).
async fn run(args: &[&str]) -> Output {
    let out = Command::new(BIN)
        .args(args)
        .env_remove("OP_P2P_LOG")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(PROCESS_WAIT, out)
        .await
        .expect("op-p2p finishes in time")
        .expect("op-p2p runs")
}

fn stdout_json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// A running bootnode and `op-p2p enr` on its data dir agree on node id and peer id; the
/// record is stable across a restart; SIGTERM stops it with status 0; and with
/// `--log.format json` every stderr line is one JSON object with op-node's `lvl` and `msg`.
#[test]
fn bootnode_and_enr_agree_and_json_logs_parse() {
    Rt::Tokio.block_on_within(TEST_TIMEOUT, async {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("boot");
        let boot =
            BootnodeProcess::start(&data, &["--log.format", "json", "--log.level", "info"]).await;
        let record: op_p2p_core::discovery::Enr = boot.enr.parse().unwrap();
        assert_eq!(record.tcp4(), None, "discovery only: no tcp");
        assert_eq!(record.ip4(), Some(std::net::Ipv4Addr::LOCALHOST));
        let node_id = enr_node_id_hex(&boot.enr);

        let data_s = data.to_str().unwrap();
        let out = run(&["enr", "--datadir", data_s, "--chain-id", "901", "--json"]).await;
        assert!(out.status.success(), "{out:?}");
        let info = stdout_json(&out);
        assert_eq!(info["node_id"], node_id.as_str());
        assert_eq!(info["chain_id"], CHAIN);
        assert_eq!(info["tcp"], 9222, "the node's default port");
        // The bootnode's own record, offline: equal but for the port chosen at start.
        let udp = record.udp4().unwrap().to_string();
        let out = run(&[
            "enr",
            "--datadir",
            data_s,
            "--chain-id",
            "901",
            "--bootnode",
            "--p2p.listen.ip",
            "127.0.0.1",
            "--p2p.listen.udp",
            &udp,
        ])
        .await;
        assert!(out.status.success(), "{out:?}");
        let offline: op_p2p_core::discovery::Enr = String::from_utf8(out.stdout)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(offline.compare_content(&record), "{offline} vs {record}");

        let (status, stderr) = boot.stop().await;
        assert!(status.success(), "{status:?}: {stderr:?}");
        assert!(!stderr.is_empty());
        let mut peer_id = None;
        for line in &stderr {
            let v: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
            assert!(v["lvl"].is_string() && v["msg"].is_string(), "{line}");
            assert!(v["t"].is_string(), "{line}");
            if v["msg"] == "bootnode running" {
                assert_eq!(v["node_id"], node_id.as_str());
                assert_eq!(v["lvl"], "info");
                peer_id = v["peer_id"].as_str().map(str::to_owned);
            }
        }
        assert_eq!(peer_id.as_deref(), info["peer_id"].as_str(), "{stderr:?}");

        // Restarted on the same data dir: the same identity.
        let again = BootnodeProcess::start(&data, &[]).await;
        assert_eq!(enr_node_id_hex(&again.enr), node_id);
        let (status, _) = again.stop().await;
        assert!(status.success());
    });
}

/// `op-p2p bootnodes check` over our bootnode (`enr:` and `enode://` forms), a
/// @chainsafe/discv5 node of our chain, a record of another chain (signed here), a dead port
/// and a bad entry: one row each with the right chain, reachability and status; exit 0 while
/// one is usable, non-zero when none is.
#[test]
fn bootnodes_check_reports_every_kind_and_fails_without_a_usable_one() {
    interop_dir();
    Rt::Tokio.block_on_within(TEST_TIMEOUT, async {
        let tmp = tempfile::tempdir().unwrap();
        let boot = BootnodeProcess::start(&tmp.path().join("boot"), &[]).await;
        let record: op_p2p_core::discovery::Enr = boot.enr.parse().unwrap();
        let boot_udp = record.udp4().unwrap();
        let uncompressed = libp2p_secp_uncompressed(&record);
        let boot_enode = format!("enode://{uncompressed}@127.0.0.1:0?discport={boot_udp}");

        let mut js = JsPeer::spawn(
            "discv5-probe.mjs",
            &[
                "--serve".into(),
                "--chain-id".into(),
                CHAIN.to_string(),
                "--timeout-ms".into(),
                "60000".into(),
            ],
        );
        let js_enr = js.until("serving").await["enr"]
            .as_str()
            .expect("the JS node's record")
            .to_owned();

        let localhost = std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
        let dead_port = free_udp_port();
        let wrong_chain = testkit::enr(7, 10, localhost, boot_udp).to_base64();
        let dead = testkit::enr(8, CHAIN, localhost, dead_port).to_base64();
        let file = tmp.path().join("list.txt");
        std::fs::write(
            &file,
            format!("# a list\n{js_enr}\n\n{wrong_chain}\n{dead}\nenr:not-base64!\n"),
        )
        .unwrap();
        let file_s = file.to_str().unwrap();
        let flags = format!("{},{boot_enode}", boot.enr);
        let out = run(&[
            "bootnodes",
            "check",
            "--chain-id",
            "901",
            "--p2p.bootnodes",
            &flags,
            "--p2p.bootnodes-file",
            file_s,
            "--timeout",
            "2s",
            "--listen-ip",
            "127.0.0.1",
            "--json",
        ])
        .await;
        assert!(out.status.success(), "{out:?}");
        let report = stdout_json(&out);
        assert_eq!(report["chain_id"], CHAIN);
        let rows = report["rows"].as_array().unwrap();
        let summary: Vec<(&str, &str, &str, bool, &str)> = rows
            .iter()
            .map(|r| {
                (
                    r["source"].as_str().unwrap(),
                    r["kind"].as_str().unwrap(),
                    r["chain"].as_str().unwrap(),
                    r["reachable"].as_bool().unwrap(),
                    r["status"].as_str().unwrap(),
                )
            })
            .collect();
        let line = |n: usize| format!("{file_s}:{n}");
        let (l2, l4, l5, l6) = (line(2), line(4), line(5), line(6));
        assert_eq!(
            summary,
            [
                ("flag", "enr", "901", true, "usable"),
                ("flag", "enode", "unknown", true, "usable"),
                (l2.as_str(), "enr", "901", true, "usable"),
                (l4.as_str(), "enr", "10", false, "wrong-chain"),
                (l5.as_str(), "enr", "901", false, "unreachable"),
                (l6.as_str(), "invalid", "invalid", false, "invalid"),
            ],
            "{report:#}"
        );
        assert_eq!(report["usable"], 3);
        // Over the wire: RTTs for the answering ones, their live records' chain.
        for r in &rows[..3] {
            assert!(r["rtt_ms"].as_f64().unwrap() > 0.0, "{r}");
            assert_eq!(r["live_chain"], "901", "{r}");
        }
        assert_eq!(rows[0]["node_id"], enr_node_id_hex(&boot.enr).as_str());
        assert_eq!(
            rows[1]["node_id"], rows[0]["node_id"],
            "the enode is the bootnode"
        );
        assert_eq!(rows[4]["addr"], format!("127.0.0.1:{dead_port}"));
        assert!(rows[4]["rtt_ms"].is_null());

        // The table form, and a list with nothing usable: non-zero exit.
        let out = run(&[
            "bootnodes",
            "check",
            "--chain-id",
            "901",
            "--p2p.bootnodes",
            &format!("{wrong_chain},{dead},enr:not-base64!"),
            "--timeout",
            "1s",
            "--listen-ip",
            "127.0.0.1",
        ])
        .await;
        assert!(!out.status.success(), "{out:?}");
        let table = String::from_utf8(out.stdout).unwrap();
        assert!(table.starts_with("#  SOURCE"), "{table}");
        for want in [
            "wrong-chain",
            "unreachable",
            "invalid",
            "0 of 3 usable for chain 901",
        ] {
            assert!(table.contains(want), "{want}: {table}");
        }
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(
            stderr.contains("none of the 3 bootnodes is usable"),
            "{stderr}"
        );

        // The JS node is of chain 901: checked against chain 10, it is the wrong chain,
        // though reachable.
        let out = run(&[
            "bootnodes",
            "check",
            "--chain-id",
            "10",
            "--p2p.bootnodes",
            &js_enr,
            "--timeout",
            "2s",
            "--listen-ip",
            "127.0.0.1",
            "--json",
        ])
        .await;
        assert!(!out.status.success(), "{out:?}");
        let r = &stdout_json(&out)["rows"][0];
        assert_eq!(
            (r["reachable"].as_bool(), r["status"].as_str()),
            (Some(true), Some("wrong-chain"))
        );

        js.stop().await;
        let (status, _) = boot.stop().await;
        assert!(status.success());
    });
}

/// The 128 hex digits of a record's uncompressed public key (without `04`), for an enode URL.
fn libp2p_secp_uncompressed(record: &op_p2p_core::discovery::Enr) -> String {
    use op_p2p_core::discovery::enr_crate::EnrPublicKey;
    let key = record.public_key();
    let full = key.encode_uncompressed();
    op_p2p_core::alloy_primitives::hex::encode(&full[full.len() - 64..])
}
