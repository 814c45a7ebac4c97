//! The data dir's lock against another process. In a test binary of its own: `flock(1)` is
//! started with fork+exec, and a fork taken while another test of the same process holds a data
//! dir would carry that lock's descriptor into the child for a moment (until exec closes it),
//! which made an unrelated test see its own directory in use.

use std::fs;

use op_p2p_node::datadir::{DataDir, DataDirError, LOCK_FILE};

/// Another process, not just another handle in this one: the lock is the OS's.
#[cfg(unix)]
#[test]
fn a_lock_held_by_another_process_refuses_the_open() {
    let tmp = tempfile::tempdir().unwrap();
    let lock = tmp.path().join(LOCK_FILE);
    fs::write(&lock, b"").unwrap();
    // flock(1) holds the lock itself (`-o`: not passed to `sleep`) while `sleep` runs;
    // killing it releases the lock, and the orphaned `sleep` ends by itself.
    let mut holder = match std::process::Command::new("flock")
        .args(["-o", "-x"])
        .arg(&lock)
        .args(["sleep", "20"])
        .spawn()
    {
        Ok(c) => c,
        Err(e) => panic!("flock(1) from util-linux is needed for this test: {e}"),
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut refused = false;
    while std::time::Instant::now() < deadline {
        if matches!(DataDir::open(tmp.path()), Err(DataDirError::InUse { .. })) {
            refused = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let _ = holder.kill();
    let _ = holder.wait();
    assert!(refused, "the other process's lock was not seen");
    // flock's child closes its copy of the lock's descriptor right after the fork; a kill
    // in between leaves it open for a moment, so allow a bounded wait.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match DataDir::open(tmp.path()) {
            Ok(_) => break,
            Err(DataDirError::InUse { .. }) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(20))
            }
            Err(e) => panic!("not free once the other process is gone: {e}"),
        }
    }
}
