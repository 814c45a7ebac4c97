//! `op-p2p bench` end to end with tiny parameters: three node processes, three blocks, then
//! three more while a spammer process floods the last node (from this machine's default-route
//! address when it has one, so the target listens on every interface for the spam phase).

use std::process::Command;
use std::time::Duration;

#[test]
fn bench_runs_end_to_end_and_reports_every_block() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_op-p2p"))
        .args([
            "bench",
            "--nodes",
            "3",
            "--sizes",
            "100tx",
            "--runtimes",
            "tokio",
            "--blocks",
            "3",
            "--interval-ms",
            "100",
            "--timeout",
            "90",
            "--spam",
            "500",
            "--json",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start op-p2p bench");
    // Bounded: the bench bounds itself (--timeout), and this kills it past twice that.
    let deadline = std::time::Instant::now() + Duration::from_secs(180);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("op-p2p bench did not finish in 180 s");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let out = child.wait_with_output().expect("output");
    assert!(status.success(), "bench failed: {status}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON output");
    let r = &v[0];
    assert_eq!(r["nodes"], 3);
    assert_eq!(r["size"], "100tx");
    assert_eq!(r["runtime"], "tokio");
    assert_eq!(r["published"], 3);
    assert_eq!(r["delivered_fraction"], 1.0);
    assert_eq!(r["latency"]["samples"], 6);
    assert_eq!(r["last_node_ms"].as_array().map(Vec::len), Some(3));
    assert!(
        r["last_node_ms"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x.is_number())
    );
    assert!(r["rss_kb_mean"].as_f64().unwrap() > 0.0);
    assert!(r["sent_bytes_per_block_per_node"].as_f64().unwrap() > 0.0);
    assert!(r["gossip_msg_bytes"].as_f64().unwrap() > 0.0);
    // Stream bytes: what was written, blocks and control traffic.
    assert!(r["stream_bytes_sent_per_block_per_node"].as_f64().unwrap() > 1_000.0);
    // The spam phase: the target rejected the spammer's messages, honest blocks all arrived.
    let spam = &r["spam"];
    assert_eq!(spam["rate_limit"], 500);
    assert!(
        spam["target_rejects_per_s"].as_f64().unwrap() > 0.0,
        "{spam}"
    );
    // The spammer is on loopback, which is never IP-banned: fresh identities keep the flood
    // going, each banned by its 17th REJECT (the IP ban is tested in the core).
    let ip: std::net::IpAddr = spam["spammer_ip"].as_str().unwrap().parse().unwrap();
    assert!(ip.is_loopback(), "{spam}");
    assert!(spam["sent_per_s"].as_f64().unwrap() > 100.0, "{spam}");
    assert!(spam["identities"].as_u64().unwrap() >= 1);
    assert_eq!(spam["delivered_fraction"], 1.0, "{spam}");
    assert_eq!(spam["target_loaded"]["samples"], 3);
    assert_eq!(spam["target_unloaded"]["samples"], 3);
}
