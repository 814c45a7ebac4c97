//! `op-p2p bench-chains`: the cost of an added chain (issue 16). For each count N it runs N
//! idle chains in one `op-p2p node --config` process, then N single-chain `op-p2p node`
//! processes, all on loopback without discovery, and reports resident memory (`VmRSS`) after
//! they settle and the CPU time they use while idle. Linux only (`/proc`).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a node process may take to log "node running".
pub const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Why the benchmark could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchChainsError {
    /// A process could not be started or a file written.
    #[error("io")]
    Io(#[from] std::io::Error),
    /// A node process did not log "node running" in time (or exited first).
    #[error("a node process did not start within {START_TIMEOUT:?}")]
    Start,
    /// `/proc/<pid>` could not be read.
    #[error("cannot read /proc/{0}")]
    Proc(u32),
}

/// One measurement: N chains one way.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// Chains.
    pub chains: usize,
    /// Processes they ran in (1, or N).
    pub processes: usize,
    /// Summed resident memory, KiB.
    pub rss_kib: u64,
    /// Summed CPU time over the idle window, in percent of one core.
    pub idle_cpu_pct: f64,
}

/// Node processes killed when dropped.
struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Starts `cmd` with info logs on stderr and waits for its "node running" line.
fn start(mut cmd: Command) -> Result<Child, BenchChainsError> {
    let mut child = cmd
        .env("OP_P2P_LOG", "info")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let stderr = child.stderr.take().ok_or(BenchChainsError::Start)?;
    let (tx, rx) = std::sync::mpsc::channel();
    // Reads every line (a full pipe would block the node), reporting the running line.
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { return };
            if line.contains("node running") {
                let _ = tx.send(());
            }
        }
    });
    match rx.recv_timeout(START_TIMEOUT) {
        Ok(()) => Ok(child),
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            Err(BenchChainsError::Start)
        }
    }
}

/// `VmRSS` of `pid`, KiB.
fn rss_kib(pid: u32) -> Result<u64, BenchChainsError> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .ok_or(BenchChainsError::Proc(pid))
}

/// User + system CPU time of `pid`, in clock ticks (100 per second on Linux).
fn cpu_ticks(pid: u32) -> Result<u64, BenchChainsError> {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let rest = s.rsplit_once(')')?.1.to_owned();
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
        })
        .ok_or(BenchChainsError::Proc(pid))
}

/// The flags every chain shares: loopback, an OS-picked port, no discovery, no RPC.
const IDLE: [&str; 5] = [
    "--p2p.listen.ip=127.0.0.1",
    "--p2p.listen.tcp=0",
    "--p2p.no-discovery",
    "--rpc.disabled",
    "--log.level=info",
];

fn signer() -> String {
    op_p2p_core::testkit::dev_key(0).address().to_string()
}

/// Measures the running `children` after `settle`, CPU over `window`.
fn measure(
    chains: usize,
    children: &Children,
    settle: Duration,
    window: Duration,
) -> Result<Sample, BenchChainsError> {
    std::thread::sleep(settle);
    let pids: Vec<u32> = children.0.iter().map(Child::id).collect();
    let before: u64 = pids.iter().map(|p| cpu_ticks(*p)).sum::<Result<_, _>>()?;
    let t = Instant::now();
    std::thread::sleep(window);
    let after: u64 = pids.iter().map(|p| cpu_ticks(*p)).sum::<Result<_, _>>()?;
    let secs = t.elapsed().as_secs_f64();
    let rss_kib = pids.iter().map(|p| rss_kib(*p)).sum::<Result<_, _>>()?;
    Ok(Sample {
        chains,
        processes: pids.len(),
        rss_kib,
        idle_cpu_pct: (after - before) as f64 / 100.0 / secs * 100.0,
    })
}

/// N chains in one process (`--config` with N tables, chain ids 901…).
pub fn one_process(
    exe: &Path,
    dir: &Path,
    n: usize,
    settle: Duration,
    window: Duration,
) -> Result<Sample, BenchChainsError> {
    let mut toml = format!("\"unsafe-signer\" = \"{}\"\n", signer());
    for i in 0..n {
        toml.push_str(&format!("[chain.c{i}]\n\"chain-id\" = {}\n", 901 + i));
    }
    let file: PathBuf = dir.join(format!("chains-{n}.toml"));
    std::fs::write(&file, toml)?;
    let mut cmd = Command::new(exe);
    cmd.arg("node").arg("--config").arg(&file).args(IDLE);
    let children = Children(vec![start(cmd)?]);
    measure(n, &children, settle, window)
}

/// N single-chain processes (chain ids 901…).
pub fn many_processes(
    exe: &Path,
    n: usize,
    settle: Duration,
    window: Duration,
) -> Result<Sample, BenchChainsError> {
    let mut children = Children(Vec::with_capacity(n));
    for i in 0..n {
        let mut cmd = Command::new(exe);
        cmd.arg("node")
            .arg(format!("--chain-id={}", 901 + i))
            .arg(format!("--unsafe-signer={}", signer()))
            .args(IDLE);
        children.0.push(start(cmd)?);
    }
    measure(n, &children, settle, window)
}

/// The markdown table of `samples` (one process and N processes per count, counts rising):
/// total RSS, RSS per chain added over the first count, idle CPU.
pub fn table(samples: &[(Sample, Sample)]) -> String {
    let mut out = String::from(
        "| chains | one process: RSS | per added chain | N processes: RSS | per added chain | idle CPU, one / N processes |\n\
         |---:|---:|---:|---:|---:|---:|\n",
    );
    let Some((first_one, first_many)) = samples.first().copied() else {
        return out;
    };
    let mib = |k: u64| k as f64 / 1024.0;
    let added = |s: &Sample, first: &Sample| {
        if s.chains > first.chains {
            let per =
                s.rss_kib.saturating_sub(first.rss_kib) as f64 / (s.chains - first.chains) as f64;
            format!("{per:.0} KiB")
        } else {
            "—".to_owned()
        }
    };
    for (one, many) in samples {
        out.push_str(&format!(
            "| {} | {:.1} MiB | {} | {:.1} MiB | {} | {:.1}% / {:.1}% |\n",
            one.chains,
            mib(one.rss_kib),
            added(one, &first_one),
            mib(many.rss_kib),
            added(many, &first_many),
            one.idle_cpu_pct,
            many.idle_cpu_pct,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_shows_the_cost_of_each_added_chain() {
        let s = |chains, processes, rss_kib| Sample {
            chains,
            processes,
            rss_kib,
            idle_cpu_pct: 0.5,
        };
        let t = table(&[
            (s(1, 1, 20_000), s(1, 1, 20_000)),
            (s(5, 1, 20_400), s(5, 5, 100_000)),
        ]);
        assert!(
            t.contains("| 1 | 19.5 MiB | — | 19.5 MiB | — | 0.5% / 0.5% |"),
            "{t}"
        );
        assert!(
            t.contains("| 5 | 19.9 MiB | 100 KiB | 97.7 MiB | 20000 KiB |"),
            "{t}"
        );
    }
}
