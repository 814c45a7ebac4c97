//! Block signing behind one trait, [`BlockSigner`]: the sequencer's local key
//! ([`LocalSigner`]) or a remote op-signer over HTTPS ([`RemoteSigner`], op-node's
//! `--signer.*`). Signing blocks (a remote signer may take seconds or hang), so the driver runs
//! it on the runtime's blocking pool and never awaits it on its event loop; the core's publish
//! queue orders, retries and times out (see [`op_p2p_core::publish`]).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use alloy_primitives::{Address, B256, Signature, U256, hex};
use op_p2p_core::gossip::signature::{BLOCK_SIGNING_DOMAIN, SequencerKey, signing_hash};
use op_p2p_core::publish::FailureKind;

/// What a signer signs: op-signer's block-payload arguments (the domain is always
/// [`BLOCK_SIGNING_DOMAIN`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignRequest {
    /// L2 chain id.
    pub chain_id: u64,
    /// `keccak256` of the signed bytes.
    pub payload_hash: B256,
}

/// Why a signer gave no signature.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    /// The request did not complete: connection refused, TLS, timeout.
    #[error("signer request failed: {0}")]
    Transport(#[source] Box<ureq::Error>),
    /// The signer answered with an HTTP error status.
    #[error("signer answered HTTP {0}")]
    Status(u16),
    /// The signer answered a JSON-RPC error.
    #[error("signer error {code}: {message}")]
    Rpc {
        /// JSON-RPC error code.
        code: i64,
        /// Its message (truncated).
        message: String,
    },
    /// The answer is not a JSON-RPC response with a 65-byte signature.
    #[error("malformed signer response: {0}")]
    Malformed(String),
}

impl SignError {
    /// Whether a retry may succeed: transport failures, timeouts, 5xx/408/429 and JSON-RPC
    /// errors are transient; other HTTP statuses (401, 403, 404...) and malformed answers are
    /// permanent.
    pub fn kind(&self) -> FailureKind {
        match self {
            SignError::Transport(_) | SignError::Rpc { .. } => FailureKind::Transient,
            SignError::Status(s) if *s >= 500 || *s == 408 || *s == 429 => FailureKind::Transient,
            SignError::Status(_) | SignError::Malformed(_) => FailureKind::Permanent,
        }
    }
}

/// A block signer. [`BlockSigner::sign`] may block: callers run it on a blocking pool.
pub trait BlockSigner: Send + Sync + std::fmt::Debug + 'static {
    /// The address the signatures should recover to.
    fn address(&self) -> Address;
    /// Signs one block (blocking).
    fn sign(&self, request: &SignRequest) -> Result<Signature, SignError>;
}

/// Signs with a key held in memory (`--p2p.sequencer.key`).
#[derive(Debug, Clone)]
pub struct LocalSigner(pub SequencerKey);

impl BlockSigner for LocalSigner {
    fn address(&self) -> Address {
        self.0.address()
    }

    fn sign(&self, r: &SignRequest) -> Result<Signature, SignError> {
        Ok(self.0.sign_hash(&signing_hash(
            BLOCK_SIGNING_DOMAIN,
            r.chain_id,
            r.payload_hash,
        )))
    }
}

/// A remote op-signer's settings (op-node's `--signer.*` flags).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteSignerConfig {
    /// `https://…` (or `http://` for a local signer) JSON-RPC endpoint.
    pub endpoint: String,
    /// The address to sign as (`senderAddress`).
    pub address: Address,
    /// PEM CA bundle that signs the server's certificate (default: the webpki roots).
    pub tls_ca: Option<PathBuf>,
    /// PEM client certificate (mTLS), with [`RemoteSignerConfig::tls_key`].
    pub tls_cert: Option<PathBuf>,
    /// PEM client key.
    pub tls_key: Option<PathBuf>,
    /// Extra HTTP headers sent with every request.
    pub headers: Vec<(String, String)>,
    /// Whole-request timeout (connect, TLS, write, wait, read).
    pub timeout: Duration,
}

/// Default whole-request timeout of the remote signer.
pub const DEFAULT_SIGNER_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest signer response read.
pub const MAX_SIGNER_RESPONSE: u64 = 64 * 1024;

impl RemoteSignerConfig {
    /// An endpoint and address, no TLS files, no headers, [`DEFAULT_SIGNER_TIMEOUT`].
    pub fn new(endpoint: impl Into<String>, address: Address) -> Self {
        Self {
            endpoint: endpoint.into(),
            address,
            tls_ca: None,
            tls_cert: None,
            tls_key: None,
            headers: Vec::new(),
            timeout: DEFAULT_SIGNER_TIMEOUT,
        }
    }
}

/// Why a remote signer cannot be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignerSetupError {
    /// A TLS file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A TLS file holds no usable PEM item.
    #[error("{path}: {source}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: Box<ureq::Error>,
    },
    /// A client certificate without its key or the other way round.
    #[error("--signer.tls.cert and --signer.tls.key go together")]
    HalfClientCert,
    /// The endpoint is not an http(s) URL.
    #[error("signer endpoint must be an http:// or https:// URL: {0}")]
    Endpoint(String),
}

/// op-signer's JSON-RPC client: `opsigner_signBlockPayloadV2`, falling back to
/// `opsigner_signBlockPayload` when the signer does not know V2.
#[derive(Debug)]
pub struct RemoteSigner {
    agent: ureq::Agent,
    config: RemoteSignerConfig,
    next_id: AtomicU64,
    /// The signer answered "method not found" to V2.
    v1_only: AtomicBool,
}

fn read(path: &Path) -> Result<Vec<u8>, SignerSetupError> {
    std::fs::read(path).map_err(|source| SignerSetupError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn pem_err(path: &Path) -> impl FnOnce(ureq::Error) -> SignerSetupError + '_ {
    move |e| SignerSetupError::Pem {
        path: path.to_path_buf(),
        source: Box::new(e),
    }
}

impl RemoteSigner {
    /// Reads the TLS files and builds the HTTP client.
    pub fn new(config: RemoteSignerConfig) -> Result<Self, SignerSetupError> {
        use ureq::tls::{Certificate, ClientCert, PrivateKey, RootCerts, TlsConfig, parse_pem};
        if !(config.endpoint.starts_with("https://") || config.endpoint.starts_with("http://")) {
            return Err(SignerSetupError::Endpoint(config.endpoint.clone()));
        }
        let mut tls = TlsConfig::builder();
        if let Some(path) = &config.tls_ca {
            let pem = read(path)?;
            let certs = parse_pem(&pem)
                .filter_map(|i| match i {
                    Ok(ureq::tls::PemItem::Certificate(c)) => Some(Ok(c)),
                    Ok(_) => None,
                    Err(e) => Some(Err(e)),
                })
                .collect::<Result<Vec<Certificate<'static>>, _>>()
                .map_err(pem_err(path))?;
            tls = tls.root_certs(RootCerts::new_with_certs(&certs));
        }
        match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => {
                let cert_pem = read(cert)?;
                let cert = Certificate::from_pem(&cert_pem).map_err(pem_err(cert))?;
                let key_pem = read(key)?;
                let key = PrivateKey::from_pem(&key_pem).map_err(pem_err(key))?;
                tls = tls.client_cert(Some(ClientCert::new_with_certs(&[cert], key)));
            }
            (None, None) => {}
            _ => return Err(SignerSetupError::HalfClientCert),
        }
        let agent = ureq::Agent::config_builder()
            .tls_config(tls.build())
            .timeout_global(Some(config.timeout))
            .timeout_connect(Some(config.timeout.min(Duration::from_secs(2))))
            .http_status_as_error(false)
            .max_response_header_size(16 * 1024)
            .build()
            .new_agent();
        Ok(Self {
            agent,
            config,
            next_id: AtomicU64::new(1),
            v1_only: AtomicBool::new(false),
        })
    }

    fn call(&self, method: &str, params: serde_json::Value) -> Result<Signature, SignError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let body =
            serde_json::json!({"jsonrpc": "2.0", "id": id, "method": method, "params": [params]});
        let mut req = self
            .agent
            .post(&self.config.endpoint)
            .header("content-type", "application/json");
        for (k, v) in &self.config.headers {
            req = req.header(k, v);
        }
        let mut resp = req
            .send(body.to_string().as_bytes())
            .map_err(|e| SignError::Transport(Box::new(e)))?;
        let status = resp.status().as_u16();
        let bytes = resp
            .body_mut()
            .with_config()
            .limit(MAX_SIGNER_RESPONSE)
            .read_to_vec()
            .map_err(|e| SignError::Transport(Box::new(e)))?;
        let value: serde_json::Value = match serde_json::from_slice(&bytes) {
            Ok(v) => v,
            Err(_) if status != 200 => return Err(SignError::Status(status)),
            Err(e) => return Err(SignError::Malformed(e.to_string())),
        };
        if let Some(err) = value.get("error") {
            let code = err.get("code").and_then(|c| c.as_i64()).unwrap_or(0);
            let mut message = err
                .get("message")
                .and_then(|m| m.as_str())
                .unwrap_or("")
                .to_string();
            message.truncate(200);
            return Err(SignError::Rpc { code, message });
        }
        if status != 200 {
            return Err(SignError::Status(status));
        }
        let result = value
            .get("result")
            .and_then(|r| r.as_str())
            .ok_or_else(|| SignError::Malformed("no string result".into()))?;
        parse_signature(result)
            .ok_or_else(|| SignError::Malformed("not a 65-byte signature".into()))
    }
}

/// Parses `0x` + 65 bytes `r ‖ s ‖ v` (v ∈ {0, 1, 27, 28}).
pub fn parse_signature(text: &str) -> Option<Signature> {
    let bytes = hex::decode(text).ok()?;
    if bytes.len() != 65 {
        return None;
    }
    let parity = match bytes[64] {
        0 | 27 => false,
        1 | 28 => true,
        _ => return None,
    };
    Some(Signature::new(
        U256::from_be_slice(&bytes[..32]),
        U256::from_be_slice(&bytes[32..64]),
        parity,
    ))
}

/// JSON-RPC method-not-found.
const METHOD_NOT_FOUND: i64 = -32601;

impl BlockSigner for RemoteSigner {
    fn address(&self) -> Address {
        self.config.address
    }

    fn sign(&self, r: &SignRequest) -> Result<Signature, SignError> {
        let domain = BLOCK_SIGNING_DOMAIN.to_string();
        let payload_hash = r.payload_hash.to_string();
        let sender = self.config.address.to_string();
        if !self.v1_only.load(Ordering::Relaxed) {
            // V2: the chain id as op-service's eth.ChainID text (decimal).
            let params = serde_json::json!({
                "domain": domain,
                "chainId": r.chain_id.to_string(),
                "payloadHash": payload_hash,
                "senderAddress": sender,
            });
            match self.call("opsigner_signBlockPayloadV2", params) {
                Err(SignError::Rpc { code, .. }) if code == METHOD_NOT_FOUND => {
                    tracing::info!("signer has no opsigner_signBlockPayloadV2; using V1");
                    self.v1_only.store(true, Ordering::Relaxed);
                }
                other => return other,
            }
        }
        // V1: the chain id as a hexutil.Big.
        let params = serde_json::json!({
            "domain": domain,
            "chainId": format!("{:#x}", r.chain_id),
            "payloadHash": payload_hash,
            "senderAddress": sender,
        });
        self.call("opsigner_signBlockPayload", params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_parse_with_either_v_convention_and_nothing_else() {
        let key = op_p2p_core::testkit::dev_key(0);
        let sig = key.sign_hash(&B256::repeat_byte(7));
        let mut bytes = op_p2p_core::gossip::wire::signature_bytes(&sig);
        assert_eq!(parse_signature(&hex::encode_prefixed(bytes)), Some(sig));
        bytes[64] += 27;
        assert_eq!(parse_signature(&hex::encode_prefixed(bytes)), Some(sig));
        bytes[64] = 5;
        assert_eq!(parse_signature(&hex::encode_prefixed(bytes)), None);
        assert_eq!(parse_signature("0x1234"), None);
        assert_eq!(parse_signature("zz"), None);
    }

    #[test]
    fn transport_and_server_errors_are_transient_client_errors_permanent() {
        assert_eq!(SignError::Status(503).kind(), FailureKind::Transient);
        assert_eq!(SignError::Status(429).kind(), FailureKind::Transient);
        assert_eq!(SignError::Status(403).kind(), FailureKind::Permanent);
        let rpc = SignError::Rpc {
            code: -32000,
            message: "busy".into(),
        };
        assert_eq!(rpc.kind(), FailureKind::Transient);
        assert_eq!(
            SignError::Malformed("x".into()).kind(),
            FailureKind::Permanent
        );
    }

    #[test]
    fn a_client_cert_needs_its_key_and_the_endpoint_a_scheme() {
        let mut c = RemoteSignerConfig::new("https://127.0.0.1:1", Address::ZERO);
        c.tls_cert = Some("/nonexistent".into());
        assert!(matches!(
            RemoteSigner::new(c),
            Err(SignerSetupError::HalfClientCert)
        ));
        let c = RemoteSignerConfig::new("127.0.0.1:1", Address::ZERO);
        assert!(matches!(
            RemoteSigner::new(c),
            Err(SignerSetupError::Endpoint(_))
        ));
    }
}
