//! The unsafe block signer read from L1, as op-node does: the `SystemConfig` contract keeps the
//! sequencer's block-signing address in storage slot
//! [`UNSAFE_BLOCK_SIGNER_SLOT`] (`keccak256("systemconfig.unsafeblocksigner")`, op-node's
//! `UnsafeBlockSignerAddressSystemConfigStorageSlot`), the address in its low 20 bytes.
//!
//! One read is three JSON-RPC calls to the L1 execution node ([`L1Config::endpoint`]):
//! `eth_chainId` (must be [`L1Config::chain_id`]: an L1 of another chain is an error, never a
//! signer), `eth_blockNumber`, then `eth_getStorageAt(systemConfig, slot, head - confs)`.
//! Each call has a deadline ([`L1Config::request_timeout`], op-node's 10 s) and a bounded
//! answer ([`MAX_RESPONSE_BYTES`]); every failure is an [`L1Error`].
//!
//! The reader runs off the driver's loop, on tokio (the node's runtime when it is tokio,
//! otherwise one current-thread tokio runtime in a thread of its own, `op-p2p-l1`, as
//! [`crate::discovery`] hosts discv5). It reads at start and every
//! [`L1Config::reload_interval`]; after a failure it keeps the last known signer and retries
//! with a bounded exponential backoff ([`backoff_ms`]); the driver's
//! [`Action::SignerSuspect`](op_p2p_core::Action::SignerSuspect) asks for a read now
//! (rate-limited, [`SUSPECT_MIN_GAP_MS`]). When to read is the pure [`Schedule`], what to tell
//! the core the pure [`Tracker`]: it gets [`Input::SetUnsafeSigner`] when the signer changes and
//! [`Input::SignerSource`] after every read. The reader ends when the driver is gone.
//!
//! The client is a small HTTP/1 client over hyper rather than alloy's HTTP transport: that
//! transport (reqwest) is not in the tree and does not bound a response's size, and three
//! calls need nothing more. Only `http://` URLs are served (no TLS in this crate).

use std::fmt;
use std::future::Future;
use std::str::FromStr;
use std::time::Duration;

use alloy_primitives::{Address, B256, b256};
use bytes::Bytes;
use futures::StreamExt;
use futures::channel::mpsc;
use http_body_util::{BodyExt, Full, Limited};
use op_p2p_core::{Input, SignerSourceStatus, UnixMillis};
use serde::Deserialize;

use crate::runtime::Runtime;

/// `keccak256("systemconfig.unsafeblocksigner")`: the `SystemConfig` storage slot holding the
/// unsafe block signer (op-node's `UnsafeBlockSignerAddressSystemConfigStorageSlot`).
pub const UNSAFE_BLOCK_SIGNER_SLOT: B256 =
    b256!("0x65a7ed542fb37fe237fdfbdd70b31598523fe5b32879e307bae27a0bd9581c08");
/// How often the signer is re-read unless set: op-node's `--l1.runtime-config-reload-interval`
/// default, 10 minutes.
pub const DEFAULT_RELOAD_INTERVAL: Duration = Duration::from_secs(600);
/// Blocks behind the L1 head the signer is read at unless set. op-node's
/// `--verifier.l1-confs` has the same meaning and defaults to 0; we read 4 blocks deep (the
/// default of op-node's `--sequencer.l1-confs`) so a shallow L1 reorg cannot flip the signer
/// back and forth. A rotation so reaches us about 48 s after its L1 block, which the core's
/// rotation grace window covers.
pub const DEFAULT_L1_CONFS: u64 = 4;
/// Most confirmations accepted (about 3.4 hours of L1 blocks).
pub const MAX_L1_CONFS: u64 = 1_024;
/// Deadline of one JSON-RPC call, connection included (op-node's 10 s per L1 fetch).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest JSON-RPC response body read; a longer one is an error ([`L1Error::TooLarge`]).
/// Every answer we ask for is under 200 bytes.
pub const MAX_RESPONSE_BYTES: usize = 16 * 1024;
/// First retry delay after a failed read.
pub const BACKOFF_MIN_MS: u64 = 1_000;
/// Longest retry delay after failed reads (never more than the reload interval).
pub const BACKOFF_MAX_MS: u64 = 60_000;
/// Least time between the start of a read and one a
/// [`SignerSuspect`](op_p2p_core::Action::SignerSuspect) brings forward.
pub const SUSPECT_MIN_GAP_MS: u64 = 10_000;
/// Longest error text sent to the core in [`SignerSourceStatus::Failing`], characters.
pub const MAX_ERROR_CHARS: usize = 200;
/// Updates queued from the reader to the driver.
const UPDATE_QUEUE: usize = 8;

/// An `http://host[:port][/path]` L1 JSON-RPC endpoint.
#[derive(Clone, PartialEq, Eq)]
pub struct L1Endpoint {
    host: String,
    port: u16,
    authority: String,
    path: String,
}

/// Why an L1 URL is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum L1UrlError {
    /// Not a URL.
    #[error("not a URL")]
    Malformed,
    /// A scheme other than `http` (`https` needs TLS, which this crate does not carry: put a
    /// local node or a TLS-terminating proxy in front).
    #[error("scheme {0:?} is not supported: only http:// (use a local node or a TLS proxy)")]
    Scheme(String),
    /// No host.
    #[error("has no host")]
    NoHost,
    /// User and password in the URL (they would end up in logs).
    #[error("must not carry a user or password")]
    UserInfo,
}

impl L1Endpoint {
    /// Parses an `http://` URL.
    pub fn parse(url: &str) -> Result<Self, L1UrlError> {
        let uri: http::Uri = url.trim().parse().map_err(|_| L1UrlError::Malformed)?;
        match uri.scheme_str() {
            Some("http") => {}
            Some(other) => return Err(L1UrlError::Scheme(other.to_owned())),
            None => return Err(L1UrlError::Malformed),
        }
        let authority = uri.authority().ok_or(L1UrlError::NoHost)?;
        if authority.as_str().contains('@') {
            return Err(L1UrlError::UserInfo);
        }
        let host = authority.host();
        if host.is_empty() {
            return Err(L1UrlError::NoHost);
        }
        // `[::1]` as a socket host is `::1`.
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let path = uri
            .path_and_query()
            .map(|p| p.as_str())
            .filter(|p| !p.is_empty())
            .unwrap_or("/")
            .to_owned();
        Ok(Self {
            port: authority.port_u16().unwrap_or(80),
            authority: authority.as_str().to_owned(),
            host,
            path,
        })
    }

    /// The host to connect to.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl FromStr for L1Endpoint {
    type Err = L1UrlError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// The URL with its path and query hidden (`http://host:port/…`): hosted endpoints carry
/// their API key there, and this is what logs and `Debug` show.
impl fmt::Display for L1Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = if self.path == "/" { "/" } else { "/…" };
        write!(f, "http://{}{path}", self.authority)
    }
}

impl fmt::Debug for L1Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Where and how the node reads the unsafe block signer from L1 (made by
/// [`NodeConfigBuilder::l1_rpc`](crate::NodeConfigBuilder::l1_rpc) and its siblings).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct L1Config {
    /// The L1 execution node's JSON-RPC (`--l1`).
    pub endpoint: L1Endpoint,
    /// The L2 chain's `SystemConfig` proxy on L1 (`--rollup.system-config`, else the preset's).
    pub system_config: Address,
    /// The chain id the L1 must report (1 for mainnet chains, 11155111 for Sepolia ones).
    pub chain_id: u64,
    /// Time between reads (`--l1.runtime-config-reload-interval`).
    pub reload_interval: Duration,
    /// Blocks behind the L1 head the slot is read at (`--verifier.l1-confs`).
    pub confs: u64,
    /// Deadline of each JSON-RPC call.
    pub request_timeout: Duration,
}

impl L1Config {
    /// A configuration with the default interval, confirmations and deadline.
    pub fn new(endpoint: L1Endpoint, system_config: Address, chain_id: u64) -> Self {
        Self {
            endpoint,
            system_config,
            chain_id,
            reload_interval: DEFAULT_RELOAD_INTERVAL,
            confs: DEFAULT_L1_CONFS,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
        }
    }
}

/// Why one read of the signer failed. The node keeps its last known signer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum L1Error {
    /// No tokio runtime to run the client on (the reader's thread could not start one); no
    /// read will happen.
    #[error("no tokio runtime for the L1 client")]
    Host(#[source] std::io::Error),
    /// The TCP connection failed.
    #[error("{method}: connect")]
    Connect {
        /// The call.
        method: &'static str,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The call did not finish within its deadline.
    #[error("{method}: no answer within {timeout:?}")]
    Timeout {
        /// The call.
        method: &'static str,
        /// The deadline.
        timeout: Duration,
    },
    /// HTTP failed (handshake, request, or reading the body).
    #[error("{method}: http")]
    Http {
        /// The call.
        method: &'static str,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The HTTP status was not 200.
    #[error("{method}: http status {status}")]
    Status {
        /// The call.
        method: &'static str,
        /// The status.
        status: u16,
    },
    /// The body was longer than [`MAX_RESPONSE_BYTES`].
    #[error("{method}: response longer than {MAX_RESPONSE_BYTES} bytes")]
    TooLarge {
        /// The call.
        method: &'static str,
    },
    /// The body was not a JSON-RPC response.
    #[error("{method}: not a JSON-RPC response")]
    Json {
        /// The call.
        method: &'static str,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// The node answered with a JSON-RPC error.
    #[error("{method}: error {code}: {message}")]
    Rpc {
        /// The call.
        method: &'static str,
        /// The error code.
        code: i64,
        /// Its message (shortened).
        message: String,
    },
    /// The result is not what the call returns (a quantity, a 32-byte word).
    #[error("{method}: bad result {value:?}")]
    BadResult {
        /// The call.
        method: &'static str,
        /// The result (shortened).
        value: String,
    },
    /// The L1 is another chain.
    #[error("L1 reports chain {got}, expected {expected}")]
    WrongChain {
        /// The configured L1 chain id.
        expected: u64,
        /// What the L1 said.
        got: u64,
    },
    /// The slot holds something other than an address (high 12 bytes not zero).
    #[error("SystemConfig slot holds {0}, not an address")]
    NotAnAddress(B256),
    /// The slot is zero: no signer set.
    #[error("SystemConfig has no unsafe block signer (slot is zero)")]
    NoSigner,
}

impl L1Error {
    /// A short fixed name of the failure, the `result` label of the reads metric.
    pub fn kind(&self) -> &'static str {
        match self {
            L1Error::Host(_) => "host",
            L1Error::Connect { .. } => "connect",
            L1Error::Timeout { .. } => "timeout",
            L1Error::Http { .. } => "http",
            L1Error::Status { .. } => "status",
            L1Error::TooLarge { .. } => "too_large",
            L1Error::Json { .. } => "json",
            L1Error::Rpc { .. } => "rpc",
            L1Error::BadResult { .. } => "bad_result",
            L1Error::WrongChain { .. } => "wrong_chain",
            L1Error::NotAnAddress(_) => "not_an_address",
            L1Error::NoSigner => "no_signer",
        }
    }

    /// Every [`kind`](Self::kind), so each series exists from the start.
    pub const KINDS: [&'static str; 12] = [
        "host",
        "connect",
        "timeout",
        "http",
        "status",
        "too_large",
        "json",
        "rpc",
        "bad_result",
        "wrong_chain",
        "not_an_address",
        "no_signer",
    ];

    /// The error and its sources on one line, at most [`MAX_ERROR_CHARS`] characters.
    pub fn report(&self) -> String {
        let mut text = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(s) = source {
            text.push_str(": ");
            text.push_str(&s.to_string());
            source = s.source();
        }
        shorten(&text, MAX_ERROR_CHARS)
    }
}

fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

// ---- when to read: a pure schedule ----

/// The delay before retry number `failures` (1 for the first): [`BACKOFF_MIN_MS`] doubling up
/// to [`BACKOFF_MAX_MS`].
pub fn backoff_ms(failures: u32) -> u64 {
    let doublings = failures.saturating_sub(1).min(16);
    BACKOFF_MIN_MS
        .saturating_mul(1u64 << doublings)
        .min(BACKOFF_MAX_MS)
}

/// When the next read is due, from what happened so far. Pure: the reader feeds it the time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    interval_ms: u64,
    next_at: UnixMillis,
    failures: u32,
    last_start: Option<UnixMillis>,
}

impl Schedule {
    /// A schedule reading every `interval`, the first read due at `now`.
    pub fn new(interval: Duration, now: UnixMillis) -> Self {
        Self {
            interval_ms: u64::try_from(interval.as_millis())
                .unwrap_or(u64::MAX)
                .max(1),
            next_at: now,
            failures: 0,
            last_start: None,
        }
    }

    /// When the next read is due.
    pub fn next_at(&self) -> UnixMillis {
        self.next_at
    }

    /// Whether a read is due at `now`.
    pub fn due(&self, now: UnixMillis) -> bool {
        now >= self.next_at
    }

    /// Failed reads since the last success.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// A read starts at `now`.
    pub fn on_start(&mut self, now: UnixMillis) {
        self.last_start = Some(now);
    }

    /// The read succeeded at `now`: the next one is an interval later.
    pub fn on_success(&mut self, now: UnixMillis) {
        self.failures = 0;
        self.next_at = now.saturating_add(self.interval_ms);
    }

    /// The read failed at `now`: retry after the backoff (at most an interval).
    pub fn on_failure(&mut self, now: UnixMillis) {
        self.failures = self.failures.saturating_add(1);
        let delay = backoff_ms(self.failures).min(self.interval_ms);
        self.next_at = now.saturating_add(delay);
    }

    /// The core suspects the signer is stale: read now, or [`SUSPECT_MIN_GAP_MS`] after the
    /// last read started if that is later; never later than already due.
    pub fn on_suspect(&mut self, now: UnixMillis) {
        let earliest = self
            .last_start
            .map_or(now, |t| t.saturating_add(SUSPECT_MIN_GAP_MS).max(now));
        self.next_at = self.next_at.min(earliest);
    }
}

// ---- what to tell the core: a pure tracker ----

/// What the core was told: the inputs a read's result turns into.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tracker {
    signer: Option<Address>,
    failing_since: Option<UnixMillis>,
}

impl Tracker {
    /// The last signer read, if any read succeeded.
    pub fn signer(&self) -> Option<Address> {
        self.signer
    }

    /// The inputs for a read's result at `now`: the signer when it is new or changed, then
    /// the source's status (a failure keeps the time the current run of failures began).
    pub fn on_result(&mut self, result: &Result<Address, L1Error>, now: UnixMillis) -> Vec<Input> {
        match result {
            Ok(signer) => {
                self.failing_since = None;
                let mut out = Vec::with_capacity(2);
                if self.signer != Some(*signer) {
                    self.signer = Some(*signer);
                    out.push(Input::SetUnsafeSigner(*signer));
                }
                out.push(Input::SignerSource(SignerSourceStatus::Ok { at: now }));
                out
            }
            Err(e) => {
                let since = *self.failing_since.get_or_insert(now);
                vec![Input::SignerSource(SignerSourceStatus::Failing {
                    since,
                    error: e.report(),
                })]
            }
        }
    }
}

// ---- one read: three bounded JSON-RPC calls ----

#[derive(Deserialize)]
struct RpcResponse {
    #[serde(default)]
    result: Option<serde_json::Value>,
    #[serde(default)]
    error: Option<RpcError>,
}

#[derive(Deserialize)]
struct RpcError {
    code: i64,
    #[serde(default)]
    message: String,
}

/// Reads the signer once (see the module docs). Runs on a tokio runtime.
pub async fn read_signer(config: &L1Config) -> Result<Address, L1Error> {
    let chain = quantity(
        "eth_chainId",
        call(config, "eth_chainId", serde_json::json!([])).await?,
    )?;
    if chain != config.chain_id {
        return Err(L1Error::WrongChain {
            expected: config.chain_id,
            got: chain,
        });
    }
    let head = quantity(
        "eth_blockNumber",
        call(config, "eth_blockNumber", serde_json::json!([])).await?,
    )?;
    let at = head.saturating_sub(config.confs);
    let word = call(
        config,
        "eth_getStorageAt",
        serde_json::json!([
            config.system_config,
            UNSAFE_BLOCK_SIGNER_SLOT,
            format!("{at:#x}")
        ]),
    )
    .await?;
    signer_of(storage_word(word)?)
}

/// The signer in a storage word: its low 20 bytes, the rest zero.
pub fn signer_of(word: B256) -> Result<Address, L1Error> {
    if word[..12].iter().any(|b| *b != 0) {
        return Err(L1Error::NotAnAddress(word));
    }
    let signer = Address::from_slice(&word[12..]);
    if signer.is_zero() {
        return Err(L1Error::NoSigner);
    }
    Ok(signer)
}

fn bad(method: &'static str, value: &serde_json::Value) -> L1Error {
    L1Error::BadResult {
        method,
        value: shorten(&value.to_string(), 80),
    }
}

/// A JSON-RPC quantity (`0x`-prefixed hex, at most 64 bits).
fn quantity(method: &'static str, value: serde_json::Value) -> Result<u64, L1Error> {
    let text = value.as_str().ok_or_else(|| bad(method, &value))?;
    let digits = text.strip_prefix("0x").ok_or_else(|| bad(method, &value))?;
    if digits.is_empty() || digits.len() > 16 {
        return Err(bad(method, &value));
    }
    u64::from_str_radix(digits, 16).map_err(|_| bad(method, &value))
}

/// A 32-byte storage word (`0x` and 64 hex digits).
fn storage_word(value: serde_json::Value) -> Result<B256, L1Error> {
    const METHOD: &str = "eth_getStorageAt";
    let text = value.as_str().ok_or_else(|| bad(METHOD, &value))?;
    let digits = text.strip_prefix("0x").ok_or_else(|| bad(METHOD, &value))?;
    if digits.len() != 64 {
        return Err(bad(METHOD, &value));
    }
    B256::from_str(digits).map_err(|_| bad(METHOD, &value))
}

/// One JSON-RPC call with its deadline; the `result`, or why there is none.
async fn call(
    config: &L1Config,
    method: &'static str,
    params: serde_json::Value,
) -> Result<serde_json::Value, L1Error> {
    let timeout = config.request_timeout;
    match tokio::time::timeout(timeout, exchange(&config.endpoint, method, params)).await {
        Ok(body) => decode(method, &body?),
        Err(_) => Err(L1Error::Timeout { method, timeout }),
    }
}

/// The `result` of a JSON-RPC response body.
fn decode(method: &'static str, body: &[u8]) -> Result<serde_json::Value, L1Error> {
    let response: RpcResponse =
        serde_json::from_slice(body).map_err(|source| L1Error::Json { method, source })?;
    match (response.result, response.error) {
        (_, Some(e)) => Err(L1Error::Rpc {
            method,
            code: e.code,
            message: shorten(&e.message, 120),
        }),
        (Some(result), None) => Ok(result),
        (None, None) => Err(bad(method, &serde_json::Value::Null)),
    }
}

/// POSTs one request on a new connection and reads at most [`MAX_RESPONSE_BYTES`] of body.
async fn exchange(
    endpoint: &L1Endpoint,
    method: &'static str,
    params: serde_json::Value,
) -> Result<Bytes, L1Error> {
    let http = |source: Box<dyn std::error::Error + Send + Sync>| L1Error::Http { method, source };
    let stream = tokio::net::TcpStream::connect((endpoint.host.as_str(), endpoint.port))
        .await
        .map_err(|source| L1Error::Connect { method, source })?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| http(e.into()))?;
    let body = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    let request = http::Request::post(endpoint.path.as_str())
        .header(http::header::HOST, endpoint.authority.as_str())
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .map_err(|e| http(e.into()))?;
    let response = async {
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| http(e.into()))?;
        if response.status() != http::StatusCode::OK {
            return Err(L1Error::Status {
                method,
                status: response.status().as_u16(),
            });
        }
        match Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
            .collect()
            .await
        {
            Ok(body) => Ok(body.to_bytes()),
            Err(e) if e.is::<http_body_util::LengthLimitError>() => {
                Err(L1Error::TooLarge { method })
            }
            Err(e) => Err(http(e)),
        }
    };
    // The connection is driven here, not spawned: when the answer is in (or the deadline
    // drops this future) it closes with it. A server that closes after answering ends the
    // connection first; the answer (or hyper's error for it) is then already with `response`.
    tokio::pin!(response);
    tokio::select! {
        biased;
        result = &mut response => result,
        _ = connection => response.await,
    }
}

// ---- the reader task ----

/// The driver's ends of the reader's channels.
#[derive(Debug)]
pub(crate) struct ReaderLink {
    /// Inputs for the core, from the reader.
    pub(crate) updates: mpsc::Receiver<Input>,
    /// Suspected stale signers, to the reader (a read soon).
    pub(crate) suspects: mpsc::Sender<Address>,
}

impl ReaderLink {
    /// The next input from the reader; pending forever once the reader is gone.
    pub(crate) async fn next(&mut self) -> Input {
        match self.updates.next().await {
            Some(input) => input,
            None => futures::future::pending().await,
        }
    }

    /// Asks the reader to read soon; a request already queued stands for this one.
    pub(crate) fn suspect(&mut self, address: Address) {
        let _ = self.suspects.try_send(address);
    }
}

/// Starts the reader where `runtime` has tokio (see the module docs). It ends when the
/// returned link is dropped.
pub(crate) fn start<R: Runtime>(
    runtime: &R,
    config: L1Config,
    metrics: crate::metrics::L1SignerMetrics,
) -> std::io::Result<ReaderLink> {
    let (updates_tx, updates) = mpsc::channel(UPDATE_QUEUE);
    let (suspects, suspects_rx) = mpsc::channel(1);
    if let Some(handle) = runtime.tokio_handle() {
        let task = run(runtime.clone(), config, updates_tx, suspects_rx, metrics);
        drop(handle.spawn(task));
    } else {
        let runtime = runtime.clone();
        std::thread::Builder::new()
            .name("op-p2p-l1".into())
            .spawn(move || {
                match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt.block_on(run(runtime, config, updates_tx, suspects_rx, metrics)),
                    Err(e) => {
                        // No reads at all: the core keeps its signer and hears why.
                        let error = L1Error::Host(e);
                        tracing::error!(error = %error.report(), "the L1 signer reader cannot run");
                        metrics.on_read(error.kind(), None);
                        let mut updates = updates_tx;
                        let _ =
                            updates.try_send(Input::SignerSource(SignerSourceStatus::Failing {
                                since: runtime.now_ms(),
                                error: error.report(),
                            }));
                    }
                }
                tracing::debug!("L1 signer reader stopped");
            })?;
    }
    Ok(ReaderLink { updates, suspects })
}

async fn run<R: Runtime>(
    runtime: R,
    config: L1Config,
    updates: mpsc::Sender<Input>,
    suspects: mpsc::Receiver<Address>,
    metrics: crate::metrics::L1SignerMetrics,
) {
    tracing::info!(
        l1 = %config.endpoint,
        system_config = %config.system_config,
        l1_chain_id = config.chain_id,
        confs = config.confs,
        interval = ?config.reload_interval,
        "reading the unsafe block signer from L1"
    );
    drive(
        || runtime.now_ms(),
        config.reload_interval,
        || read_signer(&config),
        updates,
        suspects,
        &metrics,
    )
    .await;
}

/// The reader's loop over any clock and read: reads when the [`Schedule`] says, tells the
/// driver what the [`Tracker`] says, and brings a read forward on each suspect. Ends when the
/// driver is gone (either channel closed).
async fn drive<Fut: Future<Output = Result<Address, L1Error>>>(
    now: impl Fn() -> UnixMillis,
    interval: Duration,
    mut read: impl FnMut() -> Fut,
    mut updates: mpsc::Sender<Input>,
    mut suspects: mpsc::Receiver<Address>,
    metrics: &crate::metrics::L1SignerMetrics,
) {
    let mut schedule = Schedule::new(interval, now());
    let mut tracker = Tracker::default();
    loop {
        let at = now();
        if schedule.due(at) {
            schedule.on_start(at);
            let result = read().await;
            let at = now();
            match &result {
                Ok(signer) => {
                    schedule.on_success(at);
                    if tracker.signer() != Some(*signer) {
                        tracing::info!(%signer, "unsafe block signer from L1");
                        metrics.on_change();
                    }
                    metrics.on_read("ok", Some(at));
                }
                Err(e) => {
                    schedule.on_failure(at);
                    tracing::warn!(
                        error = %e.report(),
                        failures = schedule.failures(),
                        retry_in_ms = schedule.next_at().saturating_sub(at),
                        "reading the unsafe block signer from L1 failed; keeping the last one"
                    );
                    metrics.on_read(e.kind(), None);
                }
            }
            for input in tracker.on_result(&result, at) {
                if futures::SinkExt::send(&mut updates, input).await.is_err() {
                    return;
                }
            }
            continue;
        }
        let wait = Duration::from_millis(schedule.next_at().saturating_sub(at));
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            suspect = suspects.next() => match suspect {
                Some(address) => {
                    tracing::info!(%address, "signer suspected stale; re-reading L1 soon");
                    schedule.on_suspect(now());
                }
                // The driver is gone.
                None => return,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::keccak256;

    #[test]
    fn the_slot_is_the_hash_op_node_names() {
        assert_eq!(
            keccak256("systemconfig.unsafeblocksigner"),
            UNSAFE_BLOCK_SIGNER_SLOT
        );
    }

    #[test]
    fn urls() {
        let e = L1Endpoint::parse("http://127.0.0.1:8545").unwrap();
        assert_eq!(
            (e.host(), e.port(), e.path.as_str()),
            ("127.0.0.1", 8545, "/")
        );
        let e = L1Endpoint::parse("http://[::1]/rpc?key=x").unwrap();
        assert_eq!(
            (e.host(), e.port(), e.path.as_str()),
            ("::1", 80, "/rpc?key=x")
        );
        // The path and query (an API key, often) never reach a log.
        assert_eq!(e.to_string(), "http://[::1]/…");
        assert_eq!(format!("{e:?}"), "http://[::1]/…");
        assert_eq!(
            L1Endpoint::parse("https://eth.example"),
            Err(L1UrlError::Scheme("https".into()))
        );
        assert_eq!(
            L1Endpoint::parse("http://u:p@host:1"),
            Err(L1UrlError::UserInfo)
        );
        assert!(L1Endpoint::parse("127.0.0.1:8545").is_err());
        assert_eq!(L1Endpoint::parse("not a url"), Err(L1UrlError::Malformed));
        assert_eq!(
            L1Endpoint::parse("/just/a/path"),
            Err(L1UrlError::Malformed)
        );
    }

    #[test]
    fn the_signer_is_the_low_20_bytes_and_nothing_else() {
        let a = Address::repeat_byte(0xab);
        let mut word = B256::ZERO;
        word[12..].copy_from_slice(a.as_slice());
        assert_eq!(signer_of(word).unwrap(), a);
        word[0] = 1;
        assert!(matches!(signer_of(word), Err(L1Error::NotAnAddress(_))));
        assert!(matches!(signer_of(B256::ZERO), Err(L1Error::NoSigner)));
    }

    #[test]
    fn results_are_checked() {
        use serde_json::json;
        assert_eq!(quantity("m", json!("0x1")).unwrap(), 1);
        assert_eq!(quantity("m", json!("0xaa36a7")).unwrap(), 11_155_111);
        for v in [
            json!("1"),
            json!("0x"),
            json!(1),
            json!("0x1ffffffffffffffff"),
            json!("0xzz"),
        ] {
            assert!(matches!(quantity("m", v), Err(L1Error::BadResult { .. })));
        }
        assert!(storage_word(json!(format!("0x{}", "00".repeat(32)))).is_ok());
        assert!(storage_word(json!("0x01")).is_err());
        assert!(storage_word(json!(format!("0x{}", "00".repeat(33)))).is_err());
        assert!(matches!(
            decode(
                "m",
                br#"{"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"no"}}"#
            ),
            Err(L1Error::Rpc { code: -32000, .. })
        ));
        assert!(matches!(decode("m", b"<html>"), Err(L1Error::Json { .. })));
        assert!(matches!(
            decode("m", br#"{"id":1}"#),
            Err(L1Error::BadResult { .. })
        ));
        assert_eq!(decode("m", br#"{"result":"0x1"}"#).unwrap(), json!("0x1"));
    }

    #[test]
    fn backoff_doubles_to_its_bound() {
        assert_eq!(backoff_ms(1), 1_000);
        assert_eq!(backoff_ms(2), 2_000);
        assert_eq!(backoff_ms(6), 32_000);
        assert_eq!(backoff_ms(7), BACKOFF_MAX_MS);
        assert_eq!(backoff_ms(u32::MAX), BACKOFF_MAX_MS);
    }

    #[test]
    fn schedule_reads_at_start_every_interval_and_backs_off_on_failure() {
        let mut s = Schedule::new(Duration::from_secs(600), 1_000);
        assert!(s.due(1_000));
        s.on_start(1_000);
        s.on_success(1_200);
        assert_eq!(s.next_at(), 601_200);
        assert!(!s.due(601_199));
        s.on_start(601_200);
        s.on_failure(601_300);
        assert_eq!(s.next_at(), 602_300);
        s.on_failure(602_300);
        assert_eq!(s.next_at(), 604_300);
        for _ in 0..20 {
            s.on_failure(700_000);
        }
        assert_eq!(s.next_at(), 700_000 + BACKOFF_MAX_MS);
        s.on_success(800_000);
        assert_eq!((s.failures(), s.next_at()), (0, 1_400_000));
        // The backoff never exceeds a short interval.
        let mut short = Schedule::new(Duration::from_secs(5), 0);
        for _ in 0..10 {
            short.on_failure(0);
        }
        assert_eq!(short.next_at(), 5_000);
    }

    #[test]
    fn a_suspect_brings_the_read_forward_rate_limited() {
        let mut s = Schedule::new(Duration::from_secs(600), 0);
        s.on_start(0);
        s.on_success(100);
        // Long after the last read: now.
        s.on_suspect(50_000);
        assert!(s.due(50_000));
        s.on_start(50_000);
        s.on_success(50_100);
        // Soon after a read: SUSPECT_MIN_GAP_MS after it started.
        s.on_suspect(51_000);
        assert_eq!(s.next_at(), 50_000 + SUSPECT_MIN_GAP_MS);
        // A suspect never delays a read already due sooner.
        s.on_failure(50_100);
        assert_eq!(s.next_at(), 51_100);
        s.on_suspect(50_200);
        assert_eq!(s.next_at(), 51_100);
    }

    #[test]
    fn the_tracker_sends_changes_and_status() {
        let (a, b) = (Address::repeat_byte(1), Address::repeat_byte(2));
        let mut t = Tracker::default();
        let out = t.on_result(&Ok(a), 10);
        assert!(
            matches!(out[..], [Input::SetUnsafeSigner(x), Input::SignerSource(SignerSourceStatus::Ok { at: 10 })] if x == a)
        );
        // Same signer: status only.
        assert!(matches!(
            t.on_result(&Ok(a), 20)[..],
            [Input::SignerSource(SignerSourceStatus::Ok { at: 20 })]
        ));
        // Failures keep the signer and the start of the run.
        let fail = || Err(L1Error::NoSigner);
        for now in [30, 40] {
            let out = t.on_result(&fail(), now);
            assert!(
                matches!(&out[..], [Input::SignerSource(SignerSourceStatus::Failing { since: 30, error })] if error.contains("zero"))
            );
        }
        assert_eq!(t.signer(), Some(a));
        let out = t.on_result(&Ok(b), 50);
        assert!(
            matches!(out[..], [Input::SetUnsafeSigner(x), Input::SignerSource(SignerSourceStatus::Ok { at: 50 })] if x == b)
        );
        let out = t.on_result(&fail(), 60);
        assert!(matches!(
            &out[..],
            [Input::SignerSource(SignerSourceStatus::Failing {
                since: 60,
                ..
            })]
        ));
    }

    /// The reader's loop in virtual time (tokio's paused clock): one read at start, a suspect
    /// right after it waits out [`SUSPECT_MIN_GAP_MS`], a later one reads at once, and neither
    /// waits for the 10-minute interval.
    #[tokio::test(start_paused = true)]
    async fn a_suspect_brings_the_next_read_forward() {
        use std::sync::{Arc, Mutex};
        let start = tokio::time::Instant::now();
        let now = move || 1_000_000 + start.elapsed().as_millis() as u64;
        let reads = Arc::new(Mutex::new(Vec::new()));
        let log = reads.clone();
        let read = move || {
            log.lock().unwrap().push(now() - 1_000_000);
            std::future::ready(Ok(Address::repeat_byte(7)))
        };
        let (updates_tx, mut updates) = mpsc::channel(8);
        let (mut suspects, suspects_rx) = mpsc::channel(1);
        let metrics = crate::metrics::L1SignerMetrics::default();
        let reader = tokio::spawn(async move {
            drive(
                now,
                DEFAULT_RELOAD_INTERVAL,
                read,
                updates_tx,
                suspects_rx,
                &metrics,
            )
            .await;
        });
        // The first read: the signer, then the status.
        assert!(matches!(
            updates.next().await,
            Some(Input::SetUnsafeSigner(_))
        ));
        assert!(matches!(
            updates.next().await,
            Some(Input::SignerSource(SignerSourceStatus::Ok {
                at: 1_000_000
            }))
        ));
        tokio::time::sleep(Duration::from_secs(1)).await;
        futures::SinkExt::send(&mut suspects, Address::ZERO)
            .await
            .unwrap();
        assert!(matches!(
            updates.next().await,
            Some(Input::SignerSource(SignerSourceStatus::Ok {
                at: 1_010_000
            }))
        ));
        tokio::time::sleep(Duration::from_secs(100)).await;
        futures::SinkExt::send(&mut suspects, Address::ZERO)
            .await
            .unwrap();
        assert!(matches!(
            updates.next().await,
            Some(Input::SignerSource(SignerSourceStatus::Ok {
                at: 1_110_000
            }))
        ));
        assert_eq!(*reads.lock().unwrap(), [0, SUSPECT_MIN_GAP_MS, 110_000]);
        // The driver gone, the reader ends.
        drop(suspects);
        reader.await.unwrap();
    }

    #[test]
    fn error_reports_are_bounded() {
        let e = L1Error::Rpc {
            method: "m",
            code: 1,
            message: "x".repeat(1_000),
        };
        assert!(e.report().chars().count() <= MAX_ERROR_CHARS);
    }
}
