//! The committed example gossip set (`examples/gossip/`) is what our generator makes, byte for
//! byte, and replaying it through the core gives op-node's verdict for every case.

use op_p2p_cli::tools::examples;
use op_p2p_cli::tools::verdicts::{VerdictsParams, replay};
use op_p2p_tests::repo_root;

#[test]
fn committed_examples_are_regenerated_exactly() {
    let dir = repo_root().join("examples/gossip");
    let (manifest, files) = examples::generate();
    for (name, data) in &files {
        let committed = std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            &committed, data,
            "{name} differs from the generator's output; run `op-p2p example-gossip`"
        );
    }
    let committed: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(committed, serde_json::to_value(&manifest).unwrap());
}

#[test]
fn replaying_the_examples_gives_the_expected_verdicts() {
    let dir = repo_root().join("examples/gossip");
    let (manifest, _) = examples::generate();
    let params = VerdictsParams {
        chain_id: manifest.chain_id,
        unsafe_signer: manifest.unsafe_signer,
        now: manifest.now,
        forks: examples::forks(),
        block_time: 2,
    };
    let mut results = Vec::new();
    let summary = replay(&params, &dir.join("manifest.json"), |r| {
        results.push(r.clone())
    })
    .unwrap();
    assert_eq!(results.len(), manifest.cases.len());
    for (case, got) in manifest.cases.iter().zip(&results) {
        assert_eq!(
            (got.verdict.as_str(), got.reason.as_str()),
            (case.expect_verdict.as_str(), case.expect_reason.as_str()),
            "{}: {}",
            case.file,
            case.note
        );
        assert_eq!(got.message_id.len(), 42);
    }
    assert_eq!(summary.total, results.len());
    assert_eq!(
        summary.accept + summary.reject + summary.ignore,
        summary.total
    );
    // Every verdict kind and a good spread of reasons are exercised.
    assert!(summary.accept >= 10 && summary.reject >= 10 && summary.ignore >= 1);
    // The same v4 block on the v3 and v4 topics has different message ids (topic-bound ids).
    let v4 = results.iter().find(|r| r.file == "004.bin").unwrap();
    let on_v3 = results.iter().find(|r| r.file == "006.bin").unwrap();
    assert_ne!(v4.message_id, on_v3.message_id);
}
