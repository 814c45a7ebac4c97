//! `--log.level` and `--log.format`, op-node's log flags (`op-service/log`), and the tracing
//! subscriber they set up. Logs go to stderr; stdout is the commands' output.
//!
//! - Levels are op-node's: `trace`, `debug`, `info`, `warn`, `error`, `crit` (any case; also
//!   its aliases `trce`, `dbug`, `eror`).
//!   tracing has no level above error, so `crit` shows errors only. Without `--log.level` the
//!   filter is `OP_P2P_LOG` (a tracing `EnvFilter` directive list) if set, else `warn`. At
//!   `info` and `warn` the discv5 crate's own logs stay at `error` (it warns about every
//!   unreachable stranger on the public DHT).
//! - Formats, with op-node's meanings (`op-service/log/cli.go`): `text` and `terminal`
//!   (human-readable lines, tracing's layout, coloured when stderr is a terminal and `NO_COLOR`
//!   is unset), `logfmt` (`t=… lvl=info msg="…" key=value …`, one record per line) and `json`
//!   (one object per line: `t`, `lvl`, `msg`, `target`, then the event's fields). The record
//!   keys `t`, `lvl`, `msg` are go-ethereum's log handler's, which op-node uses. Both are a
//!   small formatter here rather than another crate: it keeps op-node's key names exactly,
//!   which `tracing-subscriber`'s JSON layer (`level`, `fields.message`) does not.
//!   ⚠ op-node's `text` turns into logfmt when its output is not a terminal; ours stays the
//!   human-readable layout (the default, which scripts and tests already read): ask for
//!   `logfmt` explicitly.

use std::fmt::Write as _;

use clap::{Args, ValueEnum};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The filter used without `--log.level` or `OP_P2P_LOG`.
pub const DEFAULT_FILTER: &str = "warn,discv5=error";

/// op-node's log levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    /// Everything.
    Trace,
    /// Debug and above.
    Debug,
    /// Info and above.
    Info,
    /// Warnings and errors.
    Warn,
    /// Errors.
    Error,
    /// op-node's critical level; errors here (tracing has nothing above error).
    Crit,
}

impl LogLevel {
    /// The tracing filter directives for this level.
    pub fn filter(self) -> &'static str {
        match self {
            Self::Trace => "trace",
            Self::Debug => "debug",
            Self::Info => "info,discv5=error",
            Self::Warn => "warn,discv5=error",
            Self::Error | Self::Crit => "error",
        }
    }
}

/// Parses an op-node level name, in any case.
pub fn parse_level(s: &str) -> Result<LogLevel, String> {
    Ok(match s.to_ascii_lowercase().as_str() {
        "trace" | "trce" => LogLevel::Trace,
        "debug" | "dbug" => LogLevel::Debug,
        "info" => LogLevel::Info,
        "warn" => LogLevel::Warn,
        "error" | "eror" => LogLevel::Error,
        "crit" => LogLevel::Crit,
        _ => {
            return Err(format!(
                "unknown log level {:?}; expected trace, debug, info, warn, error or crit",
                s.chars().take(40).collect::<String>()
            ));
        }
    })
}

/// How log records are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines (the default).
    Text,
    /// Human-readable lines (op-node's coloured terminal format; the same here).
    Terminal,
    /// `key=value` pairs, one record per line.
    Logfmt,
    /// One JSON object per line.
    Json,
}

/// The log flags, accepted before or after any subcommand.
#[derive(Debug, Clone, Args)]
pub struct LogArgs {
    /// Log level: trace, debug, info, warn, error or crit (op-node's) [default: OP_P2P_LOG's
    /// filter if set, else warn].
    #[arg(long = "log.level", env = "OP_P2P_LOG_LEVEL", global = true, value_parser = parse_level)]
    pub level: Option<LogLevel>,
    /// Log format: text, terminal, logfmt or json (op-node's).
    #[arg(
        long = "log.format",
        env = "OP_P2P_LOG_FORMAT",
        global = true,
        value_enum,
        ignore_case = true,
        default_value = "text"
    )]
    pub format: LogFormat,
}

impl LogArgs {
    /// The filter: the level's, else `op_p2p_log` (`OP_P2P_LOG`), else [`DEFAULT_FILTER`].
    pub fn filter(&self, op_p2p_log: Option<&str>) -> EnvFilter {
        let directives = match (self.level, op_p2p_log) {
            (Some(level), _) => level.filter(),
            (None, Some(custom)) => {
                if let Ok(f) = EnvFilter::try_new(custom) {
                    return f;
                }
                DEFAULT_FILTER
            }
            (None, None) => DEFAULT_FILTER,
        };
        EnvFilter::new(directives)
    }

    /// Installs the global subscriber on stderr.
    pub fn init(&self) {
        let op_p2p_log = std::env::var("OP_P2P_LOG").ok();
        let builder = tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_env_filter(self.filter(op_p2p_log.as_deref()));
        match self.format {
            LogFormat::Text | LogFormat::Terminal => {
                use std::io::IsTerminal;
                let colour = std::io::stderr().is_terminal()
                    && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
                builder.with_ansi(colour).init()
            }
            LogFormat::Logfmt => builder
                .with_ansi(false)
                .event_format(OpNodeFormat { json: false })
                .init(),
            LogFormat::Json => builder
                .with_ansi(false)
                .event_format(OpNodeFormat { json: true })
                .init(),
        }
    }
}

/// op-node's level names.
fn level_name(level: &Level) -> &'static str {
    match *level {
        Level::TRACE => "trace",
        Level::DEBUG => "debug",
        Level::INFO => "info",
        Level::WARN => "warn",
        Level::ERROR => "error",
    }
}

/// One event's fields, in order: `message` is the record's `msg`.
#[derive(Default)]
struct Fields {
    msg: String,
    rest: Vec<(&'static str, serde_json::Value)>,
}

impl Fields {
    fn put(&mut self, field: &Field, value: serde_json::Value) {
        if field.name() == "message" {
            self.msg = match value {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
        } else {
            self.rest.push((field.name(), value));
        }
    }
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.put(field, format!("{value:?}").into());
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, value.into());
    }
}

/// The `logfmt` and `json` record layouts (see the module docs).
struct OpNodeFormat {
    json: bool,
}

/// A logfmt value: bare if it is a plain token, else a quoted, escaped string.
fn logfmt_value(v: &serde_json::Value) -> String {
    let text = match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| !c.is_whitespace() && !c.is_control() && c != '"' && c != '=');
    if plain {
        text
    } else {
        serde_json::Value::String(text).to_string()
    }
}

impl<S, N> FormatEvent<S, N> for OpNodeFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let mut t = String::new();
        SystemTime.format_time(&mut Writer::new(&mut t))?;
        let mut fields = Fields::default();
        event.record(&mut fields);
        let meta = event.metadata();
        let lvl = level_name(meta.level());
        let mut line = String::with_capacity(128);
        if self.json {
            let mut obj = serde_json::Map::new();
            obj.insert("t".into(), t.into());
            obj.insert("lvl".into(), lvl.into());
            obj.insert("msg".into(), fields.msg.into());
            obj.insert("target".into(), meta.target().into());
            for (k, v) in fields.rest {
                obj.entry(k).or_insert(v);
            }
            line.push_str(&serde_json::Value::Object(obj).to_string());
        } else {
            let _ = write!(
                line,
                "t={t} lvl={lvl} msg={} target={}",
                logfmt_value(&fields.msg.into()),
                meta.target()
            );
            for (k, v) in fields.rest {
                let _ = write!(line, " {k}={}", logfmt_value(&v));
            }
        }
        writeln!(writer, "{line}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use std::sync::{Arc, Mutex};

    #[derive(Debug, Parser)]
    struct Wrap {
        #[command(flatten)]
        log: LogArgs,
    }

    fn parse(args: &[&str]) -> Result<LogArgs, clap::Error> {
        Wrap::try_parse_from(std::iter::once("x").chain(args.iter().copied())).map(|w| w.log)
    }

    #[test]
    fn op_nodes_levels_and_formats_parse() {
        let d = parse(&[]).unwrap();
        assert_eq!((d.level, d.format), (None, LogFormat::Text));
        for (name, want) in [
            ("trace", LogLevel::Trace),
            ("DEBUG", LogLevel::Debug),
            ("info", LogLevel::Info),
            ("Warn", LogLevel::Warn),
            ("error", LogLevel::Error),
            ("eror", LogLevel::Error),
            ("trce", LogLevel::Trace),
            ("crit", LogLevel::Crit),
        ] {
            assert_eq!(parse(&["--log.level", name]).unwrap().level, Some(want));
        }
        for (name, want) in [
            ("text", LogFormat::Text),
            ("terminal", LogFormat::Terminal),
            ("logfmt", LogFormat::Logfmt),
            ("JSON", LogFormat::Json),
        ] {
            assert_eq!(parse(&["--log.format", name]).unwrap().format, want);
        }
        for bad in [
            &["--log.level", "verbose"][..],
            &["--log.level", ""],
            &["--log.format", "xml"],
            &["--log.format", "json-pretty"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_level_wins_over_op_p2p_log_which_wins_over_the_default() {
        let level = |l| LogArgs {
            level: Some(l),
            format: LogFormat::Text,
        };
        let none = LogArgs {
            level: None,
            format: LogFormat::Text,
        };
        let shown = |f: EnvFilter| f.to_string();
        assert_eq!(shown(level(LogLevel::Debug).filter(Some("trace"))), "debug");
        assert_eq!(shown(level(LogLevel::Crit).filter(None)), "error");
        assert!(shown(level(LogLevel::Info).filter(None)).contains("discv5=error"));
        assert_eq!(shown(none.filter(Some("op_p2p=trace"))), "op_p2p=trace");
        assert_eq!(
            shown(none.filter(None)),
            shown(EnvFilter::new(DEFAULT_FILTER))
        );
        // An OP_P2P_LOG that is not a filter falls back to the default.
        assert_eq!(
            shown(none.filter(Some("=[bad"))),
            shown(EnvFilter::new(DEFAULT_FILTER))
        );
    }

    /// Captures what a subscriber with `format` writes for a few events.
    fn capture(json: bool) -> Vec<String> {
        #[derive(Clone, Default)]
        struct Buf(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Buf {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buf = Buf::default();
        let out = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || out.clone())
            .with_env_filter(EnvFilter::new("info"))
            .with_ansi(false)
            .event_format(OpNodeFormat { json })
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(peers = 3u64, ok = true, name = "a b", "node running");
            tracing::warn!(error = %"x=\"y\"", "cannot bind");
            tracing::debug!("filtered out");
        });
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        text.lines().map(str::to_owned).collect()
    }

    #[test]
    fn json_lines_carry_op_nodes_keys_and_the_fields() {
        let lines = capture(true);
        assert_eq!(lines.len(), 2, "{lines:?}");
        let a: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(a["lvl"], "info");
        assert_eq!(a["msg"], "node running");
        assert_eq!(a["peers"], 3);
        assert_eq!(a["ok"], true);
        assert_eq!(a["name"], "a b");
        assert!(a["t"].as_str().unwrap().len() >= 20, "{a}");
        let b: serde_json::Value = serde_json::from_str(&lines[1]).unwrap();
        assert_eq!(
            (b["lvl"].as_str(), b["error"].as_str()),
            (Some("warn"), Some("x=\"y\""))
        );
    }

    #[test]
    fn logfmt_lines_are_key_value_pairs_quoted_where_needed() {
        let lines = capture(false);
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[0].starts_with("t="), "{}", lines[0]);
        assert!(
            lines[0].contains(" lvl=info msg=\"node running\" ")
                && lines[0].ends_with(" peers=3 ok=true name=\"a b\""),
            "{}",
            lines[0]
        );
        assert!(
            lines[1].contains(" lvl=warn msg=\"cannot bind\" ")
                && lines[1].ends_with(r#" error="x=\"y\"""#),
            "{}",
            lines[1]
        );
    }
}
