//! Replays the committed fuzz inputs (`fuzz/corpus/<target>/` seeds and minimised crashes in
//! `fuzz/regressions/<target>/`) through the same target bodies the fuzzer runs
//! (`op_p2p_core::fuzzing`), so a fixed crash stays fixed under plain `cargo test`.

use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use op_p2p_core::fuzzing::{TARGETS, target};
use op_p2p_tests::repo_root;

/// Seed corpora stay small enough to commit (the fuzz README's rule).
const MAX_CORPUS_BYTES: u64 = 2 * 1024 * 1024;

/// The files of every `<dir>/<target>/`, failing on a directory named after no target.
fn inputs(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return out;
    };
    for entry in entries {
        let path = entry.expect("read dir entry").path();
        if !path.is_dir() {
            continue;
        }
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            target(&name).is_some(),
            "{path:?} is named after no fuzz target"
        );
        for file in fs::read_dir(&path).expect("read target dir") {
            let file = file.expect("read file entry").path();
            if file.is_file() {
                out.push((name.clone(), file));
            }
        }
    }
    out.sort();
    out
}

/// Feeds every input to its target, collecting all failures before reporting them.
fn replay(files: &[(String, PathBuf)]) -> Vec<String> {
    replay_with(files, |name, data| {
        target(name).expect("checked by inputs()")(data)
    })
}

fn replay_with(files: &[(String, PathBuf)], run: impl Fn(&str, &[u8])) -> Vec<String> {
    let mut failures = Vec::new();
    for (name, file) in files {
        let data = fs::read(file).expect("read input");
        if let Err(e) = catch_unwind(AssertUnwindSafe(|| run(name, &data))) {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failures.push(format!("{}: {msg}", file.display()));
        }
    }
    failures
}

#[test]
fn every_target_has_a_small_seed_corpus_that_replays_cleanly() {
    let dir = repo_root().join("fuzz/corpus");
    let files = inputs(&dir);
    for (name, _) in TARGETS {
        let n = files.iter().filter(|(t, _)| t == name).count();
        assert!(
            n >= 3,
            "fuzz/corpus/{name} has {n} seeds; run the seed generator"
        );
    }
    let bytes: u64 = files
        .iter()
        .map(|(_, f)| fs::metadata(f).expect("stat").len())
        .sum();
    assert!(bytes < MAX_CORPUS_BYTES, "seed corpus is {bytes} bytes");
    let failures = replay(&files);
    assert!(
        failures.is_empty(),
        "seed inputs fail:\n{}",
        failures.join("\n")
    );
}

#[test]
fn minimised_crashes_stay_fixed() {
    let files = inputs(&repo_root().join("fuzz/regressions"));
    let failures = replay(&files);
    assert!(
        failures.is_empty(),
        "regressions fail again:\n{}",
        failures.join("\n")
    );
}

#[test]
fn replay_reports_every_failing_input_and_refuses_unknown_dirs() {
    let dir = std::env::temp_dir().join(format!("op-p2p-fuzz-replay-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join("message_id")).unwrap();
    fs::write(dir.join("message_id/a_ok"), b"\x01ab").unwrap();
    fs::write(dir.join("message_id/b_boom"), b"boom").unwrap();
    fs::write(dir.join("message_id/c_boom"), b"boom").unwrap();
    let files = inputs(&dir);
    assert_eq!(files.len(), 3);
    // The real target passes all three; a target that panics on "boom" fails two, both named.
    assert!(replay(&files).is_empty());
    let failures = replay_with(&files, |_, data| assert_ne!(data, b"boom", "boom input"));
    assert_eq!(failures.len(), 2, "{failures:?}");
    assert!(failures[0].contains("b_boom") && failures[0].contains("boom input"));
    assert!(failures[1].contains("c_boom"));
    // A directory named after no target is refused rather than skipped.
    fs::create_dir_all(dir.join("no_such_target")).unwrap();
    assert!(catch_unwind(|| inputs(&dir)).is_err());
    fs::remove_dir_all(&dir).unwrap();
}
