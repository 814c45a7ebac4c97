//! `--log.level` and `--log.format` read from `OP_P2P_LOG_LEVEL` and `OP_P2P_LOG_FORMAT`. The
//! only test in this binary, so setting the process environment races with nothing.

use clap::Parser;
use op_p2p_cli::logging::{LogArgs, LogFormat, LogLevel};

#[derive(Debug, Parser)]
struct Wrap {
    #[command(flatten)]
    log: LogArgs,
}

#[test]
fn log_environment_variables_set_the_flags_and_flags_win() {
    // SAFETY: this test binary runs this one test; no other thread reads the environment.
    unsafe {
        std::env::set_var("OP_P2P_LOG_LEVEL", "debug");
        std::env::set_var("OP_P2P_LOG_FORMAT", "logfmt");
    }
    let from_env = Wrap::try_parse_from(["x"]).unwrap().log;
    assert_eq!(
        (from_env.level, from_env.format),
        (Some(LogLevel::Debug), LogFormat::Logfmt)
    );
    let flags = Wrap::try_parse_from(["x", "--log.level=crit", "--log.format=json"])
        .unwrap()
        .log;
    assert_eq!(
        (flags.level, flags.format),
        (Some(LogLevel::Crit), LogFormat::Json)
    );
    // SAFETY: as above.
    unsafe { std::env::set_var("OP_P2P_LOG_LEVEL", "loud") };
    assert!(
        Wrap::try_parse_from(["x"]).is_err(),
        "a bad value is refused"
    );
}
