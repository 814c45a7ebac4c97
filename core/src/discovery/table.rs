//! A bounded table of discovered records for our chain (spec §7.3), with explicit expiry and
//! plain-data persistence.
//!
//! Only records that pass [`accept_enr`] (op-node's filter plus a dialable address) get in, so
//! every entry is a ready [`DialCandidate`]. One entry per discv5 node id:
//! - a record with a higher ENR `seq` replaces the one held; the same `seq` only refreshes the
//!   last-seen time; a lower `seq` is stale information and is ignored (last-seen unchanged);
//! - last-seen never moves backwards (a clock step back cannot make an entry look older);
//! - **bound**: at most [`TableConfig::max_entries`] (default [`DEFAULT_MAX_ENTRIES`] = 2,048);
//!   inserting a new node into a full table evicts the entry with the **oldest last-seen time**
//!   (ties broken by node id), i.e. the address op-node would let lapse first;
//! - **quota per subnet**: at most [`TableConfig::max_per_subnet`] (default
//!   [`DEFAULT_MAX_PER_SUBNET`] = 8) entries whose first dial address lies in one IPv4 /24 or
//!   IPv6 /64 ([`quota_subnet`]). A new node in a subnet at its quota evicts the oldest entry
//!   of **that subnet**, never one of another: records injected or churned from one range
//!   (any discv5 node can hand us records at will, and they are persisted and seed the next
//!   start) can only displace each other. Loopback is exempt when the owner says so
//!   ([`DiscoveryTable::exempt_loopback`], the node's
//!   [`GaterConfig::exempt_loopback_from_caps`](crate::peers::gater::GaterConfig::exempt_loopback_from_caps)).
//!   The quota holds across export and import, which inserts through the same rule. ⚠ A
//!   record's IP is its signer's claim, so the quota bounds what one range can take, not what
//!   a forger listing addresses across many ranges can; op-node keeps no such table (go-ethereum's
//!   discv5 table has a similar limit, 10 per /24);
//! - **expiry**: [`DiscoveryTable::expire`] drops entries not seen for
//!   [`TableConfig::max_age_ms`] (default 24 h, op-node's discovered-address TTL). It runs on
//!   the owner's ticks; [`DiscoveryTable::next_expiry`] says when the next one is due.

use std::collections::{BTreeSet, HashMap};

use ::enr::{Enr, EnrKey, NodeId};
use ipnet::IpNet;

use crate::peers::gater::quota_subnet;

use super::{
    DefaultKey,
    enr::{DialCandidate, Refusal, accept_enr, parse_enr},
};

/// Default bound on entries: comfortably above the peer targets (op-node: 20 low, 30 high)
/// and a few DHT walks' worth of matches, while staying small in memory (~1 KiB per entry).
pub const DEFAULT_MAX_ENTRIES: usize = 2048;

/// Default maximum age of an entry: 24 h, how long op-node keeps discovered addresses.
pub const DEFAULT_MAX_AGE_MS: u64 = 24 * 60 * 60 * 1000;

/// Default quota of entries per IPv4 /24 or IPv6 /64: 8, a few nodes of one operator or one
/// cloud range, while 256 ranges are needed to fill the default table (go-ethereum's discv5
/// table allows 10 per /24).
pub const DEFAULT_MAX_PER_SUBNET: usize = 8;

/// Limits of a [`DiscoveryTable`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableConfig {
    /// Most entries held (at least 1).
    pub max_entries: usize,
    /// Entries not seen for this long are dropped by [`DiscoveryTable::expire`].
    pub max_age_ms: u64,
    /// Most entries per IPv4 /24 or IPv6 /64 (at least 1; `usize::MAX` turns the quota off).
    pub max_per_subnet: usize,
}

impl Default for TableConfig {
    fn default() -> Self {
        Self {
            max_entries: DEFAULT_MAX_ENTRIES,
            max_age_ms: DEFAULT_MAX_AGE_MS,
            max_per_subnet: DEFAULT_MAX_PER_SUBNET,
        }
    }
}

/// One held record.
#[derive(Clone, Debug)]
pub struct TableEntry<K: EnrKey = DefaultKey> {
    /// The newest record seen for this node.
    pub enr: Enr<K>,
    /// What to dial, derived from `enr`.
    pub candidate: DialCandidate,
    /// When the node was last seen (Unix ms).
    pub last_seen: u64,
}

/// What [`DiscoveryTable::insert`] did with an accepted record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Insert {
    /// A node not held before. `evicted` is the node dropped to make room, if any.
    New {
        /// The node evicted to stay within the bound.
        evicted: Option<NodeId>,
    },
    /// A higher `seq` replaced the held record.
    Updated,
    /// Same `seq`: last-seen refreshed.
    Refreshed,
    /// Lower `seq` than held: ignored.
    Stale,
    /// A new node, but the table is full (or its subnet is at its quota) and its last-seen
    /// time is older than every entry held there (only possible when importing or when the
    /// clock stepped back): not stored.
    Crowded,
}

/// One persisted entry: plain data for the runtime to write and read back.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PersistedEnr {
    /// The record as `enr:<base64url>`.
    pub enr: String,
    /// Last seen (Unix ms).
    pub last_seen: u64,
}

/// What [`DiscoveryTable::import`] did with a snapshot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Entries inserted, updated or refreshed.
    pub imported: usize,
    /// Valid entries not stored: stale `seq`, or older than everything in a full table.
    pub crowded_out: usize,
    /// Entries whose text did not parse or verify.
    pub invalid: usize,
    /// Entries that parse but fail the filter (other chain, no address, ...).
    pub refused: usize,
    /// Entries already older than the maximum age.
    pub expired: usize,
    /// Entries beyond the processing limit (4 × `max_entries`), not looked at.
    pub over_limit: usize,
}

/// The bounded table of discovered, accepted records. See the module docs for the rules.
#[derive(Clone, Debug)]
pub struct DiscoveryTable<K: EnrKey = DefaultKey> {
    chain_id: u64,
    config: TableConfig,
    entries: HashMap<NodeId, TableEntry<K>>,
    /// `(last_seen, node id)` of every entry: eviction and expiry order.
    by_age: BTreeSet<(u64, [u8; 32])>,
    /// Loopback entries skip the subnet quota.
    exempt_loopback: bool,
}

impl<K: EnrKey> DiscoveryTable<K> {
    /// An empty table for records of `chain_id`.
    pub fn new(chain_id: u64, config: TableConfig) -> Self {
        Self {
            chain_id,
            config: TableConfig {
                max_entries: config.max_entries.max(1),
                max_per_subnet: config.max_per_subnet.max(1),
                ..config
            },
            entries: HashMap::new(),
            by_age: BTreeSet::new(),
            exempt_loopback: false,
        }
    }

    /// Loopback entries skip the subnet quota, or not (the default): the node turns it on with
    /// the gater's loopback exemption, for many nodes on one host.
    pub fn exempt_loopback(mut self, on: bool) -> Self {
        self.exempt_loopback = on;
        self
    }

    /// The subnet the quota counts an entry in: that of its first dial address.
    fn subnet_of(&self, candidate: &DialCandidate) -> Option<IpNet> {
        candidate
            .addrs
            .first()
            .and_then(|a| {
                a.iter().find_map(|p| match p {
                    multiaddr::Protocol::Ip4(ip) => Some(std::net::IpAddr::V4(ip)),
                    multiaddr::Protocol::Ip6(ip) => Some(std::net::IpAddr::V6(ip)),
                    _ => None,
                })
            })
            .and_then(|ip| quota_subnet(ip, self.exempt_loopback))
    }

    /// Entries in `net` other than `except`, and the oldest of them (`(last_seen, id)`).
    /// A scan: at most `max_entries`, once per insert of a new node.
    fn in_subnet(&self, net: IpNet, except: Option<NodeId>) -> (usize, Option<(u64, NodeId)>) {
        let mut count = 0;
        let mut oldest: Option<(u64, NodeId)> = None;
        for (id, e) in &self.entries {
            if Some(*id) == except || self.subnet_of(&e.candidate) != Some(net) {
                continue;
            }
            count += 1;
            let key = (e.last_seen, *id);
            if oldest.is_none_or(|(s, i)| (key.0, key.1.raw()) < (s, i.raw())) {
                oldest = Some(key);
            }
        }
        (count, oldest)
    }

    /// How many entries lie in `ip`'s quota subnet (0 for an exempt loopback address).
    pub fn entries_in_subnet_of(&self, ip: std::net::IpAddr) -> usize {
        quota_subnet(ip, self.exempt_loopback).map_or(0, |net| self.in_subnet(net, None).0)
    }

    /// The limits in force.
    pub fn config(&self) -> TableConfig {
        self.config
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entry of a node.
    pub fn get(&self, node_id: &NodeId) -> Option<&TableEntry<K>> {
        self.entries.get(node_id)
    }

    /// All entries, most recently seen first.
    pub fn iter(&self) -> impl Iterator<Item = &TableEntry<K>> {
        self.by_age
            .iter()
            .rev()
            .filter_map(|(_, id)| self.entries.get(&NodeId::new(id)))
    }

    /// Filters a discovered record ([`accept_enr`]) and stores it, seen at `now` (Unix ms).
    pub fn insert(&mut self, now: u64, enr: Enr<K>) -> Result<Insert, Refusal> {
        let candidate = accept_enr(&enr, self.chain_id)?;
        Ok(self.upsert(now, enr, candidate))
    }

    fn upsert(&mut self, now: u64, enr: Enr<K>, candidate: DialCandidate) -> Insert {
        let id = enr.node_id();
        if let Some(held) = self.entries.get_mut(&id) {
            if enr.seq() < held.enr.seq() {
                return Insert::Stale;
            }
            let outcome = if enr.seq() > held.enr.seq() {
                held.enr = enr;
                held.candidate = candidate;
                Insert::Updated
            } else {
                Insert::Refreshed
            };
            let seen = held.last_seen.max(now);
            if seen != held.last_seen {
                self.by_age.remove(&(held.last_seen, id.raw()));
                self.by_age.insert((seen, id.raw()));
                held.last_seen = seen;
            }
            if outcome == Insert::Updated {
                // A new record may move the node into another subnet: keep that one within
                // its quota, at the expense of its own oldest entries.
                self.enforce_quota(id);
            }
            return outcome;
        }
        let subnet = self.subnet_of(&candidate);
        let mut evicted = None;
        if let Some(net) = subnet {
            let (count, oldest) = self.in_subnet(net, None);
            if count >= self.config.max_per_subnet {
                match oldest {
                    Some((seen, _)) if now < seen => return Insert::Crowded,
                    Some((_, victim)) => {
                        self.remove(&victim);
                        evicted = Some(victim);
                    }
                    None => {}
                }
            }
        }
        let evicted = if evicted.is_some() {
            evicted
        } else if self.entries.len() >= self.config.max_entries {
            if self.by_age.first().is_some_and(|&(oldest, _)| now < oldest) {
                return Insert::Crowded;
            }
            self.pop_oldest()
        } else {
            None
        };
        self.by_age.insert((now, id.raw()));
        self.entries.insert(
            id,
            TableEntry {
                enr,
                candidate,
                last_seen: now,
            },
        );
        Insert::New { evicted }
    }

    /// Evicts the oldest entries of `id`'s subnet other than `id` until it is within quota.
    fn enforce_quota(&mut self, id: NodeId) {
        let Some(net) = self
            .entries
            .get(&id)
            .and_then(|e| self.subnet_of(&e.candidate))
        else {
            return;
        };
        loop {
            let (others, oldest) = self.in_subnet(net, Some(id));
            match oldest {
                Some((_, victim)) if others >= self.config.max_per_subnet => {
                    self.remove(&victim);
                }
                _ => return,
            }
        }
    }

    fn pop_oldest(&mut self) -> Option<NodeId> {
        let (_, raw) = self.by_age.pop_first()?;
        let id = NodeId::new(&raw);
        self.entries.remove(&id);
        Some(id)
    }

    /// Removes a node (e.g. after repeated dial failures).
    pub fn remove(&mut self, node_id: &NodeId) -> Option<TableEntry<K>> {
        let entry = self.entries.remove(node_id)?;
        self.by_age.remove(&(entry.last_seen, node_id.raw()));
        Some(entry)
    }

    /// Keeps only the entries `keep` says yes to; returns how many were dropped (for a policy
    /// applied to a restored table, such as the node's address policy).
    pub fn retain(&mut self, mut keep: impl FnMut(&TableEntry<K>) -> bool) -> usize {
        let drop: Vec<(u64, [u8; 32])> = self
            .entries
            .iter()
            .filter(|(_, e)| !keep(e))
            .map(|(id, e)| (e.last_seen, id.raw()))
            .collect();
        for (seen, raw) in &drop {
            self.entries.remove(&NodeId::new(raw));
            self.by_age.remove(&(*seen, *raw));
        }
        drop.len()
    }

    /// Drops every entry last seen `max_age_ms` or more before `now`; returns how many.
    pub fn expire(&mut self, now: u64) -> usize {
        let mut dropped = 0;
        while let Some(&(seen, raw)) = self.by_age.first() {
            if now.saturating_sub(seen) < self.config.max_age_ms {
                break;
            }
            self.by_age.pop_first();
            self.entries.remove(&NodeId::new(&raw));
            dropped += 1;
        }
        dropped
    }

    /// When the oldest entry expires (Unix ms), for the owner's `poll_timeout`.
    pub fn next_expiry(&self) -> Option<u64> {
        self.by_age
            .first()
            .map(|&(seen, _)| seen.saturating_add(self.config.max_age_ms))
    }

    /// The table as plain data, most recently seen first.
    pub fn export(&self) -> Vec<PersistedEnr> {
        self.iter()
            .map(|e| PersistedEnr {
                enr: e.enr.to_base64(),
                last_seen: e.last_seen,
            })
            .collect()
    }

    /// Loads a snapshot, revalidating every record: text bound, signature, filter, age. Bad
    /// entries are skipped and counted, never a panic. A last-seen time in the future (clock
    /// stepped back, or a corrupt file) is clamped to `now`. At most 4 × `max_entries` entries
    /// are looked at; the table bound and eviction rule apply as for [`Self::insert`].
    pub fn import(&mut self, now: u64, snapshot: &[PersistedEnr]) -> ImportReport {
        let limit = self.config.max_entries.saturating_mul(4);
        let mut report = ImportReport {
            over_limit: snapshot.len().saturating_sub(limit),
            ..ImportReport::default()
        };
        for item in snapshot.iter().take(limit) {
            let seen = item.last_seen.min(now);
            if now - seen >= self.config.max_age_ms {
                report.expired += 1;
                continue;
            }
            let enr = match parse_enr::<K>(&item.enr) {
                Ok(enr) => enr,
                Err(err) => {
                    tracing::debug!(%err, "skipping persisted discovery record");
                    report.invalid += 1;
                    continue;
                }
            };
            match self.insert(seen, enr) {
                Ok(Insert::Stale | Insert::Crowded) => report.crowded_out += 1,
                Ok(_) => report.imported += 1,
                Err(refusal) => {
                    tracing::debug!(%refusal, "persisted discovery record refused");
                    report.refused += 1;
                }
            }
        }
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::enr::tests::{key, op_record, record};
    use crate::discovery::{Enr as DefaultEnr, OpStackEntry};
    use std::net::Ipv4Addr;

    const H: u64 = 60 * 60 * 1000;

    /// A table without the subnet quota: every `rec` shares 10.0.0.1.
    fn table(max_entries: usize) -> DiscoveryTable {
        DiscoveryTable::new(
            10,
            TableConfig {
                max_entries,
                max_per_subnet: usize::MAX,
                ..TableConfig::default()
            },
        )
    }

    fn rec(n: u8, seq: u64) -> DefaultEnr {
        op_record(&key(n), seq, 10)
    }

    #[test]
    fn defaults_are_documented_values() {
        let c = TableConfig::default();
        assert_eq!(c.max_entries, 2048);
        assert_eq!(c.max_age_ms, 24 * H);
        assert_eq!(c.max_per_subnet, 8);
        assert_eq!(table(0).config().max_entries, 1, "bound is at least 1");
    }

    #[test]
    fn insert_filters_and_keeps_the_higher_seq() {
        let mut t = table(10);
        assert_eq!(
            t.insert(1_000, rec(1, 5)),
            Ok(Insert::New { evicted: None })
        );
        let id = rec(1, 5).node_id();

        // Same seq refreshes last seen only.
        assert_eq!(t.insert(2_000, rec(1, 5)), Ok(Insert::Refreshed));
        assert_eq!(t.get(&id).unwrap().last_seen, 2_000);

        // Lower seq is stale: record and last seen kept.
        assert_eq!(t.insert(3_000, rec(1, 4)), Ok(Insert::Stale));
        assert_eq!(t.get(&id).unwrap().enr.seq(), 5);
        assert_eq!(t.get(&id).unwrap().last_seen, 2_000);

        // Higher seq replaces; a clock that went back does not age the entry.
        assert_eq!(t.insert(1_500, rec(1, 6)), Ok(Insert::Updated));
        let e = t.get(&id).unwrap();
        assert_eq!((e.enr.seq(), e.candidate.seq, e.last_seen), (6, 6, 2_000));
        assert_eq!(t.len(), 1);

        // Wrong chain and undialable records are refused with their reason.
        let other = op_record(&key(2), 1, 8453);
        assert_eq!(
            t.insert(1, other),
            Err(Refusal::WrongChain {
                ours: 10,
                theirs: 8453
            })
        );
        let no_addr = record(&key(3), 1, Some(OpStackEntry::new(10).to_rlp()), None);
        assert_eq!(t.insert(1, no_addr), Err(Refusal::NoDialableAddress));
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn full_table_evicts_the_oldest_last_seen() {
        let mut t = table(3);
        for n in 1..=3u8 {
            t.insert(u64::from(n) * 1_000, rec(n, 1)).unwrap();
        }
        // Refresh node 1 so node 2 becomes the oldest.
        t.insert(5_000, rec(1, 1)).unwrap();
        assert_eq!(
            t.insert(6_000, rec(4, 1)),
            Ok(Insert::New {
                evicted: Some(rec(2, 1).node_id())
            })
        );
        assert_eq!(t.len(), 3);
        assert!(t.get(&rec(2, 1).node_id()).is_none());
        // Updating a held node never evicts.
        assert_eq!(t.insert(7_000, rec(3, 2)), Ok(Insert::Updated));
        assert_eq!(t.len(), 3);
        // Most recently seen first.
        let order: Vec<u64> = t.iter().map(|e| e.last_seen).collect();
        assert_eq!(order, vec![7_000, 6_000, 5_000]);
    }

    #[test]
    fn bound_holds_under_many_inserts() {
        let mut t = table(16);
        for n in 1..=200u8 {
            t.insert(u64::from(n), rec(n, 1)).unwrap();
            assert!(t.len() <= 16);
        }
        assert_eq!(t.len(), 16);
        // The 16 most recent survive.
        assert!(t.iter().all(|e| e.last_seen > 184));
    }

    #[test]
    fn expire_drops_entries_past_max_age() {
        let mut t = table(10);
        t.insert(0, rec(1, 1)).unwrap();
        t.insert(10 * H, rec(2, 1)).unwrap();
        assert_eq!(t.next_expiry(), Some(24 * H));
        assert_eq!(t.expire(24 * H - 1), 0);
        assert_eq!(t.expire(24 * H), 1);
        assert_eq!(t.len(), 1);
        assert_eq!(t.next_expiry(), Some(34 * H));
        // Re-seeing a node pushes its expiry out.
        t.insert(30 * H, rec(2, 1)).unwrap();
        assert_eq!(t.expire(40 * H), 0);
        assert_eq!(t.expire(54 * H), 1);
        assert!(t.is_empty());
        assert_eq!(t.next_expiry(), None);
    }

    #[test]
    fn remove_keeps_the_index_consistent() {
        let mut t = table(2);
        t.insert(1, rec(1, 1)).unwrap();
        t.insert(2, rec(2, 1)).unwrap();
        assert!(t.remove(&rec(1, 1).node_id()).is_some());
        assert!(t.remove(&rec(1, 1).node_id()).is_none());
        assert_eq!(t.next_expiry(), Some(2 + DEFAULT_MAX_AGE_MS));
        t.insert(3, rec(3, 1)).unwrap();
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn export_import_round_trip() {
        let mut t = table(10);
        for n in 1..=5u8 {
            t.insert(u64::from(n) * 1_000, rec(n, u64::from(n)))
                .unwrap();
        }
        let snap = t.export();
        assert_eq!(snap.len(), 5);
        assert!(snap.iter().all(|p| p.enr.starts_with("enr:")));
        assert_eq!(snap[0].last_seen, 5_000);

        let mut back = table(10);
        let report = back.import(6_000, &snap);
        assert_eq!(
            report,
            ImportReport {
                imported: 5,
                ..ImportReport::default()
            }
        );
        for e in t.iter() {
            let b = back.get(&e.enr.node_id()).unwrap();
            assert_eq!((b.last_seen, b.enr.seq()), (e.last_seen, e.enr.seq()));
            assert_eq!(b.candidate, e.candidate);
        }
    }

    #[test]
    fn import_skips_and_counts_bad_entries() {
        let good = |n: u8, seen: u64| PersistedEnr {
            enr: rec(n, 1).to_base64(),
            last_seen: seen,
        };
        let mut tampered = rec(2, 1).to_base64().into_bytes();
        tampered[12] = if tampered[12] == b'A' { b'B' } else { b'A' };
        let snapshot = vec![
            good(1, 100 * H),
            PersistedEnr {
                enr: String::from_utf8(tampered).unwrap(),
                last_seen: 100 * H,
            },
            PersistedEnr {
                enr: "enr:garbage".into(),
                last_seen: 100 * H,
            },
            PersistedEnr {
                enr: format!("enr:{}", "A".repeat(1 << 16)),
                last_seen: 100 * H,
            },
            PersistedEnr {
                enr: String::new(),
                last_seen: 100 * H,
            },
            PersistedEnr {
                enr: op_record(&key(3), 1, 8453).to_base64(),
                last_seen: 100 * H,
            },
            PersistedEnr {
                enr: record(&key(4), 1, None, Some((Ipv4Addr::new(1, 1, 1, 1), 1))).to_base64(),
                last_seen: 100 * H,
            },
            good(5, 70 * H),   // 30 h old: expired
            good(6, u64::MAX), // from the future: clamped to now
        ];
        let mut t = table(10);
        let report = t.import(100 * H, &snapshot);
        assert_eq!(
            report,
            ImportReport {
                imported: 2,
                invalid: 4,
                refused: 2,
                expired: 1,
                crowded_out: 0,
                over_limit: 0,
            }
        );
        assert_eq!(t.get(&rec(6, 1).node_id()).unwrap().last_seen, 100 * H);
    }

    #[test]
    fn import_is_bounded() {
        let mut t = table(2);
        let snapshot: Vec<PersistedEnr> = (1..=12u8)
            .map(|n| PersistedEnr {
                enr: rec(n, 1).to_base64(),
                last_seen: u64::from(n),
            })
            .collect();
        let report = t.import(100, &snapshot);
        assert_eq!(report.over_limit, 4);
        assert_eq!(report.imported, 8);
        assert_eq!(t.len(), 2);
        // The two most recently seen of those looked at survive.
        let mut seen: Vec<u64> = t.iter().map(|e| e.last_seen).collect();
        seen.sort();
        assert_eq!(seen, vec![7, 8]);

        // Older entries cannot crowd out newer ones in a full table, whatever the order.
        let mut t = table(2);
        let newest_first: Vec<PersistedEnr> = snapshot[..8].iter().rev().cloned().collect();
        let report = t.import(100, &newest_first);
        assert_eq!((report.imported, report.crowded_out), (2, 6));
        let mut seen: Vec<u64> = t.iter().map(|e| e.last_seen).collect();
        seen.sort();
        assert_eq!(seen, vec![7, 8]);
    }

    #[test]
    fn a_stepped_back_clock_cannot_evict_newer_entries() {
        let mut t = table(1);
        t.insert(5_000, rec(1, 1)).unwrap();
        assert_eq!(t.insert(4_000, rec(2, 1)), Ok(Insert::Crowded));
        assert!(t.get(&rec(1, 1).node_id()).is_some());
        assert_eq!(
            t.insert(5_000, rec(2, 1)),
            Ok(Insert::New {
                evicted: Some(rec(1, 1).node_id())
            })
        );
    }
}

#[cfg(test)]
mod quota_tests {
    use super::*;
    use crate::discovery::Enr as DefaultEnr;
    use crate::testkit::enr;
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    const CHAIN: u64 = 10;

    fn at(i: u64, ip: IpAddr) -> DefaultEnr {
        enr(i, CHAIN, ip, 9222)
    }

    fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(a, b, c, d))
    }

    /// The honest records: 1,500 nodes, each in its own /24, filling most of the default
    /// table (2,048): without the quota, 1,000 more records evict 452 of them.
    fn honest() -> Vec<DefaultEnr> {
        (0..1_500u64)
            .map(|i| at(i, v4(11, (i / 250) as u8, (i % 250) as u8, 7)))
            .collect()
    }

    fn attacker(i: u64) -> DefaultEnr {
        at(10_000 + i, v4(203, 0, 113, (i % 250) as u8 + 1))
    }

    /// 1,000 records injected from one /24 after the honest ones were learned: every honest
    /// entry stays (without the quota, the table's bound evicted the 452 oldest honest
    /// ones), the range holds 8, and it is the newest 8 of the range.
    #[test]
    fn a_thousand_records_from_one_subnet_leave_the_honest_entries_in_place() {
        let mut t = DiscoveryTable::<DefaultKey>::new(CHAIN, TableConfig::default());
        let honest = honest();
        for (i, r) in honest.iter().enumerate() {
            t.insert(1_000 + i as u64, r.clone()).unwrap();
        }
        for i in 0..1_000u64 {
            let got = t.insert(10_000 + i, attacker(i)).unwrap();
            assert!(matches!(got, Insert::New { .. }));
            assert!(t.entries_in_subnet_of(v4(203, 0, 113, 1)) <= DEFAULT_MAX_PER_SUBNET);
        }
        for r in &honest {
            assert!(t.get(&r.node_id()).is_some(), "an honest entry was evicted");
        }
        assert_eq!(t.len(), honest.len() + DEFAULT_MAX_PER_SUBNET);
        let kept: BTreeSet<u64> = t
            .iter()
            .filter(|e| e.last_seen >= 10_000)
            .map(|e| e.last_seen)
            .collect();
        assert_eq!(kept, (10_992..11_000).collect());

        // The same from an IPv6 /64: 8 kept, the /64 next door is another range.
        for i in 0..50u16 {
            let ip = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 0, 0, 0, i + 1));
            t.insert(20_000 + u64::from(i), at(30_000 + u64::from(i), ip))
                .unwrap();
        }
        let next_door = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 2, 0, 0, 0, 1));
        t.insert(21_000, at(40_000, next_door)).unwrap();
        assert_eq!(
            t.entries_in_subnet_of("2001:db8:0:1::ffff".parse().unwrap()),
            8
        );
        assert_eq!(t.entries_in_subnet_of(next_door), 1);
    }

    /// Export and import keep the quota: a restart seeds from at most 8 records of a range,
    /// also from a file someone wrote 1,000 of them into, and the newest survive.
    #[test]
    fn the_quota_holds_across_export_and_import() {
        let mut t = DiscoveryTable::<DefaultKey>::new(CHAIN, TableConfig::default());
        for i in 0..100u64 {
            t.insert(1_000 + i, attacker(i)).unwrap();
        }
        t.insert(5_000, at(1, v4(11, 0, 0, 7))).unwrap();
        let snap = t.export();
        assert_eq!(snap.len(), 9);
        let mut back = DiscoveryTable::<DefaultKey>::new(CHAIN, TableConfig::default());
        let report = back.import(6_000, &snap);
        assert_eq!(report.imported, 9);
        assert_eq!(back.entries_in_subnet_of(v4(203, 0, 113, 9)), 8);

        // A forged file: 1,000 records of one /24, oldest first.
        let forged: Vec<PersistedEnr> = (0..1_000u64)
            .map(|i| PersistedEnr {
                enr: attacker(i).to_base64(),
                last_seen: 1_000 + i,
            })
            .collect();
        let mut fresh = DiscoveryTable::<DefaultKey>::new(CHAIN, TableConfig::default());
        let report = fresh.import(6_000, &forged);
        assert_eq!(fresh.len(), 8);
        assert_eq!(
            report.imported, 1_000,
            "each newer one displaced the oldest"
        );
        assert!(fresh.iter().all(|e| e.last_seen >= 1_992));
        // Newest first (how `export` writes it): the older ones are crowded out.
        let mut newest_first = forged;
        newest_first.reverse();
        let mut fresh = DiscoveryTable::<DefaultKey>::new(CHAIN, TableConfig::default());
        let report = fresh.import(6_000, &newest_first);
        assert_eq!((report.imported, report.crowded_out), (8, 992));
        assert!(fresh.iter().all(|e| e.last_seen >= 1_992));
    }

    /// A node whose new record moves it into a full range keeps its place; the range's
    /// oldest other entry goes. Loopback is exempt only when the owner says so.
    #[test]
    fn an_update_into_a_full_subnet_and_the_loopback_exemption() {
        let mut t = DiscoveryTable::<DefaultKey>::new(CHAIN, TableConfig::default());
        for i in 0..8u64 {
            t.insert(1_000 + i, attacker(i)).unwrap();
        }
        let mover = at(7, v4(11, 0, 0, 7));
        t.insert(2_000, mover.clone()).unwrap();
        let moved = crate::discovery::local_enr(
            &crate::testkit::enr_key(7),
            2,
            CHAIN,
            Some(v4(203, 0, 113, 200)),
            9222,
            9222,
        )
        .unwrap();
        assert_eq!(t.insert(3_000, moved), Ok(Insert::Updated));
        assert_eq!(t.entries_in_subnet_of(v4(203, 0, 113, 1)), 8);
        assert!(t.get(&mover.node_id()).is_some());
        assert!(t.get(&attacker(0).node_id()).is_none(), "the oldest went");

        let lo = v4(127, 0, 0, 1);
        let mut strict = DiscoveryTable::<DefaultKey>::new(CHAIN, TableConfig::default());
        let mut devnet =
            DiscoveryTable::<DefaultKey>::new(CHAIN, TableConfig::default()).exempt_loopback(true);
        for i in 0..30u64 {
            strict.insert(i, at(i, lo)).unwrap();
            devnet.insert(i, at(i, lo)).unwrap();
        }
        assert_eq!((strict.len(), devnet.len()), (8, 30));
    }
}
