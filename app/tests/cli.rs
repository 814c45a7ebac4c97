//! The `op-p2p` binary end to end: `verdicts` output format and its errors.

use std::path::Path;
use std::process::Command;

fn op_p2p() -> Command {
    Command::new(env!("CARGO_BIN_EXE_op-p2p"))
}

fn examples_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/gossip")
}

fn verdicts(manifest: &Path) -> std::process::Output {
    let m = op_p2p_cli::tools::examples::generate().0;
    op_p2p()
        .args(["verdicts", "--chain-id", "901", "--unsafe-signer"])
        .arg(m.unsafe_signer.to_string())
        .args([
            "--now",
            &m.now.to_string(),
            "--canyon-time",
            "0",
            "--ecotone-time",
            "0",
        ])
        .args([
            "--isthmus-time",
            "0",
            "--jovian-time",
            &m.jovian_time.to_string(),
            "--manifest",
        ])
        .arg(manifest)
        .output()
        .unwrap()
}

#[test]
fn verdicts_prints_one_json_line_per_case_and_a_summary() {
    let out = verdicts(&examples_dir().join("manifest.json"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let cases = lines.len() - 1;
    for (i, line) in lines[..cases].iter().enumerate() {
        let obj = line.as_object().unwrap();
        let keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        assert_eq!(keys.len(), 5, "{line}");
        for k in ["index", "file", "verdict", "reason", "message_id"] {
            assert!(obj.contains_key(k), "{k} missing in {line}");
        }
        assert_eq!(obj["index"], i);
        assert!(["accept", "reject", "ignore"].contains(&obj["verdict"].as_str().unwrap()));
        assert!(obj["message_id"].as_str().unwrap().starts_with("0x"));
    }
    let summary = &lines[cases]["summary"];
    assert_eq!(summary["total"], cases);
    assert_eq!(lines[0]["verdict"], "accept");
}

#[test]
fn bad_inputs_give_clear_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &str, &str); 5] = [
        ("missing.json", "", "cannot read manifest"),
        ("bad.json", "{not json", "invalid manifest"),
        (
            "shape.json",
            r#"{"cases": [{"file": 3}]}"#,
            "invalid manifest",
        ),
        (
            "nofile.json",
            r#"{"cases": [{"file": "nope.bin", "topic": "/optimism/901/3/blocks"}]}"#,
            "case 0: cannot read",
        ),
        (
            "abs.json",
            r#"{"cases": [{"file": "/etc/hostname", "topic": "/optimism/901/3/blocks"}]}"#,
            "relative",
        ),
    ];
    for (name, body, want) in cases {
        let path = dir.path().join(name);
        if !body.is_empty() {
            std::fs::write(&path, body).unwrap();
        }
        let out = verdicts(&path);
        assert_eq!(out.status.code(), Some(1), "{name}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{name}: {err}");
        assert!(!err.contains("panicked"), "{name}: {err}");
    }
    // A bad flag is a usage error.
    let out = op_p2p()
        .args(["verdicts", "--chain-id", "x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn garbage_message_files_get_verdicts() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.bin"), b"").unwrap();
    std::fs::write(dir.path().join("b.bin"), [0xffu8; 64]).unwrap();
    std::fs::write(
        dir.path().join("m.json"),
        r#"{"cases": [{"file": "a.bin", "topic": "/optimism/901/3/blocks"},
                      {"file": "b.bin", "topic": "/optimism/901/9/blocks", "extra": 1}]}"#,
    )
    .unwrap();
    let out = verdicts(&dir.path().join("m.json"));
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["reason"], "snappy_length_unreadable");
    assert_eq!(lines[1]["reason"], "unknown_topic");
    assert_eq!(lines[2]["summary"]["reject"], 2);
}
