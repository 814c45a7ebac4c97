//! `op-p2p bench` end to end with tiny parameters: three node processes, three blocks, then
//! three more while a spammer process floods the last node: from loopback, and from a network
//! namespace of its own (a non-loopback address, which the target bans with its IP), and at a
//! target that never bans; and the same from a raw gossipsub spammer (`--spam-raw`).

use std::process::Command;
use std::time::Duration;

/// The bench at its smallest: 3 nodes, 3 blocks of 100 txs at 100 ms, 90 s at most.
const TINY: [&str; 11] = [
    "bench",
    "--nodes",
    "3",
    "--sizes",
    "100tx",
    "--blocks",
    "3",
    "--interval-ms",
    "100",
    "--timeout",
    "90",
];

/// `op-p2p bench` on 3 tokio nodes, 3 blocks of 100 txs at 100 ms, spam at 500/s, plus
/// `extra`; its JSON result (one scenario).
fn run_bench(extra: &[&str]) -> serde_json::Value {
    run_bench_at("500", extra)
}

/// [`run_bench`] with spam at `rate` a second.
fn run_bench_at(rate: &str, extra: &[&str]) -> serde_json::Value {
    run_bench_with(rate, extra, &[])
}

/// [`run_bench_at`] with environment variables for the bench (and so its children).
fn run_bench_with(rate: &str, extra: &[&str], envs: &[(&str, &str)]) -> serde_json::Value {
    let child = Command::new(env!("CARGO_BIN_EXE_op-p2p"))
        .envs(envs.iter().copied())
        .args(TINY)
        .args(["--runtimes", "tokio", "--spam", rate, "--json"])
        .args(extra)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start op-p2p bench");
    // Bounded: the bench bounds itself (--timeout), and this kills it past that.
    let out = wait_bounded(child);
    let v: serde_json::Value = serde_json::from_slice(&out).expect("JSON output");
    v[0].clone()
}

/// The spammer in a network namespace of its own (`--spam-netns`; this machine's tests run as
/// root): the target sees it at 10.213.0.2, neither loopback nor exempt, so its first identity's
/// ban on invalid gossip bans the address too, and every later identity is refused. Honest
/// blocks all arrive, and the namespace is gone afterwards.
#[test]
fn a_spammer_outside_loopback_burns_one_identity_and_its_ip_is_banned() {
    let r = run_bench(&["--spam-netns"]);
    let spam = &r["spam"];
    assert_eq!(spam["spammer_ip"], "10.213.0.2", "{spam}");
    assert_eq!(
        spam["identities"], 1,
        "one identity, then the IP ban: {spam}"
    );
    assert!(spam["refused"].as_u64().unwrap() >= 1, "{spam}");
    assert!(
        spam["target_rejects_per_s"].as_f64().unwrap() > 0.0,
        "{spam}"
    );
    assert_eq!(spam["delivered_fraction"], 1.0, "{spam}");
    let list = Command::new("ip").args(["netns", "list"]).output().unwrap();
    let ours = "opp2p-bench-";
    assert!(
        !String::from_utf8_lossy(&list.stdout).contains(ours),
        "a bench namespace was left behind: {list:?}"
    );
}

#[test]
fn bench_runs_end_to_end_and_reports_every_block() {
    let r = run_bench(&[]);
    let r = &r;
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

/// `--spam-no-ban`: the target never bans, so the spammer keeps its first identity and the
/// target validates (and rejects) far more of its messages than the 17 a banning target takes
/// from one identity.
#[test]
fn a_target_that_never_bans_rejects_the_whole_flood_of_one_identity() {
    let r = run_bench(&["--spam-no-ban"]);
    let spam = &r["spam"];
    assert_eq!(spam["no_ban"], true, "{spam}");
    assert_eq!(spam["identities"], 1, "never banned: {spam}");
    assert_eq!(spam["refused"], 0, "{spam}");
    let spam_s =
        60.0 * spam["identities"].as_f64().unwrap() / spam["identities_per_min"].as_f64().unwrap();
    let rejects = spam["target_rejects_per_s"].as_f64().unwrap() * spam_s;
    assert!(
        rejects > 17.0,
        "{rejects:.0} REJECTs from one identity in {spam_s:.2} s: {spam}"
    );
    assert_eq!(spam["delivered_fraction"], 1.0, "{spam}");
}

/// `--spam-raw --spam-no-ban`: the spammer is a bare gossipsub swarm and the target never bans
/// it, so one identity floods for the whole phase; the target rejects what it sends (every
/// REJECT comes from a message the spammer sent, and far more than the 17 that would get it
/// banned arrive), and honest blocks all still arrive.
#[test]
fn a_raw_gossipsub_spammer_floods_a_target_that_never_bans() {
    let r = run_bench(&["--spam-raw", "--spam-no-ban"]);
    let spam = &r["spam"];
    assert_eq!(spam["raw"], true, "{spam}");
    assert_eq!(spam["no_ban"], true, "{spam}");
    assert_eq!(spam["identities"], 1, "never banned: {spam}");
    assert_eq!(spam["refused"], 0, "{spam}");
    let rejects_per_s = spam["target_rejects_per_s"].as_f64().unwrap();
    let sent_per_s = spam["sent_per_s"].as_f64().unwrap();
    assert!(rejects_per_s > 0.0, "{spam}");
    // Both are over the same spam wall time. The target cannot reject more than was sent, and
    // with no ban (and no pool overflow at this rate) what was sent reaches validation: the
    // half leaves room for anything lost in flight, never for a flood that mostly vanishes.
    assert!(
        rejects_per_s <= sent_per_s * 1.001 && rejects_per_s >= sent_per_s / 2.0,
        "{rejects_per_s:.1} REJECT/s from {sent_per_s:.1} sent/s: {spam}"
    );
    let spam_s =
        60.0 * spam["identities"].as_f64().unwrap() / spam["identities_per_min"].as_f64().unwrap();
    let rejects = rejects_per_s * spam_s;
    assert!(
        rejects > 17.0,
        "{rejects:.0} REJECTs from one identity in {spam_s:.2} s: {spam}"
    );
    assert_eq!(spam["delivered_fraction"], 1.0, "{spam}");
    assert_eq!(spam["target_loaded"]["samples"], 3, "{spam}");
}

/// A raw flood at 5,000/s into a target that never bans: the target checks at most its
/// per-peer budget of the spammer's messages a second
/// (`op_p2p_node::validation_pool::PEER_CHECKS_PER_SECOND`) and IGNOREs the rest unvalidated;
/// honest blocks all still arrive. With the validation pool (the default) and without it.
#[test]
fn a_never_banning_target_checks_at_most_its_peer_budget_of_a_flood() {
    budget_holds(&[]);
}

#[test]
fn a_never_banning_target_without_workers_checks_at_most_its_peer_budget_of_a_flood() {
    budget_holds(&[("OP_P2P_BENCH_VALIDATION_WORKERS", "0")]);
}

fn budget_holds(envs: &[(&str, &str)]) {
    let budget = f64::from(op_p2p_node::validation_pool::PEER_CHECKS_PER_SECOND);
    let r = run_bench_with("5000", &["--spam-raw", "--spam-no-ban"], envs);
    let spam = &r["spam"];
    assert_eq!(spam["identities"], 1, "never banned: {spam}");
    let spam_s =
        60.0 * spam["identities"].as_f64().unwrap() / spam["identities_per_min"].as_f64().unwrap();
    let per_s = |k: &str| spam[k].as_f64().unwrap();
    let rejects = per_s("target_rejects_per_s") * spam_s;
    let over = per_s("target_over_budget_per_s") * spam_s;
    assert!(
        rejects > 17.0,
        "the flood is checked up to its budget: {spam}"
    );
    // The budget counts in whole seconds of the target's clock, and a loaded target may take a
    // second or two longer than the spammer to work through what arrived, so the bound is
    // loose: at 10× the budget, at most half the flood is checked (without the budget, all of
    // it is: 6,510 REJECTs in 1.3 s at 5,000 sent a second when this was written).
    let sent = per_s("sent_per_s") * spam_s;
    assert!(
        rejects <= sent / 2.0,
        "{rejects:.0} REJECTs of {sent:.0} sent in {spam_s:.2} s, budget {budget}/s: {spam}"
    );
    assert!(over > 0.0, "the rest is IGNOREd unvalidated: {spam}");
    // ...and those IGNOREs are verdicts too (`op_p2p_gossip_verdicts_total`, reason
    // `peer_over_budget`), read from the same scrapes.
    assert!(
        per_s("target_ignores_per_s") * spam_s >= over,
        "over-budget IGNOREs are in the verdict counts: {spam}"
    );
    assert_eq!(spam["delivered_fraction"], 1.0, "{spam}");
}

/// `--spam-raw` at a target that bans: the raw spammer's identity is banned by its 17th
/// REJECT like a node's would be, and it comes back with fresh ones (on loopback, never
/// IP-banned); honest blocks all arrive.
#[test]
fn a_raw_gossipsub_spammer_is_banned_and_changes_identity() {
    let r = run_bench(&["--spam-raw"]);
    let spam = &r["spam"];
    assert_eq!(spam["raw"], true, "{spam}");
    assert_eq!(spam["no_ban"], false, "{spam}");
    let ip: std::net::IpAddr = spam["spammer_ip"].as_str().unwrap().parse().unwrap();
    assert!(ip.is_loopback(), "{spam}");
    assert!(
        spam["identities"].as_u64().unwrap() > 1 || spam["refused"].as_u64().unwrap() > 0,
        "banned at least once: {spam}"
    );
    assert!(
        spam["target_rejects_per_s"].as_f64().unwrap() > 0.0,
        "{spam}"
    );
    assert_eq!(spam["delivered_fraction"], 1.0, "{spam}");
}

/// `--compare PATH --rounds 2`: each scenario runs on op-p2p nodes and on nodes started as
/// `PATH <index>`, the external-child protocol a kona-p2p child (`bench/kona`) speaks. The
/// async-std bench node takes exactly `<index>`, so it stands in for that program here; the
/// second round starts with the other implementation.
#[test]
fn compare_runs_each_scenario_on_both_implementations_alternating() {
    let out = Command::new(env!("CARGO_BIN_EXE_op-p2p"))
        .args(TINY)
        .args(["--rounds", "2", "--json", "--compare"])
        .arg(env!("CARGO_BIN_EXE_op-p2p-bench-node-async-std"))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start op-p2p bench");
    let out = wait_bounded(out);
    let v: serde_json::Value = serde_json::from_slice(&out).expect("JSON output");
    let runs = v.as_array().expect("an array of results");
    let order: Vec<&str> = runs
        .iter()
        .map(|r| r["implementation"].as_str().unwrap())
        .collect();
    assert_eq!(
        order,
        ["op-p2p", "node-async-std", "node-async-std", "op-p2p"]
    );
    for r in runs {
        assert_eq!(r["published"], 3, "{r}");
        assert_eq!(r["delivered_fraction"], 1.0, "{r}");
        assert_eq!(r["latency"]["samples"], 6, "{r}");
        assert!(r["gossip_msg_bytes"].as_f64().unwrap() > 0.0, "{r}");
        let (rss, pss) = (
            r["rss_kb_mean"].as_f64().unwrap(),
            r["pss_kb_mean"].as_f64().unwrap(),
        );
        assert!(
            pss > 0.0 && pss < rss,
            "the nodes share their binary's pages: {r}"
        );
    }
}

/// The kona-p2p bench child (`bench/kona`): `$OP_P2P_KONA_CHILD`, which `scripts/test.sh` sets
/// after building it.
fn kona_child() -> std::path::PathBuf {
    let path = std::env::var_os("OP_P2P_KONA_CHILD").map(std::path::PathBuf::from);
    match path {
        Some(p) if p.is_file() => p,
        _ => panic!(
            "the kona-p2p bench child is not built: run ./scripts/test.sh, or build \
             bench/kona (cargo build --manifest-path bench/kona/Cargo.toml) and set \
             OP_P2P_KONA_CHILD to the binary"
        ),
    }
}

/// Interop with kona-p2p 0.1.2 (the gossip driver of kona-node), in one mesh: `--mix` runs
/// the scenario with kona on the odd nodes and op-p2p publishing, then with kona on the even
/// nodes, publishing. Every block reaches every node both times: kona accepts what op-p2p
/// publishes and forwards, and op-p2p what kona does.
#[test]
fn op_p2p_and_kona_nodes_share_a_mesh_and_every_block_reaches_every_node() {
    let out = Command::new(env!("CARGO_BIN_EXE_op-p2p"))
        .args(TINY)
        .args(["--json", "--mix"])
        .arg(kona_child())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start op-p2p bench");
    let v: serde_json::Value = serde_json::from_slice(&wait_bounded(out)).expect("JSON output");
    let runs = v.as_array().expect("an array of results");
    let order: Vec<&str> = runs
        .iter()
        .map(|r| r["implementation"].as_str().unwrap())
        .collect();
    assert_eq!(order, ["op-p2p", "op-p2p+kona", "kona+op-p2p"]);
    for r in runs {
        assert_eq!(r["published"], 3, "{r}");
        assert_eq!(r["delivered_fraction"], 1.0, "{r}");
        assert_eq!(r["latency"]["samples"], 6, "{r}");
    }
}

/// Waits at most 240 s for `child` (killing it past that), asserts success, returns stdout.
fn wait_bounded(mut child: std::process::Child) -> Vec<u8> {
    let deadline = std::time::Instant::now() + Duration::from_secs(240);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("op-p2p bench did not finish in 240 s");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let out = child.wait_with_output().expect("output");
    assert!(status.success(), "bench failed: {status}");
    out.stdout
}
