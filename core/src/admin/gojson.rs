//! Go `encoding/json` compatibility: the types and serde helpers that make our JSON read and
//! write as op-node's Go values do, where serde's defaults would differ.
//! - [`GoIpNet`]: a subnet as Go's `net.IPNet` object, refused with a typed [`SubnetError`].
//! - [`NodeId`]: go-ethereum's `enode.ID`, bare lowercase hex.
//! - `finite`, `null_if_empty`, `null_as_default`: floats never NaN or infinite, empty lists
//!   written as Go's nil slice (`null`), and Go's `null` lists read as empty.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use alloy_primitives::{hex, keccak256};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use libp2p_identity::PeerId;
use serde::ser::SerializeStruct;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use super::error::echo;
use crate::peers::gater::{canonical_ip, canonical_subnet};

/// Why a Go `net.IPNet` JSON object was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SubnetError {
    /// Not a JSON object.
    #[error("subnet must be an object {{\"IP\":…,\"Mask\":…}}")]
    NotAnObject,
    /// No `IP` string.
    #[error("subnet has no IP string")]
    MissingIp,
    /// No `Mask` string.
    #[error("subnet has no Mask string")]
    MissingMask,
    /// `IP` is not an address.
    #[error("invalid IP address: {0}")]
    BadIp(String),
    /// `Mask` is not standard padded base64.
    #[error("subnet Mask is not base64: {0}")]
    BadMaskEncoding(String),
    /// `Mask` has the wrong length for the address family.
    #[error("subnet Mask has {len} bytes, not {want} for this address")]
    MaskLength {
        /// Decoded length.
        len: usize,
        /// Wanted length.
        want: usize,
    },
    /// `Mask` is not a run of one bits followed by zero bits.
    #[error("subnet Mask is not a canonical prefix mask")]
    NonCanonicalMask,
}

/// A subnet in Go's `net.IPNet` JSON form: `{"IP":"10.0.0.0","Mask":"/wAAAA=="}`, where `IP` is
/// the address text and `Mask` the base64 of the mask bytes, 4 bytes for IPv4 (Go's
/// `net.ParseCIDR` gives a 4-byte mask for an IPv4 CIDR) and 16 for IPv6.
///
/// Reading accepts what Go's gater would: keys in any case (Go's `encoding/json` matches them
/// case-insensitively), unknown keys ignored, an IPv4-mapped IPv6 `IP` as IPv4, and for IPv4 a
/// 16-byte mask whose first 12 bytes are `0xff` (the IPv6 form of the same mask). It refuses a
/// mask of the wrong length or not a prefix mask ([`SubnetError`]). Host bits in `IP` are
/// cleared (Go matches the same addresses either way). Writing always gives the canonical form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GoIpNet(pub IpNet);

impl GoIpNet {
    /// Parses a subnet object.
    pub fn from_json(value: &Value) -> Result<IpNet, SubnetError> {
        let obj = value.as_object().ok_or(SubnetError::NotAnObject)?;
        let mut ip = None;
        let mut mask = None;
        for (k, v) in obj {
            if k.eq_ignore_ascii_case("ip") {
                ip = v.as_str();
            } else if k.eq_ignore_ascii_case("mask") {
                mask = v.as_str();
            }
        }
        let ip = ip.ok_or(SubnetError::MissingIp)?;
        let mask = mask.ok_or(SubnetError::MissingMask)?;
        let addr = canonical_ip(IpAddr::from_str(ip).map_err(|_| SubnetError::BadIp(echo(ip)))?);
        // 16 bytes are 24 base64 characters; refuse anything longer before decoding.
        if mask.len() > 24 {
            return Err(SubnetError::BadMaskEncoding("too long".into()));
        }
        let bytes = data_encoding::BASE64
            .decode(mask.as_bytes())
            .map_err(|e| SubnetError::BadMaskEncoding(e.to_string()))?;
        let net = match addr {
            IpAddr::V4(v4) => {
                let m: [u8; 4] = match bytes.len() {
                    4 => [bytes[0], bytes[1], bytes[2], bytes[3]],
                    16 if bytes[..12].iter().all(|b| *b == 0xff) => {
                        [bytes[12], bytes[13], bytes[14], bytes[15]]
                    }
                    16 => return Err(SubnetError::NonCanonicalMask),
                    len => return Err(SubnetError::MaskLength { len, want: 4 }),
                };
                IpNet::V4(
                    Ipv4Net::with_netmask(v4, Ipv4Addr::from(m))
                        .map_err(|_| SubnetError::NonCanonicalMask)?,
                )
            }
            IpAddr::V6(v6) => {
                let m: [u8; 16] =
                    bytes
                        .as_slice()
                        .try_into()
                        .map_err(|_| SubnetError::MaskLength {
                            len: bytes.len(),
                            want: 16,
                        })?;
                IpNet::V6(
                    Ipv6Net::with_netmask(v6, Ipv6Addr::from(m))
                        .map_err(|_| SubnetError::NonCanonicalMask)?,
                )
            }
        };
        Ok(canonical_subnet(net))
    }

    /// The mask bytes as Go holds them: 4 for IPv4, 16 for IPv6.
    pub fn mask_bytes(&self) -> Vec<u8> {
        match self.0.netmask() {
            IpAddr::V4(m) => m.octets().to_vec(),
            IpAddr::V6(m) => m.octets().to_vec(),
        }
    }
}

impl From<IpNet> for GoIpNet {
    fn from(net: IpNet) -> Self {
        GoIpNet(net)
    }
}

impl Serialize for GoIpNet {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let net = canonical_subnet(self.0);
        let mut st = s.serialize_struct("IPNet", 2)?;
        st.serialize_field("IP", &net.network().to_string())?;
        st.serialize_field(
            "Mask",
            &data_encoding::BASE64.encode(&GoIpNet(net).mask_bytes()),
        )?;
        st.end()
    }
}

impl<'de> Deserialize<'de> for GoIpNet {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        GoIpNet::from_json(&v)
            .map(GoIpNet)
            .map_err(serde::de::Error::custom)
    }
}

/// A discv5 node id: keccak256 of the uncompressed secp256k1 public key (without the `04`
/// prefix). JSON: 64 lowercase hex characters without `0x` (go-ethereum `enode.ID`); reading
/// also accepts a `0x` prefix, as `enode.ParseID` does. All zeros when the key is unknown.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub [u8; 32]);

impl NodeId {
    /// The node id of a peer whose id inlines a secp256k1 public key (every OP Stack peer);
    /// `None` for other key types or hashed ids.
    pub fn from_peer_id(peer: &PeerId) -> Option<NodeId> {
        let mh = peer.as_ref();
        if mh.code() != 0 {
            return None; // not the identity multihash: the key is not inlined
        }
        let key = libp2p_identity::PublicKey::try_decode_protobuf(mh.digest()).ok()?;
        let key = key.try_into_secp256k1().ok()?;
        let uncompressed = key.to_bytes_uncompressed();
        Some(NodeId(keccak256(&uncompressed[1..]).0))
    }
}

impl Serialize for NodeId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(self.0))
    }
}

impl<'de> Deserialize<'de> for NodeId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let h = s.strip_prefix("0x").unwrap_or(&s);
        let mut out = [0u8; 32];
        hex::decode_to_slice(h, &mut out).map_err(serde::de::Error::custom)?;
        Ok(NodeId(out))
    }
}

/// Serialises a float, writing a non-finite one as 0 (Go's encoder would fail the whole call on
/// NaN or ±Inf, and serde_json would write `null`, which Go cannot read into a float64).
pub(super) fn finite<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(if v.is_finite() { *v } else { 0.0 })
}

/// Writes an empty list as `null`, as Go encodes a nil slice.
pub(super) fn null_if_empty<S: Serializer>(v: &[String], s: S) -> Result<S::Ok, S::Error> {
    if v.is_empty() {
        s.serialize_none()
    } else {
        s.collect_seq(v)
    }
}

/// Reads `null` as the default (empty) value, as Go reads `null` into a slice or map.
pub(super) fn null_as_default<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(
    d: D,
) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;
    use crate::admin::test_support::net;

    #[test]
    fn go_ipnet_json_matches_go_encoding() {
        // Go: net.ParseCIDR("10.0.0.0/8") -> {"IP":"10.0.0.0","Mask":"/wAAAA=="} (4-byte mask).
        let cases = [
            ("10.0.0.0/8", r#"{"IP":"10.0.0.0","Mask":"/wAAAA=="}"#),
            ("10.0.0.0/16", r#"{"IP":"10.0.0.0","Mask":"//8AAA=="}"#),
            (
                "192.168.1.0/24",
                r#"{"IP":"192.168.1.0","Mask":"////AA=="}"#,
            ),
            ("1.2.3.4/32", r#"{"IP":"1.2.3.4","Mask":"/////w=="}"#),
            ("0.0.0.0/0", r#"{"IP":"0.0.0.0","Mask":"AAAAAA=="}"#),
            (
                "2001:db8::/32",
                r#"{"IP":"2001:db8::","Mask":"/////wAAAAAAAAAAAAAAAA=="}"#,
            ),
            (
                "fe80::/64",
                r#"{"IP":"fe80::","Mask":"//////////8AAAAAAAAAAA=="}"#,
            ),
        ];
        for (cidr, golden) in cases {
            let n = GoIpNet(net(cidr));
            assert_eq!(serde_json::to_string(&n).unwrap(), golden, "{cidr}");
            let back: GoIpNet = serde_json::from_str(golden).unwrap();
            assert_eq!(back, n);
        }
        // Host bits are cleared on write and read.
        assert_eq!(
            serde_json::to_string(&GoIpNet(net("10.1.2.3/8"))).unwrap(),
            r#"{"IP":"10.0.0.0","Mask":"/wAAAA=="}"#
        );
        let v = json!({"IP": "10.9.9.9", "Mask": "/wAAAA=="});
        assert_eq!(GoIpNet::from_json(&v), Ok(net("10.0.0.0/8")));
        // Go accepts keys in any case and ignores unknown ones.
        let v = json!({"ip": "10.0.0.0", "mask": "/wAAAA==", "extra": 1});
        assert_eq!(GoIpNet::from_json(&v), Ok(net("10.0.0.0/8")));
        // An IPv4 net in 16-byte (IPv4-mapped) form.
        let v = json!({"IP": "::ffff:10.0.0.0", "Mask": "/////////////////wAAAA=="});
        assert_eq!(GoIpNet::from_json(&v), Ok(net("10.0.0.0/8")));
    }

    #[test]
    fn go_ipnet_refuses_bad_shapes_with_typed_errors() {
        let cases = [
            (json!("10.0.0.0/8"), SubnetError::NotAnObject),
            (json!({"Mask": "/wAAAA=="}), SubnetError::MissingIp),
            (json!({"IP": "10.0.0.0"}), SubnetError::MissingMask),
            (
                json!({"IP": "10.0.0.0", "Mask": null}),
                SubnetError::MissingMask,
            ),
            (
                json!({"IP": "10.0.0", "Mask": "/wAAAA=="}),
                SubnetError::BadIp("10.0.0".into()),
            ),
            (
                json!({"IP": "10.0.0.0", "Mask": "/wAAAA"}),
                SubnetError::BadMaskEncoding(String::new()),
            ),
            (
                json!({"IP": "10.0.0.0", "Mask": "/wAA"}),
                SubnetError::MaskLength { len: 3, want: 4 },
            ),
            (
                json!({"IP": "2001:db8::", "Mask": "/wAAAA=="}),
                SubnetError::MaskLength { len: 4, want: 16 },
            ),
            (
                json!({"IP": "10.0.0.0", "Mask": "AP8AAA=="}),
                SubnetError::NonCanonicalMask,
            ),
            (
                json!({"IP": "10.0.0.0", "Mask": "AAAAAAAAAAAAAAAA/wAAAA=="}),
                SubnetError::NonCanonicalMask,
            ),
            (
                json!({"IP": "2001:db8::", "Mask": "/////wAAAAAAAAAAAAAAAQ=="}),
                SubnetError::NonCanonicalMask,
            ),
            (
                json!({"IP": "10.0.0.0", "Mask": "A".repeat(100)}),
                SubnetError::BadMaskEncoding(String::new()),
            ),
        ];
        for (v, want) in cases {
            let got = GoIpNet::from_json(&v);
            match (&got, &want) {
                (Err(SubnetError::BadMaskEncoding(_)), SubnetError::BadMaskEncoding(_)) => {}
                _ => assert_eq!(got, Err(want), "{v}"),
            }
        }
        assert!(serde_json::from_value::<GoIpNet>(json!({"IP": "x", "Mask": ""})).is_err());
    }

    #[test]
    fn node_id_matches_the_eip778_example_key() {
        // EIP-778 example record: this private key has node id a448f24c…17f7.
        let sk = libp2p_identity::secp256k1::SecretKey::try_from_bytes(
            hex::decode("b71c71a67e1177ad4e901695e1b4b9ee17ae16c6668d313eac2f96dbcda3f291")
                .unwrap(),
        )
        .unwrap();
        let kp = libp2p_identity::secp256k1::Keypair::from(sk);
        let p = libp2p_identity::PublicKey::from(kp.public().clone()).to_peer_id();
        assert_eq!(
            hex::encode(NodeId::from_peer_id(&p).unwrap().0),
            "a448f24c6d18e575453db13171562b71999873db5b286df957af199ec94617f7"
        );
        // A hashed (sha2-256) peer id does not inline its key: no node id.
        let mut bytes = vec![0x12, 0x20];
        bytes.extend_from_slice(&[9u8; 32]);
        let hashed = PeerId::from_bytes(&bytes).unwrap();
        assert_eq!(NodeId::from_peer_id(&hashed), None);
    }

    proptest! {
        /// Any IPv4 or IPv6 subnet survives the Go JSON round trip in canonical form.
        #[test]
        fn go_ipnet_round_trips(a in any::<u32>(), p4 in 0u8..=32, b in any::<u128>(), p6 in 0u8..=128) {
            for n in [
                IpNet::new(IpAddr::from(Ipv4Addr::from(a)), p4).unwrap(),
                IpNet::new(IpAddr::from(Ipv6Addr::from(b)), p6).unwrap(),
            ] {
                let v = serde_json::to_value(GoIpNet(n)).unwrap();
                let back = GoIpNet::from_json(&v);
                prop_assert_eq!(back, Ok(canonical_subnet(n)));
            }
        }
    }
}
