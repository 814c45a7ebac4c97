//! Block signatures (spec §4): payload hash, signing hash, recovery, and signing for sequencers.
//!
//! `signing_hash = keccak256(domain(32) ‖ uint256_be(chain_id) ‖ keccak256(signed_bytes))` with
//! the all-zero "blocks v1" domain, signed as `r ‖ s ‖ v`, v ∈ {0, 1}. No EIP-155 or EIP-191
//! prefix. Recovery uses libsecp256k1 by default (feature `secp256k1`) or pure-Rust k256
//! (feature `k256`); high-S signatures are accepted (they are normalised before recovery).

use alloy_primitives::{Address, B256, Signature, U256, keccak256};

#[cfg(not(any(feature = "secp256k1", feature = "k256")))]
compile_error!("op-p2p-core needs a signature backend: enable feature `secp256k1` or `k256`");

/// The signing domain of block gossip: 32 zero bytes.
pub const BLOCK_SIGNING_DOMAIN: B256 = B256::ZERO;

/// `keccak256(signed_bytes)`; on v3/v4 the signed bytes include the beacon root prefix.
pub fn payload_hash(signed: &[u8]) -> B256 {
    keccak256(signed)
}

/// `keccak256(domain ‖ uint256_be(chain_id) ‖ payload_hash)`.
pub fn signing_hash(domain: B256, chain_id: u64, payload_hash: B256) -> B256 {
    let mut msg = [0u8; 96];
    msg[..32].copy_from_slice(domain.as_slice());
    msg[32..64].copy_from_slice(&U256::from(chain_id).to_be_bytes::<32>());
    msg[64..].copy_from_slice(payload_hash.as_slice());
    keccak256(msg)
}

/// The signing hash of block gossip for these signed bytes.
pub fn block_signing_hash(chain_id: u64, signed: &[u8]) -> B256 {
    signing_hash(BLOCK_SIGNING_DOMAIN, chain_id, payload_hash(signed))
}

/// Why a signature did not yield an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecoverError {
    /// `r` or `s` out of range, or no point recovers.
    #[error("signature does not recover a public key")]
    Unrecoverable,
}

/// Recovers the address that signed `hash`.
pub fn recover_signer(signature: &Signature, hash: &B256) -> Result<Address, RecoverError> {
    signature
        .recover_address_from_prehash(hash)
        .map_err(|_| RecoverError::Unrecoverable)
}

/// Why a key could not be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// Not a valid secp256k1 secret scalar (zero, or not below the group order).
    #[error("not a valid secp256k1 secret key")]
    Invalid,
}

/// A sequencer's block-signing key.
#[derive(Clone)]
pub struct SequencerKey {
    #[cfg(feature = "secp256k1")]
    key: secp256k1::SecretKey,
    #[cfg(all(feature = "k256", not(feature = "secp256k1")))]
    key: k256::ecdsa::SigningKey,
    address: Address,
}

impl std::fmt::Debug for SequencerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        f.debug_struct("SequencerKey")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

impl SequencerKey {
    /// A key from its 32 secret bytes.
    pub fn from_bytes(secret: &[u8; 32]) -> Result<Self, KeyError> {
        #[cfg(feature = "secp256k1")]
        {
            let key =
                secp256k1::SecretKey::from_byte_array(*secret).map_err(|_| KeyError::Invalid)?;
            let public = secp256k1::PublicKey::from_secret_key(secp256k1::SECP256K1, &key);
            let address = Address::from_raw_public_key(&public.serialize_uncompressed()[1..]);
            Ok(Self { key, address })
        }
        #[cfg(all(feature = "k256", not(feature = "secp256k1")))]
        {
            let key = k256::ecdsa::SigningKey::from_slice(secret).map_err(|_| KeyError::Invalid)?;
            let address = Address::from_private_key(&key);
            Ok(Self { key, address })
        }
    }

    /// The Ethereum address of this key (what nodes configure as the unsafe block signer).
    pub fn address(&self) -> Address {
        self.address
    }

    /// Signs a 32-byte hash, returning `(r, s, v)` with low S and v ∈ {0, 1} (RFC 6979,
    /// deterministic).
    pub fn sign_hash(&self, hash: &B256) -> Signature {
        #[cfg(feature = "secp256k1")]
        {
            let msg = secp256k1::Message::from_digest(hash.0);
            let sig = secp256k1::SECP256K1.sign_ecdsa_recoverable(msg, &self.key);
            let (recid, bytes) = sig.serialize_compact();
            Signature::new(
                U256::from_be_slice(&bytes[..32]),
                U256::from_be_slice(&bytes[32..]),
                i32::from(recid) == 1,
            )
        }
        #[cfg(all(feature = "k256", not(feature = "secp256k1")))]
        {
            // Signing a 32-byte prehash with a valid key cannot fail in k256.
            let (sig, recid) = self
                .key
                .sign_prehash_recoverable(hash.as_slice())
                .expect("k256 signs any 32-byte prehash");
            Signature::from_signature_and_parity(sig, recid.is_y_odd())
        }
    }

    /// Signs block gossip: the signature over `block_signing_hash(chain_id, signed)`.
    pub fn sign_block(&self, chain_id: u64, signed: &[u8]) -> Signature {
        self.sign_hash(&block_signing_hash(chain_id, signed))
    }
}

/// Signs a payload as `key` and encodes it for the wire: what a sequencer publishes.
pub fn sign_block_message(
    key: &SequencerKey,
    chain_id: u64,
    payload: &op_alloy_rpc_types_engine::OpExecutionPayload,
    parent_beacon_block_root: Option<B256>,
) -> Result<Vec<u8>, crate::gossip::wire::EncodeError> {
    let signed = crate::gossip::wire::signed_bytes(payload, parent_beacon_block_root)?;
    let signature = key.sign_block(chain_id, &signed);
    crate::gossip::wire::encode_message(&signature, &signed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize)]
    struct Vectors {
        vectors: Vec<Vector>,
    }
    #[derive(serde::Deserialize)]
    struct Vector {
        domain_hex: String,
        chain_id: u64,
        payload_hex: String,
        #[serde(default)]
        payload_hash_hex: Option<String>,
        signing_hash_hex: String,
    }

    #[test]
    fn signing_hash_matches_op_node_vectors() {
        let v: Vectors =
            serde_json::from_value(crate::op_node_vectors("block_signing_hash.json")).unwrap();
        assert_eq!(v.vectors.len(), 2);
        for case in v.vectors {
            let payload = hex::decode(&case.payload_hex).unwrap();
            let ph = payload_hash(&payload);
            if let Some(expected) = case.payload_hash_hex {
                assert_eq!(hex::encode(ph), expected);
            }
            let domain = B256::from_slice(&hex::decode(&case.domain_hex).unwrap());
            assert_eq!(
                hex::encode(signing_hash(domain, case.chain_id, ph)),
                case.signing_hash_hex
            );
            if domain == B256::ZERO {
                assert_eq!(
                    hex::encode(block_signing_hash(case.chain_id, &payload)),
                    case.signing_hash_hex
                );
            }
        }
    }

    #[test]
    fn sign_then_recover_round_trips() {
        let key = SequencerKey::from_bytes(&[0x42; 32]).unwrap();
        let h = block_signing_hash(10, b"some block");
        let sig = key.sign_hash(&h);
        assert_eq!(recover_signer(&sig, &h).unwrap(), key.address());
        // Another chain id gives another hash, so another address recovers.
        let other = block_signing_hash(11, b"some block");
        assert_ne!(recover_signer(&sig, &other).ok(), Some(key.address()));
    }

    #[test]
    fn known_key_has_known_address() {
        // The first anvil/hardhat development key.
        let secret: [u8; 32] =
            hex::decode("ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80")
                .unwrap()
                .try_into()
                .unwrap();
        let key = SequencerKey::from_bytes(&secret).unwrap();
        assert_eq!(
            key.address(),
            "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
                .parse::<Address>()
                .unwrap()
        );
        assert!(format!("{key:?}").contains("address"));
        assert!(!format!("{key:?}").contains("ac0974"));
    }

    #[test]
    fn high_s_signatures_recover_the_same_signer() {
        // secp256k1 group order n: (r, n - s, !v) is the same signature with high S.
        let n = U256::from_str_radix(
            "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141",
            16,
        )
        .unwrap();
        let key = SequencerKey::from_bytes(&[7; 32]).unwrap();
        let h = block_signing_hash(901, b"payload");
        let low = key.sign_hash(&h);
        let high = Signature::new(low.r(), n - low.s(), !low.v());
        assert!(high.s() > n / U256::from(2));
        assert_eq!(recover_signer(&high, &h).unwrap(), key.address());
    }

    #[test]
    fn invalid_keys_and_signatures_are_errors() {
        assert!(SequencerKey::from_bytes(&[0; 32]).is_err());
        assert!(SequencerKey::from_bytes(&[0xff; 32]).is_err());
        let zero = Signature::new(U256::ZERO, U256::ZERO, false);
        assert_eq!(
            recover_signer(&zero, &B256::ZERO),
            Err(RecoverError::Unrecoverable)
        );
    }
}
