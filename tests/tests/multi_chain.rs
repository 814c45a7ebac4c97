//! Many chains, one process, for embedders (issue 16): `op_p2p_node::host::Host` runs several
//! chains' nodes on one runtime behind one RPC listener and one metrics listener, on both
//! runtimes: `/chain/<id or name>` reaches that chain's admin API, a chain's own RPC port
//! serves it alone, `/metrics` labels every series with `chain_id` (one header per family),
//! `/healthz` lists every chain with the worst status on top; a duplicate chain id is refused
//! and a chain that fails to start or stops is listed as such.

use op_p2p_node::SpawnError;
use op_p2p_node::host::{HostConfig, HostError};
use op_p2p_tests::{HttpRequest, Rt, dev_config, http_get, local0, on_both_runtimes, shutdown};
use serde_json::{Value, json};

fn on_chain(chain_id: u64, i: u64) -> op_p2p_node::NodeConfig {
    let mut c = dev_config(i);
    c.core.validator.chain_id = chain_id;
    c
}

async fn call(addr: std::net::SocketAddr, path: &str, method: &str) -> (u16, Value) {
    let r = HttpRequest::json_rpc(method, json!([]))
        .path(path)
        .send(addr)
        .await;
    let v = if r.status == 200 {
        r.json()
    } else {
        Value::Null
    };
    (r.status, v)
}

async fn one_host_serves_several_chains(rt: Rt) {
    let metrics_at = "127.0.0.2:0".parse().unwrap();
    let host = rt
        .start_host(HostConfig {
            rpc_addr: Some(local0()),
            metrics_addr: Some(metrics_at),
            ..Default::default()
        })
        .await;
    let rpc = host.rpc_addr().expect("rpc");
    let metrics = host.metrics_addr().expect("metrics");
    assert_ne!(rpc, metrics);
    let a = rt.spawn_chain(&host, "a", on_chain(901, 1)).await.unwrap();
    // b also has its own RPC port, as op-node tooling expects one endpoint per node.
    let mut b_config = on_chain(902, 2);
    b_config.rpc_addr = Some(local0());
    let b = rt.spawn_chain(&host, "b", b_config).await.unwrap();
    // A second chain 901 is refused; a chain that cannot listen is listed as failed.
    match rt.spawn_chain(&host, "a-again", on_chain(901, 3)).await {
        Err(SpawnError::Host(HostError::DuplicateChain {
            chain_id: 901,
            other,
            ..
        })) => assert_eq!(other, "a"),
        other => panic!("{other:?}"),
    }
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut c = on_chain(903, 4);
    c.tcp_port = taken.local_addr().unwrap().port();
    assert!(matches!(
        rt.spawn_chain(&host, "c", c).await,
        Err(SpawnError::Listen { .. })
    ));

    // /chain/<id> and /chain/<name> reach the right chain; b's own port serves b alone.
    let (s, v) = call(rpc, "/chain/901", "opp2p_self").await;
    assert_eq!(
        (s, v["result"]["peerID"].clone()),
        (200, json!(a.peer_id().to_string()))
    );
    let (_, v) = call(rpc, "/chain/b", "opp2p_self").await;
    assert_eq!(v["result"]["peerID"], json!(b.peer_id().to_string()));
    let (_, v) = call(b.rpc_addr().expect("b's own port"), "/", "opp2p_self").await;
    assert_eq!(v["result"]["peerID"], json!(b.peer_id().to_string()));
    assert_eq!(call(rpc, "/chain/999", "opp2p_self").await.0, 404);
    assert_eq!(
        call(rpc, "/chain/903", "opp2p_self").await.0,
        503,
        "c failed"
    );
    assert_eq!(call(rpc, "/", "opp2p_self").await.0, 404, "no chain at /");
    assert_eq!(http_get(rpc, "/chain/901").await.status, 405);
    // The metrics listener answers /metrics and /healthz only.
    assert_eq!(call(metrics, "/chain/901", "opp2p_self").await.0, 404);
    assert_eq!(http_get(metrics, "/chain/901/healthz").await.status, 404);

    // Metrics: both running chains, labelled, one header per family, on both listeners.
    for at in [rpc, metrics] {
        let m = http_get(at, "/metrics").await;
        assert_eq!(m.status, 200);
        let t = m.text();
        for id in [901, 902] {
            assert!(
                t.contains(&format!("op_p2p_p2p_peer_count{{chain_id=\"{id}\"}} 0")),
                "{t}"
            );
        }
        assert!(!t.contains("chain_id=\"903\""));
        let types: Vec<&str> = t.lines().filter(|l| l.starts_with("# TYPE ")).collect();
        let unique: std::collections::BTreeSet<&&str> = types.iter().collect();
        assert_eq!(types.len(), unique.len(), "one header per family");
        assert!(t.ends_with("# EOF\n") && t.matches("# EOF").count() == 1);
    }

    // Health: per chain and overall (degraded: c failed).
    let h = http_get(rpc, "/chain/901/healthz").await.json();
    assert_eq!(
        h,
        json!({"name": "a", "chain_id": 901, "status": "ok", "reasons": []})
    );
    let h = http_get(metrics, "/healthz").await.json();
    assert_eq!(h["status"], "degraded");
    let listed: Vec<(Value, Value)> = h["chains"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].clone(), c["status"].clone()))
        .collect();
    assert_eq!(
        listed,
        [
            (json!("a"), json!("ok")),
            (json!("b"), json!("ok")),
            (json!("c"), json!("failed")),
        ]
    );

    // A stopped chain is listed as stopped and its path answers 503; the others go on.
    shutdown(a).await;
    let h = http_get(rpc, "/healthz").await.json();
    assert_eq!(h["chains"][0]["status"], "stopped", "{h}");
    assert_eq!(call(rpc, "/chain/901", "opp2p_self").await.0, 503);
    assert_eq!(call(rpc, "/chain/902", "opp2p_peerStats").await.0, 200);
    shutdown(b).await;
    host.shutdown().await;
    drop(taken);
}

on_both_runtimes!(one_host_serves_several_chains);
