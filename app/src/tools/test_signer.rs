//! `op-p2p test-signer` (hidden): a test stand-in for op-signer. It speaks op-signer's
//! `opsigner_signBlockPayload` and `opsigner_signBlockPayloadV2` JSON-RPC over HTTPS with
//! mutual TLS (a client without a certificate from the CA is refused in the handshake), and
//! misbehaves on request: latency, JSON-RPC errors, answers from the wrong key, hangs. Also
//! writes a throw-away CA and server/client certificates ([`gen_certs`]).
//!
//! Deliberately small: one thread per connection (at most [`MAX_CONNECTIONS`]), HTTP/1.1 with
//! `Connection: close`, bounded headers and body, read timeouts. Not for production use.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use op_p2p_core::alloy_primitives::{B256, hex};
use op_p2p_core::gossip::signature::{SequencerKey, signing_hash};

/// A test signer child process (`devnet --remote-signer`, `bench-publish`): started from
/// `exe` (this binary) with fresh certificates in a temporary directory, signing with
/// `dev_key(0)` after `latency_ms`; killed and its certificates removed when dropped.
#[derive(Debug)]
pub struct SignerChild {
    child: std::process::Child,
    dir: PathBuf,
    config: op_p2p_node::signer::RemoteSignerConfig,
}

impl SignerChild {
    /// Starts it and waits for its `listening` line.
    pub fn start(exe: &Path, latency_ms: u64) -> Result<Self, Box<dyn std::error::Error>> {
        use std::io::BufRead;
        static STARTED: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "op-p2p-test-signer-{}-{}",
            std::process::id(),
            STARTED.fetch_add(1, Ordering::Relaxed)
        ));
        gen_certs(&dir)?;
        let key = hex::encode(op_p2p_core::testkit::dev_key_bytes(0));
        let mut child = std::process::Command::new(exe)
            .arg("test-signer")
            .arg("--tls.ca")
            .arg(dir.join("ca.pem"))
            .arg("--tls.cert")
            .arg(dir.join("server.pem"))
            .arg("--tls.key")
            .arg(dir.join("server.key"))
            .args(["--key", &key, "--latency-ms", &latency_ms.to_string()])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .spawn()?;
        let stdout = child.stdout.take().ok_or("test-signer has no stdout")?;
        let mut line = String::new();
        // The child prints its address once bound, or exits (EOF) on an error.
        std::io::BufReader::new(stdout).read_line(&mut line)?;
        let addr = line
            .trim()
            .strip_prefix("listening ")
            .ok_or("test-signer did not start")?
            .to_string();
        let mut config = op_p2p_node::signer::RemoteSignerConfig::new(
            format!("https://{addr}"),
            op_p2p_core::testkit::dev_key(0).address(),
        );
        config.tls_ca = Some(dir.join("ca.pem"));
        config.tls_cert = Some(dir.join("client.pem"));
        config.tls_key = Some(dir.join("client.key"));
        Ok(Self { child, dir, config })
    }

    /// A client configuration for it (mTLS, the default timeout).
    pub fn config(&self) -> &op_p2p_node::signer::RemoteSignerConfig {
        &self.config
    }
}

impl Drop for SignerChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Most connections served at once.
pub const MAX_CONNECTIONS: usize = 32;
const MAX_HEAD: usize = 16 * 1024;
const MAX_BODY: usize = 64 * 1024;

/// How the test signer behaves.
#[derive(Debug, Clone, clap::Args)]
pub struct TestSignerArgs {
    /// Address to listen on (port 0 picks one; the bound address is printed as `listening <addr>`).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// PEM CA that client certificates must chain to.
    #[arg(long = "tls.ca")]
    pub tls_ca: PathBuf,
    /// PEM server certificate.
    #[arg(long = "tls.cert")]
    pub tls_cert: PathBuf,
    /// PEM server key.
    #[arg(long = "tls.key")]
    pub tls_key: PathBuf,
    /// The sequencer key to sign with (hex).
    #[arg(long)]
    pub key: String,
    /// Sign with this key instead (a wrong-key answer; hex).
    #[arg(long)]
    pub wrong_key: Option<String>,
    /// Delay before every answer, milliseconds.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Answer the first N requests (after the hanging ones) with a JSON-RPC error.
    #[arg(long, default_value_t = 0)]
    pub fail_first: u64,
    /// The first N requests hang for `--hang-ms` before answering.
    #[arg(long, default_value_t = 0)]
    pub hang_first: u64,
    /// How long a hanging request hangs, milliseconds.
    #[arg(long, default_value_t = 30_000)]
    pub hang_ms: u64,
}

/// Why the test signer could not start.
#[derive(Debug, thiserror::Error)]
pub enum TestSignerError {
    /// Reading or writing a file, or binding.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// TLS set-up.
    #[error("tls: {0}")]
    Tls(#[from] rustls::Error),
    /// The client verifier.
    #[error("client verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
    /// PEM parsing.
    #[error("pem {path}: {source}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    /// Certificate generation.
    #[error("certificate generation: {0}")]
    Rcgen(#[from] rcgen::Error),
    /// A key is not 32 hex bytes.
    #[error("bad key: {0}")]
    Key(String),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> TestSignerError {
    let what = what.into();
    move |source| TestSignerError::Io { what, source }
}

/// Writes `ca.pem`, `server.pem`/`server.key` (for `localhost` and `127.0.0.1`) and
/// `client.pem`/`client.key` into `dir`, all fresh.
pub fn gen_certs(dir: &Path) -> Result<(), TestSignerError> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    };
    std::fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "op-p2p test signer CA");
    let ca = ca_params.self_signed(&ca_key)?;
    let leaf = |names: Vec<String>, usage| -> Result<(String, String), TestSignerError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(names)?;
        params.extended_key_usages = vec![usage];
        let cert = params.signed_by(&key, &ca, &ca_key)?;
        Ok((cert.pem(), key.serialize_pem()))
    };
    let server = leaf(
        vec!["localhost".into(), "127.0.0.1".into()],
        ExtendedKeyUsagePurpose::ServerAuth,
    )?;
    let client = leaf(
        vec!["op-p2p-client".into()],
        ExtendedKeyUsagePurpose::ClientAuth,
    )?;
    for (name, text) in [
        ("ca.pem", ca.pem()),
        ("server.pem", server.0),
        ("server.key", server.1),
        ("client.pem", client.0),
        ("client.key", client.1),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(io(format!("writing {}", path.display())))?;
    }
    Ok(())
}

fn parse_key(hex_key: &str) -> Result<SequencerKey, TestSignerError> {
    let bytes: [u8; 32] = hex::decode(hex_key.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| TestSignerError::Key("not 32 hex bytes".into()))?;
    SequencerKey::from_bytes(&bytes).map_err(|e| TestSignerError::Key(e.to_string()))
}

fn tls_config(args: &TestSignerArgs) -> Result<Arc<rustls::ServerConfig>, TestSignerError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    fn pem(path: &Path) -> impl FnOnce(rustls::pki_types::pem::Error) -> TestSignerError {
        let path = path.to_path_buf();
        move |source| TestSignerError::Pem { path, source }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(&args.tls_ca).map_err(pem(&args.tls_ca))? {
        roots.add(cert.map_err(pem(&args.tls_ca))?)?;
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()?;
    let certs = CertificateDer::pem_file_iter(&args.tls_cert)
        .map_err(pem(&args.tls_cert))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(pem(&args.tls_cert))?;
    let key = PrivateKeyDer::from_pem_file(&args.tls_key).map_err(pem(&args.tls_key))?;
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)?;
    Ok(Arc::new(config))
}

struct Signer {
    args: TestSignerArgs,
    key: SequencerKey,
    requests: AtomicU64,
}

/// Serves until the process is killed. Prints `listening <addr>` once bound.
pub fn serve(args: TestSignerArgs) -> Result<(), TestSignerError> {
    let tls = tls_config(&args)?;
    let key = parse_key(args.wrong_key.as_deref().unwrap_or(&args.key))?;
    let listener = TcpListener::bind(args.listen).map_err(io("binding"))?;
    let addr = listener.local_addr().map_err(io("local addr"))?;
    println!("listening {addr}");
    let _ = std::io::stdout().flush();
    let signer = Arc::new(Signer {
        args,
        key,
        requests: AtomicU64::new(0),
    });
    let open = Arc::new(AtomicUsize::new(0));
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        if open.load(Ordering::SeqCst) >= MAX_CONNECTIONS {
            continue; // dropped: the client sees a reset
        }
        open.fetch_add(1, Ordering::SeqCst);
        let (tls, signer, open) = (tls.clone(), signer.clone(), open.clone());
        std::thread::spawn(move || {
            if let Err(e) = serve_one(stream, tls, &signer) {
                eprintln!("test-signer: connection: {e}");
            }
            open.fetch_sub(1, Ordering::SeqCst);
        });
    }
    Ok(())
}

fn serve_one(
    stream: TcpStream,
    tls: Arc<rustls::ServerConfig>,
    signer: &Signer,
) -> Result<(), Box<dyn std::error::Error>> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.set_write_timeout(Some(Duration::from_secs(10)))?;
    let conn = rustls::ServerConnection::new(tls)?;
    let mut tls = rustls::StreamOwned::new(conn, stream);
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > MAX_HEAD {
            return Err("request head too large".into());
        }
        let n = tls.read(&mut chunk)?;
        if n == 0 {
            return Err("closed before the request".into());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or("no content-length")?;
    if len > MAX_BODY {
        return Err("body too large".into());
    }
    while buf.len() < head_end + len {
        let n = tls.read(&mut chunk)?;
        if n == 0 {
            return Err("closed mid-body".into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = answer(signer, &buf[head_end..head_end + len]);
    let response = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{}",
        body.len(),
        body
    );
    tls.write_all(response.as_bytes())?;
    tls.flush()?;
    tls.conn.send_close_notify();
    let _ = tls.flush();
    Ok(())
}

fn answer(signer: &Signer, body: &[u8]) -> String {
    let n = signer.requests.fetch_add(1, Ordering::SeqCst);
    let args = &signer.args;
    if n < args.hang_first {
        std::thread::sleep(Duration::from_millis(args.hang_ms));
    }
    if args.latency_ms > 0 {
        std::thread::sleep(Duration::from_millis(args.latency_ms));
    }
    let req: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let id = req.get("id").cloned().unwrap_or(serde_json::Value::Null);
    let error = |code: i64, message: &str| {
        serde_json::json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
            .to_string()
    };
    if n >= args.hang_first && n - args.hang_first < args.fail_first {
        return error(-32000, "injected failure");
    }
    let method = req.get("method").and_then(|m| m.as_str()).unwrap_or("");
    let v2 = match method {
        "opsigner_signBlockPayloadV2" => true,
        "opsigner_signBlockPayload" => false,
        _ => return error(-32601, "method not found"),
    };
    let Some(p) = req.get("params").and_then(|p| p.get(0)) else {
        return error(-32602, "missing params");
    };
    let field = |k: &str| p.get(k).and_then(|v| v.as_str()).unwrap_or("");
    let chain = field("chainId");
    // V2: op-service's ChainID text (decimal, or 0x-hex); V1: hexutil.Big (0x-hex).
    let chain_id = match chain.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None if v2 => chain.parse().ok(),
        None => None,
    };
    let (Some(chain_id), Ok(hash), Ok(domain)) = (
        chain_id,
        field("payloadHash").parse::<B256>(),
        field("domain").parse::<B256>(),
    ) else {
        return error(-32602, "invalid params");
    };
    let sig = signer.key.sign_hash(&signing_hash(domain, chain_id, hash));
    let mut out = [0u8; 65];
    out[..32].copy_from_slice(&sig.r().to_be_bytes::<32>());
    out[32..64].copy_from_slice(&sig.s().to_be_bytes::<32>());
    out[64] = u8::from(sig.v());
    serde_json::json!({"jsonrpc": "2.0", "id": id, "result": hex::encode_prefixed(out)}).to_string()
}
