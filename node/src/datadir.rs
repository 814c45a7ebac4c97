//! The node's data directory: the node key and the persisted [`NodeState`], with blocking
//! `std::fs` calls only. The key and the saved state are read once at start; the running node
//! writes its state from a writer task on the runtime's blocking pool (never on the event
//! loop): bans and the operator's peer-book changes at most once a second, what discovery
//! learned at most every 5 minutes, and everything at shutdown (see
//! [`crate::driver::PERSIST_INTERVAL_MS`]). It names no runtime.
//!
//! Layout (the directory is created with mode 0700 on unix, every file with 0600):
//!
//! | file | holds |
//! |---|---|
//! | `p2p_priv.txt` | the node key, in op-node's `--p2p.priv.path` format (see [`parse_key_text`]) |
//! | `bans.json` | the gater part of [`NodeState`]: permanent blocks and timed bans |
//! | `peers.json` | the peer book |
//! | `discovery.json` | the discovery table |
//!
//! Each state file is `{"version": STATE_VERSION, "data": ...}` so a file read alone says which
//! layout wrote it.
//!
//! Every write is atomic: the bytes go to `.<name>.tmp` in the same directory, which is
//! fsynced, renamed over the target, and then the directory is fsynced. A crash leaves either
//! the old or the new file, plus at most a stray temp file, which [`DataDir::open`] removes and
//! reads never look at. Reads are bounded: a file longer than its limit is refused from its
//! metadata before a byte is read, and the read itself stops one byte past the limit (for
//! files that grow or lie about their size). An unreadable or unparseable file is a
//! [`DataDirError`] naming it, never a panic.
//!
//! Not done: locking the directory against a second process (std's `File::lock` needs Rust
//! 1.89, above our MSRV). Two nodes sharing a data dir overwrite each other's state.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use sha2::{Digest, Sha256};

use op_p2p_core::discovery::PersistedEnr;
use op_p2p_core::peers::book::{PeerBookSnapshot, SNAPSHOT_VERSION};
use op_p2p_core::peers::gater::GaterSnapshot;
use op_p2p_core::{NodeState, STATE_VERSION, StateUpdate};

/// The libp2p identity type the key functions return (the same type `NodeConfig` holds).
pub use libp2p::identity::Keypair;

/// The node key's file name inside the data dir.
pub const KEY_FILE: &str = "p2p_priv.txt";
/// Permanent blocks and timed bans.
pub const BANS_FILE: &str = "bans.json";
/// The peer book.
pub const PEERS_FILE: &str = "peers.json";
/// The discovery table.
pub const DISCOVERY_FILE: &str = "discovery.json";

/// Largest state file read (bytes); longer files are refused before reading.
pub const MAX_STATE_FILE_BYTES: u64 = 64 * 1024 * 1024;
/// Largest key file read (bytes). A key is 64 hex digits; this leaves room for a `0x` prefix
/// and generous whitespace.
pub const MAX_KEY_FILE_BYTES: u64 = 4096;

/// The lock file: [`DataDir::open`] holds an exclusive lock on it for as long as the
/// [`DataDir`] lives, so a second process on the same directory fails at once.
pub const LOCK_FILE: &str = "LOCK";

/// The state files, in the order [`DataDir`] tracks them.
const STATE_FILES: [&str; 3] = [BANS_FILE, PEERS_FILE, DISCOVERY_FILE];

/// Why a data-dir operation failed. Every variant names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataDirError {
    /// A filesystem call failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done (`"create"`, `"read"`, `"write"`, ...).
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The path exists but is not a directory.
    #[error("{} is not a directory", path.display())]
    NotADirectory {
        /// The path given.
        path: PathBuf,
    },
    /// The file is longer than its limit; nothing was read.
    #[error("{} is {len} bytes, more than the limit of {max}", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size (from metadata, or at least `max + 1` if it grew while read).
        len: u64,
        /// The limit.
        max: u64,
    },
    /// The file is not the JSON we write (truncated, edited, or another program's).
    #[error("{} is corrupt: {source}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Where parsing failed.
        #[source]
        source: serde_json::Error,
    },
    /// The file was written by another state layout version.
    #[error("{} has state version {found}, expected {STATE_VERSION}", path.display())]
    Version {
        /// The file.
        path: PathBuf,
        /// The version it carries.
        found: u32,
    },
    /// The key file does not hold a usable key (the message never contains key material).
    #[error("{}: {source}", path.display())]
    Key {
        /// The key file.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        source: KeyError,
    },
    /// A new key was to be written, but the file already exists (it is left untouched).
    #[error("{} already exists; refusing to overwrite a key", path.display())]
    KeyExists {
        /// The key file.
        path: PathBuf,
    },
    /// Another process (or another node in this one) has the data dir open.
    #[error(
        "{} is in use by another op-p2p process (it holds {LOCK_FILE}); stop it or use another --datadir",
        path.display()
    )]
    InUse {
        /// The data dir.
        path: PathBuf,
    },
    /// The key file can be read by group or others; like ssh, we refuse to use a private key
    /// others can read.
    #[error(
        "{} has mode {mode:o}: the node key must not be readable by group or others (chmod 600 it)",
        path.display()
    )]
    KeyReadableByOthers {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
}

/// Why key text or bytes are not a usable secp256k1 node key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// Not hex digits (after trimming whitespace and one `0x`), or not UTF-8.
    #[error("p2p private key is not formatted in hex chars")]
    NotHex,
    /// Hex, but not 32 bytes (a libp2p protobuf-encoded key, or another key type, lands here).
    #[error("p2p private key is {0} bytes, expected a 32-byte secp256k1 key")]
    WrongLength(usize),
    /// 32 bytes, but zero or not below the secp256k1 group order.
    #[error("p2p private key is not a valid secp256k1 scalar")]
    InvalidScalar,
    /// The keypair is not secp256k1 (only when encoding a key we were handed).
    #[error("the node key must be secp256k1")]
    NotSecp256k1,
}

/// A secp256k1 keypair from 32 secret bytes; the zero scalar and values at or above the group
/// order are refused.
pub fn keypair_from_secret(secret: [u8; 32]) -> Result<Keypair, KeyError> {
    let mut bytes = secret;
    let sk = libp2p::identity::secp256k1::SecretKey::try_from_bytes(&mut bytes)
        .map_err(|_| KeyError::InvalidScalar);
    bytes.fill(0);
    Ok(libp2p::identity::secp256k1::Keypair::from(sk?).into())
}

/// Parses key file contents the way op-node's `loadNetworkPrivKey`/`parsePriv` do: surrounding
/// whitespace (a trailing newline included) is trimmed, one lowercase `0x` prefix is stripped,
/// and the rest must be hex digits (either case) of exactly 32 bytes.
///
/// ⚠ go-libp2p's `UnmarshalSecp256k1PrivateKey` reduces the 32 bytes modulo the group order
/// and so accepts the zero scalar; we refuse a key outside `1..n` ([`KeyError::InvalidScalar`])
/// rather than run with a degenerate identity. Like op-node, `0X` is not a prefix.
pub fn parse_key_text(text: &[u8]) -> Result<Keypair, KeyError> {
    let text = std::str::from_utf8(text)
        .map_err(|_| KeyError::NotHex)?
        .trim();
    let digits = match text.strip_prefix("0x") {
        Some(rest) if text.len() > 2 => rest,
        _ => text,
    };
    if digits.len() % 2 != 0 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(KeyError::NotHex);
    }
    if digits.len() != 64 {
        return Err(KeyError::WrongLength(digits.len() / 2));
    }
    let mut secret = [0u8; 32];
    alloy_primitives::hex::decode_to_slice(digits, &mut secret).map_err(|_| KeyError::NotHex)?;
    keypair_from_secret(secret)
}

/// The key file text op-node writes: 64 lowercase hex digits, no `0x`, no newline.
pub fn encode_key(keypair: &Keypair) -> Result<String, KeyError> {
    let kp = keypair
        .clone()
        .try_into_secp256k1()
        .map_err(|_| KeyError::NotSecp256k1)?;
    Ok(alloy_primitives::hex::encode(kp.secret().to_bytes()))
}

/// Reads the key at `path`, or creates it from `fresh_secret` (the caller passes 32 bytes of OS
/// randomness) if the file does not exist. The parent directory must exist. A new key is
/// written atomically with mode 0600 and never replaces a file that appeared meanwhile (that
/// file is read instead).
pub fn load_or_create_key_file(
    path: &Path,
    fresh_secret: [u8; 32],
) -> Result<Keypair, DataDirError> {
    match read_key_file(path) {
        Err(DataDirError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
            match create_key_file(path, fresh_secret) {
                Err(DataDirError::KeyExists { .. }) => read_key_file(path),
                other => other,
            }
        }
        other => other,
    }
}

/// Reads and parses the key file at `path` ([`parse_key_text`]), refusing files above
/// [`MAX_KEY_FILE_BYTES`] and (on unix) files that group or others may read or write.
pub fn read_key_file(path: &Path) -> Result<Keypair, DataDirError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(path)
            .map_err(io_err("stat", path))?
            .permissions()
            .mode()
            & 0o777;
        if mode & 0o077 != 0 {
            return Err(DataDirError::KeyReadableByOthers {
                path: path.to_owned(),
                mode,
            });
        }
    }
    let text = read_bounded(path, MAX_KEY_FILE_BYTES)?;
    parse_key_text(&text).map_err(|source| DataDirError::Key {
        path: path.to_owned(),
        source,
    })
}

/// Writes a new key made from `secret` to `path` in op-node's format, atomically and with mode
/// 0600. Refuses ([`DataDirError::KeyExists`]) if `path` exists; the parent must exist.
pub fn create_key_file(path: &Path, secret: [u8; 32]) -> Result<Keypair, DataDirError> {
    let keypair = keypair_from_secret(secret).map_err(|source| DataDirError::Key {
        path: path.to_owned(),
        source,
    })?;
    let text = encode_key(&keypair).map_err(|source| DataDirError::Key {
        path: path.to_owned(),
        source,
    })?;
    write_atomic(path, text.as_bytes(), Replace::No)?;
    tracing::info!(path = %path.display(), peer_id = %keypair.public().to_peer_id(), "created node key");
    Ok(keypair)
}

/// Whether an atomic write may replace an existing target.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Replace {
    Yes,
    No,
}

/// The temp file beside `target`: `.<name>.tmp`.
fn temp_path(target: &Path) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    target.with_file_name(format!(".{name}.tmp"))
}

/// The directory holding `path` (`.` for a bare file name).
fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> DataDirError + 'a {
    move |source| DataDirError::Io {
        op,
        path: path.to_owned(),
        source,
    }
}

/// Temp file, fsync, rename (or hard-link for a no-replace write), fsync the directory.
fn write_atomic(target: &Path, bytes: &[u8], replace: Replace) -> Result<(), DataDirError> {
    let tmp = temp_path(target);
    // A stale temp file from a crash is removed, then the temp file is created new
    // (O_CREAT|O_EXCL): an existing name, a symlink planted at it included, is never opened
    // or followed.
    match fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err("remove", &tmp)(e)),
    }
    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let result = (|| {
        let mut f = opts.open(&tmp).map_err(io_err("create", &tmp))?;
        f.write_all(bytes).map_err(io_err("write", &tmp))?;
        f.sync_all().map_err(io_err("fsync", &tmp))?;
        drop(f);
        match replace {
            Replace::Yes => fs::rename(&tmp, target).map_err(io_err("rename onto", target)),
            Replace::No => link_no_replace(&tmp, target),
        }
    })();
    if result.is_err() || replace == Replace::No {
        // After a hard link the temp name is redundant; after a failure it is garbage.
        let _ = fs::remove_file(&tmp);
    }
    result?;
    sync_dir(parent_dir(target))
}

/// Publishes `tmp` as `target` only if `target` does not exist: a hard link is atomic and
/// fails on an existing name. Filesystems without hard links fall back to a checked rename.
fn link_no_replace(tmp: &Path, target: &Path) -> Result<(), DataDirError> {
    match fs::hard_link(tmp, target) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(DataDirError::KeyExists {
            path: target.to_owned(),
        }),
        Err(_) => {
            if fs::symlink_metadata(target).is_ok() {
                return Err(DataDirError::KeyExists {
                    path: target.to_owned(),
                });
            }
            fs::rename(tmp, target).map_err(io_err("rename onto", target))
        }
    }
}

/// Makes a rename in `dir` durable. On non-unix systems directories cannot be opened for
/// fsync; there the rename's own durability is what the OS gives.
fn sync_dir(dir: &Path) -> Result<(), DataDirError> {
    #[cfg(unix)]
    {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err("fsync directory", dir))?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Reads at most `max` bytes of `path`; longer files are refused from their metadata before
/// reading, and the read stops at `max + 1` bytes whatever the metadata said.
fn read_bounded(path: &Path, max: u64) -> Result<Vec<u8>, DataDirError> {
    let file = File::open(path).map_err(io_err("open", path))?;
    let len = file.metadata().map_err(io_err("stat", path))?.len();
    if len > max {
        return Err(DataDirError::TooLarge {
            path: path.to_owned(),
            len,
            max,
        });
    }
    // `len <= max <= 64 MiB` here, so the capacity is bounded.
    let mut buf = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    file.take(max.saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(io_err("read", path))?;
    if buf.len() as u64 > max {
        return Err(DataDirError::TooLarge {
            path: path.to_owned(),
            len: buf.len() as u64,
            max,
        });
    }
    Ok(buf)
}

/// One state file on disk: the layout version and the part of [`NodeState`] it holds.
#[derive(Serialize)]
struct EnvelopeRef<'a, T> {
    version: u32,
    data: &'a T,
}

#[derive(Deserialize)]
struct Envelope<T> {
    version: u32,
    data: T,
}

/// An open data directory. Cheap to share behind an `Arc`: methods take `&self`.
#[derive(Debug)]
pub struct DataDir {
    path: PathBuf,
    /// SHA-256 of what each state file (in [`STATE_FILES`] order) last held as far as we
    /// know (written or read), so [`DataDir::save_state`] skips unchanged parts. Three fixed
    /// slots: bounded.
    last: Mutex<[Option<[u8; 32]>; 3]>,
    /// Holds the exclusive lock on [`LOCK_FILE`]; released when the `DataDir` is dropped.
    _lock: File,
}

impl DataDir {
    /// Opens the directory at `path`, creating it (and its parents) with mode 0700 on unix if
    /// missing, locks it against other processes ([`LOCK_FILE`]; [`DataDirError::InUse`] if
    /// another holds it), and removes temp files a crash may have left. An existing directory
    /// keeps its mode.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, DataDirError> {
        let path = path.into();
        match fs::metadata(&path) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err(DataDirError::NotADirectory { path }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let mut b = fs::DirBuilder::new();
                b.recursive(true);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::DirBuilderExt;
                    b.mode(0o700);
                }
                b.create(&path).map_err(io_err("create directory", &path))?;
                tracing::info!(path = %path.display(), "created data dir");
            }
            Err(source) => {
                return Err(DataDirError::Io {
                    op: "stat",
                    path,
                    source,
                });
            }
        }
        let lock_path = path.join(LOCK_FILE);
        let mut lock_opts = OpenOptions::new();
        lock_opts
            .read(true)
            .write(true)
            .create(true)
            .truncate(false);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            lock_opts.mode(0o600);
        }
        let lock = lock_opts
            .open(&lock_path)
            .map_err(io_err("open", &lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => return Err(DataDirError::InUse { path }),
            Err(fs::TryLockError::Error(e)) => return Err(io_err("lock", &lock_path)(e)),
        }
        let dir = Self {
            path,
            last: Mutex::new([None; 3]),
            _lock: lock,
        };
        for name in STATE_FILES.iter().chain([&KEY_FILE]) {
            let tmp = temp_path(&dir.path.join(name));
            match fs::remove_file(&tmp) {
                Ok(()) => {
                    tracing::warn!(file = %tmp.display(), "removed temp file left by a crash")
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(DataDirError::Io {
                        op: "remove",
                        path: tmp,
                        source,
                    });
                }
            }
        }
        Ok(dir)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The node key: from `explicit` (op-node's `--p2p.priv.path`) if given, else from
    /// [`KEY_FILE`] in the data dir; created from `fresh_secret` (OS randomness from the
    /// caller) if that file does not exist. See [`load_or_create_key_file`].
    pub fn load_or_create_key(
        &self,
        explicit: Option<&Path>,
        fresh_secret: [u8; 32],
    ) -> Result<Keypair, DataDirError> {
        match explicit {
            Some(p) => load_or_create_key_file(p, fresh_secret),
            None => load_or_create_key_file(&self.path.join(KEY_FILE), fresh_secret),
        }
    }

    /// Writes each part of `state` to its file atomically, skipping parts whose bytes equal
    /// what this `DataDir` last wrote or read. Returns how many files were written.
    pub fn save_state(&self, state: &NodeState) -> Result<usize, DataDirError> {
        self.save_parts(
            state.version,
            Some(&state.gater),
            Some(&state.peers),
            Some(&state.discovery),
        )
    }

    /// Writes the parts `update` holds, each to its file atomically, skipping parts whose
    /// bytes equal what this `DataDir` last wrote or read; files of parts it does not hold are
    /// not touched. Returns how many files were written.
    pub fn save_update(&self, update: &StateUpdate) -> Result<usize, DataDirError> {
        self.save_parts(
            update.version,
            update.gater.as_ref(),
            update.peers.as_ref(),
            update.discovery.as_ref(),
        )
    }

    fn save_parts(
        &self,
        v: u32,
        gater: Option<&GaterSnapshot>,
        peers: Option<&PeerBookSnapshot>,
        discovery: Option<&Vec<PersistedEnr>>,
    ) -> Result<usize, DataDirError> {
        let parts = [
            gater.map(|d| self.encode(BANS_FILE, v, d)).transpose()?,
            peers.map(|d| self.encode(PEERS_FILE, v, d)).transpose()?,
            discovery
                .map(|d| self.encode(DISCOVERY_FILE, v, d))
                .transpose()?,
        ];
        let mut written = 0;
        for (i, (name, bytes)) in STATE_FILES.iter().zip(parts).enumerate() {
            let Some(bytes) = bytes else {
                continue;
            };
            let digest: [u8; 32] = Sha256::digest(&bytes).into();
            if self.last_digest(i) == Some(digest) {
                continue;
            }
            write_atomic(&self.path.join(name), &bytes, Replace::Yes)?;
            self.set_last_digest(i, Some(digest));
            written += 1;
        }
        tracing::debug!(written, "saved node state");
        Ok(written)
    }

    /// Reads the persisted state: `None` if no state file exists yet; a missing part is that
    /// part's empty default. A file that is too large, corrupt, or of another version is an
    /// error naming it.
    pub fn load_state(&self) -> Result<Option<NodeState>, DataDirError> {
        let gater: Option<GaterSnapshot> = self.read_part(0)?;
        let peers: Option<PeerBookSnapshot> = self.read_part(1)?;
        let discovery: Option<Vec<PersistedEnr>> = self.read_part(2)?;
        if gater.is_none() && peers.is_none() && discovery.is_none() {
            return Ok(None);
        }
        Ok(Some(NodeState {
            version: STATE_VERSION,
            gater: gater.unwrap_or_default(),
            peers: peers.unwrap_or(PeerBookSnapshot {
                version: SNAPSHOT_VERSION,
                peers: Vec::new(),
            }),
            discovery: discovery.unwrap_or_default(),
        }))
    }

    fn encode<T: Serialize>(
        &self,
        name: &str,
        version: u32,
        data: &T,
    ) -> Result<Vec<u8>, DataDirError> {
        serde_json::to_vec_pretty(&EnvelopeRef { version, data }).map_err(|e| {
            // Our own types always serialise; report it as a write error if one ever fails.
            DataDirError::Io {
                op: "encode",
                path: self.path.join(name),
                source: io::Error::other(e),
            }
        })
    }

    fn read_part<T: DeserializeOwned>(&self, index: usize) -> Result<Option<T>, DataDirError> {
        let name = STATE_FILES[index % STATE_FILES.len()];
        let path = self.path.join(name);
        let bytes = match read_bounded(&path, MAX_STATE_FILE_BYTES) {
            Ok(b) => b,
            Err(DataDirError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let env: Envelope<T> =
            serde_json::from_slice(&bytes).map_err(|source| DataDirError::Corrupt {
                path: path.clone(),
                source,
            })?;
        if env.version != STATE_VERSION {
            return Err(DataDirError::Version {
                path,
                found: env.version,
            });
        }
        self.set_last_digest(index, Some(Sha256::digest(&bytes).into()));
        Ok(Some(env.data))
    }

    fn last_digest(&self, index: usize) -> Option<[u8; 32]> {
        let last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        last.get(index).copied().flatten()
    }

    fn set_last_digest(&self, index: usize, digest: Option<[u8; 32]>) {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(slot) = last.get_mut(index) {
            *slot = digest;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use op_p2p_core::PeerId;
    use op_p2p_core::peers::book::{PeerBook, PeerBookConfig};
    use op_p2p_core::peers::gater::{IpBan, PeerBan};

    /// secp256k1 scalar 1: a valid key anyone can check.
    const ONE: &str = "0000000000000000000000000000000000000000000000000000000000000001";
    /// The group order n: the first invalid scalar.
    const ORDER: &str = "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141";

    fn secret(b: u8) -> [u8; 32] {
        [b; 32]
    }

    /// Writes a file only its owner may read, as a key file must be.
    fn write_private(path: &Path, data: &[u8]) {
        fs::write(path, data).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(path, fs::Permissions::from_mode(0o600)).unwrap();
        }
    }

    #[test]
    fn a_second_open_of_the_same_dir_fails_until_the_first_is_dropped() {
        let tmp = tempfile::tempdir().unwrap();
        let first = DataDir::open(tmp.path()).unwrap();
        match DataDir::open(tmp.path()) {
            Err(DataDirError::InUse { path }) => assert_eq!(path, tmp.path()),
            other => panic!("{other:?}"),
        }
        drop(first);
        DataDir::open(tmp.path()).expect("free again once the first is dropped");
    }

    /// A symlink planted at the temp name is removed, not followed: the file it points to is
    /// untouched and the state lands in the data dir.
    #[cfg(unix)]
    #[test]
    fn a_symlink_at_the_temp_name_is_not_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let victim = tmp.path().join("victim");
        fs::write(&victim, b"precious").unwrap();
        let data = tmp.path().join("data");
        let dir = DataDir::open(&data).unwrap();
        std::os::unix::fs::symlink(&victim, temp_path(&data.join(BANS_FILE))).unwrap();
        dir.save_state(&sample_state()).unwrap();
        assert_eq!(fs::read(&victim).unwrap(), b"precious");
        assert_eq!(dir.load_state().unwrap(), Some(sample_state()));
    }

    #[cfg(unix)]
    #[test]
    fn a_key_file_others_can_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("key.txt");
        write_private(&path, ONE.as_bytes());
        read_key_file(&path).expect("0600 is fine");
        for mode in [0o640, 0o604, 0o644, 0o660] {
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
            match read_key_file(&path) {
                Err(DataDirError::KeyReadableByOthers { mode: m, .. }) => assert_eq!(m, mode),
                other => panic!("{mode:o}: {other:?}"),
            }
        }
    }

    fn sample_state() -> NodeState {
        let peer = keypair_from_secret(secret(7))
            .unwrap()
            .public()
            .to_peer_id();
        let other = keypair_from_secret(secret(8))
            .unwrap()
            .public()
            .to_peer_id();
        let mut book = PeerBook::new(PeerBookConfig::default());
        book.add_addrs(1_000, peer, ["/ip4/10.0.0.1/tcp/9222".parse().unwrap()])
            .unwrap();
        NodeState {
            version: STATE_VERSION,
            gater: GaterSnapshot {
                blocked_peers: vec![other],
                blocked_ips: vec!["192.0.2.1".parse().unwrap()],
                blocked_subnets: vec!["10.0.0.0/8".parse().unwrap()],
                peer_bans: vec![PeerBan {
                    peer,
                    until_ms: 5_000_000,
                }],
                ip_bans: vec![IpBan {
                    ip: "2001:db8::1".parse().unwrap(),
                    until_ms: 6_000_000,
                }],
            },
            peers: book.export(),
            discovery: vec![PersistedEnr {
                enr: "enr:-example".into(),
                last_seen: 42,
            }],
        }
    }

    #[test]
    fn state_round_trips_and_unchanged_parts_are_skipped() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = DataDir::open(tmp.path().join("data")).unwrap();
        assert_eq!(dir.load_state().unwrap(), None, "empty dir has no state");
        let state = sample_state();
        assert_eq!(state.peers.peers.len(), 1);
        assert_eq!(dir.save_state(&state).unwrap(), 3);
        assert_eq!(dir.save_state(&state).unwrap(), 0, "nothing changed");
        let mut changed = state.clone();
        changed.discovery.clear();
        assert_eq!(dir.save_state(&changed).unwrap(), 1, "only discovery.json");

        // A fresh DataDir (a restart) reads back exactly what was saved.
        drop(dir);
        let reopened = DataDir::open(tmp.path().join("data")).unwrap();
        assert_eq!(reopened.load_state().unwrap(), Some(changed.clone()));
        // What it read counts as last written.
        assert_eq!(reopened.save_state(&changed).unwrap(), 0);
        for name in STATE_FILES {
            assert!(tmp.path().join("data").join(name).is_file(), "{name}");
            assert!(!temp_path(&tmp.path().join("data").join(name)).exists());
        }
    }

    /// A prompt write (bans only) leaves the other files as they are on disk, byte for byte.
    #[test]
    fn an_update_writes_only_the_parts_it_holds() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = DataDir::open(tmp.path()).unwrap();
        let state = sample_state();
        assert_eq!(dir.save_state(&state).unwrap(), 3);
        let discovery_before = fs::read(tmp.path().join(DISCOVERY_FILE)).unwrap();
        let peers_before = fs::read(tmp.path().join(PEERS_FILE)).unwrap();

        let mut banned = state.clone();
        banned.gater.blocked_peers.clear();
        banned.discovery.clear();
        banned.peers.peers.clear();
        let update = StateUpdate {
            version: STATE_VERSION,
            gater: Some(banned.gater.clone()),
            peers: None,
            discovery: None,
        };
        assert_eq!(dir.save_update(&update).unwrap(), 1, "bans.json only");
        assert_eq!(
            fs::read(tmp.path().join(DISCOVERY_FILE)).unwrap(),
            discovery_before
        );
        assert_eq!(fs::read(tmp.path().join(PEERS_FILE)).unwrap(), peers_before);
        let loaded = dir.load_state().unwrap().unwrap();
        assert_eq!(loaded.gater, banned.gater);
        assert_eq!(
            (loaded.peers, loaded.discovery),
            (state.peers, state.discovery)
        );
        assert_eq!(dir.save_update(&StateUpdate::default()).unwrap(), 0);
    }

    #[test]
    fn missing_parts_default_and_bans_alone_load() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = DataDir::open(tmp.path()).unwrap();
        let state = sample_state();
        dir.save_state(&state).unwrap();
        fs::remove_file(tmp.path().join(PEERS_FILE)).unwrap();
        fs::remove_file(tmp.path().join(DISCOVERY_FILE)).unwrap();
        drop(dir);
        let loaded = DataDir::open(tmp.path())
            .unwrap()
            .load_state()
            .unwrap()
            .unwrap();
        assert_eq!(loaded.gater, state.gater);
        assert!(loaded.peers.peers.is_empty());
        assert_eq!(loaded.peers.version, SNAPSHOT_VERSION);
        assert!(loaded.discovery.is_empty());
    }

    #[test]
    fn a_crash_leaves_a_temp_file_that_is_ignored_and_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let state = sample_state();
        DataDir::open(tmp.path())
            .unwrap()
            .save_state(&state)
            .unwrap();
        // A crash mid-write: half a new bans file in the temp name, the target intact.
        let stray = temp_path(&tmp.path().join(BANS_FILE));
        fs::write(&stray, b"{\"version\":1,\"da").unwrap();
        let key_stray = temp_path(&tmp.path().join(KEY_FILE));
        fs::write(&key_stray, b"00").unwrap();
        let dir = DataDir::open(tmp.path()).unwrap();
        assert!(
            !stray.exists() && !key_stray.exists(),
            "open removes temp files"
        );
        assert_eq!(dir.load_state().unwrap(), Some(state));
    }

    #[test]
    fn a_truncated_file_is_a_corrupt_error_naming_it() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = DataDir::open(tmp.path()).unwrap();
        dir.save_state(&sample_state()).unwrap();
        let peers = tmp.path().join(PEERS_FILE);
        let bytes = fs::read(&peers).unwrap();
        fs::write(&peers, &bytes[..bytes.len() / 2]).unwrap();
        drop(dir);
        let dir = DataDir::open(tmp.path()).unwrap();
        let err = dir.load_state().unwrap_err();
        match &err {
            DataDirError::Corrupt { path, .. } => assert_eq!(path, &peers),
            other => panic!("{other:?}"),
        }
        assert!(err.to_string().contains("peers.json"), "{err}");
        // An empty file (crash before any byte on a filesystem without rename atomicity).
        fs::write(&peers, b"").unwrap();
        assert!(matches!(
            dir.load_state(),
            Err(DataDirError::Corrupt { path, .. }) if path == peers
        ));
    }

    #[test]
    fn another_version_is_refused_naming_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = DataDir::open(tmp.path()).unwrap();
        fs::write(
            tmp.path().join(DISCOVERY_FILE),
            br#"{"version": 99, "data": []}"#,
        )
        .unwrap();
        match dir.load_state() {
            Err(DataDirError::Version { path, found: 99 }) => {
                assert_eq!(path, tmp.path().join(DISCOVERY_FILE))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_100_mib_file_is_refused_from_its_size() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = DataDir::open(tmp.path()).unwrap();
        let bans = tmp.path().join(BANS_FILE);
        // Sparse: no 100 MiB written, and none read (the error carries the metadata length).
        File::create(&bans).unwrap().set_len(100 << 20).unwrap();
        match dir.load_state() {
            Err(DataDirError::TooLarge { path, len, max }) => {
                assert_eq!(path, bans);
                assert_eq!(len, 100 << 20);
                assert_eq!(max, MAX_STATE_FILE_BYTES);
            }
            other => panic!("{other:?}"),
        }
        // The same bound guards the key file, at its own limit.
        let key = tmp.path().join(KEY_FILE);
        File::create(&key)
            .unwrap()
            .set_len(MAX_KEY_FILE_BYTES + 1)
            .unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).unwrap();
        }
        assert!(matches!(
            dir.load_or_create_key(None, secret(1)),
            Err(DataDirError::TooLarge { len, .. }) if len == MAX_KEY_FILE_BYTES + 1
        ));
    }

    #[test]
    fn read_bounded_stops_one_past_the_limit() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("f");
        fs::write(&p, [0u8; 10]).unwrap();
        assert_eq!(read_bounded(&p, 10).unwrap().len(), 10);
        assert!(matches!(
            read_bounded(&p, 9),
            Err(DataDirError::TooLarge {
                len: 10,
                max: 9,
                ..
            })
        ));
    }

    #[test]
    fn open_refuses_a_file_and_creates_nested_dirs() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("f");
        fs::write(&file, b"").unwrap();
        assert!(matches!(
            DataDir::open(&file),
            Err(DataDirError::NotADirectory { .. })
        ));
        let nested = tmp.path().join("a/b/c");
        assert_eq!(DataDir::open(&nested).unwrap().path(), nested);
        assert!(nested.is_dir());
    }

    #[test]
    fn key_is_created_once_then_read_back() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = DataDir::open(tmp.path()).unwrap();
        let a = dir.load_or_create_key(None, secret(3)).unwrap();
        // A second call with other randomness must keep the existing identity.
        let b = dir.load_or_create_key(None, secret(4)).unwrap();
        assert_eq!(a.public().to_peer_id(), b.public().to_peer_id());
        assert_eq!(
            a.public().to_peer_id(),
            keypair_from_secret(secret(3))
                .unwrap()
                .public()
                .to_peer_id()
        );
        // op-node's format: 64 lowercase hex digits, no prefix, no newline.
        let text = fs::read_to_string(tmp.path().join(KEY_FILE)).unwrap();
        assert_eq!(text, "03".repeat(32));
        assert!(!temp_path(&tmp.path().join(KEY_FILE)).exists());
    }

    #[test]
    fn explicit_key_path_wins_over_the_data_dir() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = DataDir::open(tmp.path().join("data")).unwrap();
        let explicit = tmp.path().join("my_key.txt");
        write_private(&explicit, format!("0x{ONE}\n").as_bytes());
        let k = dir.load_or_create_key(Some(&explicit), secret(3)).unwrap();
        assert_eq!(
            k.public().to_peer_id(),
            keypair_from_secret(hex_secret(ONE))
                .unwrap()
                .public()
                .to_peer_id()
        );
        assert!(!tmp.path().join("data").join(KEY_FILE).exists());
    }

    fn hex_secret(s: &str) -> [u8; 32] {
        let mut out = [0u8; 32];
        alloy_primitives::hex::decode_to_slice(s, &mut out).unwrap();
        out
    }

    #[test]
    fn key_text_formats_follow_op_node() {
        let want = keypair_from_secret(hex_secret(ONE))
            .unwrap()
            .public()
            .to_peer_id();
        let upper = ONE.to_uppercase();
        for ok in [
            ONE.to_string(),
            format!("0x{ONE}"),
            format!("{ONE}\n"),
            format!("  0x{ONE}\r\n\t"),
            upper.clone(),
            format!("0x{upper}"),
        ] {
            let got = parse_key_text(ok.as_bytes()).unwrap_or_else(|e| panic!("{ok:?}: {e}"));
            assert_eq!(got.public().to_peer_id(), want, "{ok:?}");
        }
        for (bad, err) in [
            (format!("0X{ONE}"), KeyError::NotHex), // op-node strips only lowercase 0x
            (format!("0x0x{ONE}"), KeyError::NotHex),
            (format!("{ONE} 00"), KeyError::NotHex),
            (ONE.replace('1', "g"), KeyError::NotHex),
            (ONE[1..].to_string(), KeyError::NotHex),
            (String::new(), KeyError::WrongLength(0)),
            ("0x".to_string(), KeyError::NotHex),
            (ONE[2..].to_string(), KeyError::WrongLength(31)),
            (format!("{ONE}00"), KeyError::WrongLength(33)),
            // A libp2p protobuf-encoded secp256k1 key (type 2, length 32) is not op-node's format.
            (format!("08021220{ONE}"), KeyError::WrongLength(36)),
            ("00".repeat(32), KeyError::InvalidScalar),
            (ORDER.to_string(), KeyError::InvalidScalar),
        ] {
            assert_eq!(parse_key_text(bad.as_bytes()).err(), Some(err), "{bad:?}");
        }
        assert_eq!(parse_key_text(&[0xff, 0xfe]).err(), Some(KeyError::NotHex));
    }

    #[test]
    fn malformed_key_file_is_an_error_naming_it_and_is_not_replaced() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = DataDir::open(tmp.path()).unwrap();
        let path = tmp.path().join(KEY_FILE);
        write_private(&path, b"not a key");
        match dir.load_or_create_key(None, secret(3)) {
            Err(DataDirError::Key { path: p, source }) => {
                assert_eq!(p, path);
                assert_eq!(source, KeyError::NotHex);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(fs::read_to_string(&path).unwrap(), "not a key");
    }

    #[test]
    fn create_key_file_refuses_to_overwrite() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("k.txt");
        let k = create_key_file(&path, secret(5)).unwrap();
        match create_key_file(&path, secret(6)) {
            Err(DataDirError::KeyExists { path: p }) => assert_eq!(p, path),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            read_key_file(&path).unwrap().public().to_peer_id(),
            k.public().to_peer_id()
        );
        assert!(!temp_path(&path).exists());
        // A fresh secret that is not a scalar is refused, nothing written.
        let bad = tmp.path().join("bad.txt");
        assert!(matches!(
            create_key_file(&bad, [0; 32]),
            Err(DataDirError::Key {
                source: KeyError::InvalidScalar,
                ..
            })
        ));
        assert!(!bad.exists());
        // Bare file names live in the current directory; the parent must exist.
        assert!(matches!(
            create_key_file(&tmp.path().join("missing/k.txt"), secret(5)),
            Err(DataDirError::Io { .. })
        ));
    }

    #[test]
    fn encode_key_writes_lowercase_hex_and_ids_are_secp256k1() {
        let k = keypair_from_secret(secret(9)).unwrap();
        assert_eq!(encode_key(&k).unwrap(), "09".repeat(32));
        let peer: PeerId = k.public().to_peer_id();
        assert!(peer.to_string().starts_with("16Uiu2HA"), "{peer}");
    }

    #[cfg(unix)]
    #[test]
    fn permissions_are_private_on_unix() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        let dir = DataDir::open(&data).unwrap();
        dir.load_or_create_key(None, secret(3)).unwrap();
        dir.save_state(&sample_state()).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&data), 0o700);
        assert_eq!(mode(&data.join(KEY_FILE)), 0o600);
        for name in STATE_FILES {
            assert_eq!(mode(&data.join(name)), 0o600, "{name}");
        }
        let explicit = tmp.path().join("explicit.txt");
        create_key_file(&explicit, secret(4)).unwrap();
        assert_eq!(mode(&explicit), 0o600);
    }
}
