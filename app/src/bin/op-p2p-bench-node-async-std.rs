//! One async-std node of `op-p2p bench`: `op-p2p-bench-node-async-std INDEX`. Commands on
//! stdin, reports on stdout (see `op_p2p_cli::bench`); exits when stdin closes.

use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(index) = std::env::args().nth(1).and_then(|a| a.parse::<u64>().ok()) else {
        eprintln!("usage: op-p2p-bench-node-async-std INDEX");
        return ExitCode::FAILURE;
    };
    let r = async_std::task::block_on(op_p2p_cli::bench::child_main(
        op_p2p_async_std::AsyncStdRuntime,
        index,
        |config| {
            Box::pin(async move {
                op_p2p_async_std::spawn(config, Default::default())
                    .await
                    .map_err(|e| e.to_string())
            })
        },
    ));
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench node {index}: {e}");
            ExitCode::FAILURE
        }
    }
}
