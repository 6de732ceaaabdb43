//! The in-memory lookup index: exact matches for every kind, longest-prefix network
//! containment, parent-domain and URL-host fallbacks, in well under a microsecond.
//!
//! Layout, chosen for memory (the target is < 200 bytes per indicator; this is ~40 bytes plus
//! the value's length) and for few random memory accesses per probe: every canonical value
//! lives once in one byte arena; a [`hashbrown::HashTable`] holds 12-byte slots (arena span,
//! kind, entry number) so a candidate is rejected by kind and length, or confirmed against the
//! arena, without reading anything else; per entry 16 bytes hold flags, score and the store's
//! row id. Networks are
//! flattened into sorted, disjoint ranges, each pointing at the most specific network covering
//! it, so containment is one binary search whatever the nesting.
//!
//! The index is rebuilt from the store at start and updated in place as feeds are ingested
//! ([`Index::upsert`], then [`Index::commit`] to refresh the network ranges).

use std::hash::{BuildHasher, Hasher};
use std::net::IpAddr;

use hashbrown::HashTable;

use crate::canon::{self, Ioc, hash_kinds_for, host_ioc, parent_domains, url_parts};
use crate::kind::IocKind;

/// How a query value matched an indicator.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum How {
    /// The same canonical value.
    Exact,
    /// The same digest under another hash kind (a 32-hex value listed as an imphash).
    HashAlias,
    /// The address lies inside a listed network (the indicator is the network).
    Network,
    /// The domain is a sub-domain of a listed domain (the indicator is the parent).
    ParentDomain,
    /// The address of a queried `ip:port` is listed.
    Address,
    /// The host of a queried URL or e-mail address is listed (as a domain or address).
    Host,
    /// The host of a queried URL is a sub-domain of a listed domain.
    HostParentDomain,
    /// The host of a queried URL lies inside a listed network.
    HostNetwork,
}

impl How {
    /// Its wire name, as serialised (`parent_domain`).
    pub fn as_str(self) -> &'static str {
        match self {
            How::Exact => "exact",
            How::HashAlias => "hash_alias",
            How::Network => "network",
            How::ParentDomain => "parent_domain",
            How::Address => "address",
            How::Host => "host",
            How::HostParentDomain => "host_parent_domain",
            How::HostNetwork => "host_network",
        }
    }
}

/// One match: which indicator, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Match {
    /// The entry number inside the index.
    pub entry: u32,
    /// How it matched.
    pub how: How,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    offset: u32,
    len: u16,
    kind: u8,
    flags: u8,
    score: u8,
    id: u64,
}

/// What the hash table holds per indicator: enough to compare a candidate (kind, length, then
/// the arena bytes) without touching `entries`, which saves a random memory access per probe.
#[derive(Debug, Clone, Copy)]
struct Slot {
    offset: u32,
    len: u16,
    kind: u8,
    entry: u32,
}

const LIVE: u8 = 1;
const ALLOWLISTED: u8 = 2;

/// A value longer than this is kept in the store but not indexed (no real indicator is).
pub const MAX_INDEXED_LEN: usize = u16::MAX as usize;

#[derive(Debug, Clone, Copy)]
struct Range<T> {
    start: T,
    end: T,
    entry: u32,
}

/// The lookup index. Not synchronised: the server keeps it behind a lock and swaps updates in.
#[derive(Debug)]
pub struct Index {
    arena: Vec<u8>,
    entries: Vec<Entry>,
    table: HashTable<Slot>,
    hasher: foldhash::fast::FixedState,
    nets_v4: Vec<Range<u32>>,
    nets_v6: Vec<Range<u128>>,
    v4_ranges: Vec<Range<u32>>,
    v6_ranges: Vec<Range<u128>>,
    dirty: bool,
    live: usize,
}

impl Default for Index {
    fn default() -> Self {
        Index::new()
    }
}

/// The arena offset does not fit: the index refuses to grow past 4 GiB of values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the lookup index is full (4 GiB of indicator values)")]
pub struct IndexFull;

impl Index {
    /// An empty index.
    pub fn new() -> Index {
        Index {
            arena: Vec::new(),
            entries: Vec::new(),
            table: HashTable::new(),
            // A fixed seed keeps hashing deterministic; the keys are canonical values chosen by
            // feeds, and the table's probing is robust to clustering either way.
            hasher: foldhash::fast::FixedState::with_seed(0x0005_eed1_ce50_fca7),
            nets_v4: Vec::new(),
            nets_v6: Vec::new(),
            v4_ranges: Vec::new(),
            v6_ranges: Vec::new(),
            dirty: false,
            live: 0,
        }
    }

    /// An empty index with room for `n` indicators of `bytes` total value length.
    pub fn with_capacity(n: usize, bytes: usize) -> Index {
        let mut index = Index::new();
        index.arena.reserve(bytes);
        index.entries.reserve(n);
        index.table.reserve(n, |_| 0);
        index
    }

    fn hash(&self, kind: IocKind, value: &[u8]) -> u64 {
        let mut h = self.hasher.build_hasher();
        h.write_u8(kind.code());
        h.write(value);
        h.finish()
    }

    fn value_of(&self, e: &Entry) -> &[u8] {
        let start = e.offset as usize;
        &self.arena[start..start + e.len as usize]
    }

    fn slot_matches(arena: &[u8], s: &Slot, code: u8, value: &[u8]) -> bool {
        s.kind == code
            && usize::from(s.len) == value.len()
            && &arena[s.offset as usize..s.offset as usize + value.len()] == value
    }

    fn find(&self, kind: IocKind, value: &str) -> Option<u32> {
        let hash = self.hash(kind, value.as_bytes());
        let code = kind.code();
        self.table
            .find(hash, |s| {
                Self::slot_matches(&self.arena, s, code, value.as_bytes())
            })
            .map(|s| s.entry)
    }

    /// Adds an indicator or updates its score and row id. Returns its entry number.
    pub fn upsert(&mut self, ioc: &Ioc, id: u64, score: u8) -> Result<Option<u32>, IndexFull> {
        if ioc.value.len() > MAX_INDEXED_LEN {
            return Ok(None);
        }
        if let Some(i) = self.find(ioc.kind, &ioc.value) {
            let e = &mut self.entries[i as usize];
            e.id = id;
            e.score = score;
            return Ok(Some(i));
        }
        let offset = u32::try_from(self.arena.len()).map_err(|_| IndexFull)?;
        if self.arena.len() + ioc.value.len() > u32::MAX as usize {
            return Err(IndexFull);
        }
        let entry = u32::try_from(self.entries.len()).map_err(|_| IndexFull)?;
        self.arena.extend_from_slice(ioc.value.as_bytes());
        self.entries.push(Entry {
            offset,
            len: ioc.value.len() as u16,
            kind: ioc.kind.code(),
            flags: LIVE,
            score,
            id,
        });
        let hash = self.hash(ioc.kind, ioc.value.as_bytes());
        let slot = Slot {
            offset,
            len: ioc.value.len() as u16,
            kind: ioc.kind.code(),
            entry,
        };
        let (arena, hasher) = (&self.arena, &self.hasher);
        self.table.insert_unique(hash, slot, |s| {
            let mut h = hasher.build_hasher();
            h.write_u8(s.kind);
            h.write(&arena[s.offset as usize..s.offset as usize + s.len as usize]);
            h.finish()
        });
        self.live += 1;
        if ioc.kind == IocKind::Cidr
            && let Ok(net) = canon::network(&ioc.value)
        {
            match net.addr {
                IpAddr::V4(a) => {
                    let start = u32::from(a);
                    let end = start | (u32::MAX.checked_shr(u32::from(net.prefix)).unwrap_or(0));
                    self.nets_v4.push(Range { start, end, entry });
                }
                IpAddr::V6(a) => {
                    let start = u128::from(a);
                    let end = start | (u128::MAX.checked_shr(u32::from(net.prefix)).unwrap_or(0));
                    self.nets_v6.push(Range { start, end, entry });
                }
            }
            self.dirty = true;
        }
        Ok(Some(entry))
    }

    /// Removes an indicator (expired and deleted). Returns whether it was present.
    pub fn remove(&mut self, ioc: &Ioc) -> bool {
        let hash = self.hash(ioc.kind, ioc.value.as_bytes());
        let code = ioc.kind.code();
        let arena = &self.arena;
        let found = self.table.find_entry(hash, |s| {
            Self::slot_matches(arena, s, code, ioc.value.as_bytes())
        });
        let Ok(slot) = found else {
            return false;
        };
        let (Slot { entry, .. }, _) = slot.remove();
        self.entries[entry as usize].flags &= !LIVE;
        self.live -= 1;
        if ioc.kind == IocKind::Cidr {
            self.nets_v4.retain(|r| r.entry != entry);
            self.nets_v6.retain(|r| r.entry != entry);
            self.dirty = true;
        }
        true
    }

    /// Marks an indicator as allowlisted (lookups still find it, flagged) or clears the mark.
    pub fn set_allowlisted(&mut self, entry: u32, allowlisted: bool) {
        if let Some(e) = self.entries.get_mut(entry as usize) {
            if allowlisted {
                e.flags |= ALLOWLISTED;
            } else {
                e.flags &= !ALLOWLISTED;
            }
        }
    }

    /// Refreshes the network ranges after upserts or removals of networks.
    pub fn commit(&mut self) {
        if !self.dirty {
            return;
        }
        self.v4_ranges = flatten(&mut self.nets_v4);
        self.v6_ranges = flatten(&mut self.nets_v6);
        self.dirty = false;
    }

    /// Number of live indicators.
    pub fn len(&self) -> usize {
        self.live
    }

    /// Live indicators per kind (code order), counted from memory: what a statistics page
    /// needs without scanning the store.
    pub fn count_by_kind(&self) -> Vec<(IocKind, usize)> {
        let mut counts = [0usize; 256];
        for e in self.entries.iter().filter(|e| e.flags & LIVE != 0) {
            counts[usize::from(e.kind)] += 1;
        }
        counts
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .filter_map(|(code, n)| Some((IocKind::from_code(u8::try_from(code).ok()?)?, *n)))
            .collect()
    }

    /// Whether the index holds no live indicator.
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Bytes of heap held by the index (arena, entries, table, ranges).
    pub fn memory_bytes(&self) -> usize {
        self.arena.capacity()
            + self.entries.capacity() * std::mem::size_of::<Entry>()
            + self.table.capacity() * (std::mem::size_of::<Slot>() + 1)
            + (self.nets_v4.capacity() + self.v4_ranges.capacity())
                * std::mem::size_of::<Range<u32>>()
            + (self.nets_v6.capacity() + self.v6_ranges.capacity())
                * std::mem::size_of::<Range<u128>>()
    }

    /// The indicator an entry number stands for.
    pub fn ioc(&self, entry: u32) -> Option<Ioc> {
        let e = self.entries.get(entry as usize)?;
        let kind = IocKind::from_code(e.kind)?;
        let value = std::str::from_utf8(self.value_of(e)).ok()?;
        Some(Ioc::new(kind, value))
    }

    /// The store row id of an entry.
    pub fn id(&self, entry: u32) -> Option<u64> {
        self.entries.get(entry as usize).map(|e| e.id)
    }

    /// The score of an entry, 0–100.
    pub fn score(&self, entry: u32) -> Option<u8> {
        self.entries.get(entry as usize).map(|e| e.score)
    }

    /// Whether an entry is allowlisted.
    pub fn is_allowlisted(&self, entry: u32) -> bool {
        self.entries
            .get(entry as usize)
            .is_some_and(|e| e.flags & ALLOWLISTED != 0)
    }

    /// The entry of an exact indicator, if indexed.
    pub fn get(&self, ioc: &Ioc) -> Option<u32> {
        self.find(ioc.kind, &ioc.value)
    }

    fn network_v4(&self, addr: u32) -> Option<u32> {
        let i = self.v4_ranges.partition_point(|r| r.start <= addr);
        let r = self.v4_ranges.get(i.checked_sub(1)?)?;
        (addr <= r.end).then_some(r.entry)
    }

    fn network_v6(&self, addr: u128) -> Option<u32> {
        let i = self.v6_ranges.partition_point(|r| r.start <= addr);
        let r = self.v6_ranges.get(i.checked_sub(1)?)?;
        (addr <= r.end).then_some(r.entry)
    }

    /// `text` is the address's canonical text (callers have it already: no formatting here).
    fn address(
        &self,
        addr: IpAddr,
        text: &str,
        exact: How,
        network: How,
        out: &mut dyn FnMut(Match) -> bool,
    ) -> bool {
        let (kind, net) = match addr {
            IpAddr::V4(a) => (IocKind::Ipv4, self.network_v4(u32::from(a))),
            IpAddr::V6(a) => (IocKind::Ipv6, self.network_v6(u128::from(a))),
        };
        if let Some(entry) = self.find(kind, text)
            && !out(Match { entry, how: exact })
        {
            return false;
        }
        match net {
            Some(entry) => out(Match {
                entry,
                how: network,
            }),
            None => true,
        }
    }

    fn domain(
        &self,
        name: &str,
        exact: How,
        parent: How,
        out: &mut dyn FnMut(Match) -> bool,
    ) -> bool {
        if let Some(entry) = self.find(IocKind::Domain, name)
            && !out(Match { entry, how: exact })
        {
            return false;
        }
        for p in parent_domains(name) {
            if let Some(entry) = self.find(IocKind::Domain, p) {
                // The most specific listed parent is the one reported.
                return out(Match { entry, how: parent });
            }
        }
        true
    }

    /// Visits every match of a canonical query value, most specific first; `out` returns
    /// `false` to stop. Returns `false` if stopped.
    pub fn lookup(&self, query: &Ioc, out: &mut dyn FnMut(Match) -> bool) -> bool {
        match query.kind {
            IocKind::Ipv4 | IocKind::Ipv6 => match canon::ip(&query.value) {
                Ok(addr) => self.address(addr, &query.value, How::Exact, How::Network, out),
                Err(_) => true,
            },
            IocKind::IpPort => {
                if let Some(entry) = self.find(IocKind::IpPort, &query.value)
                    && !out(Match {
                        entry,
                        how: How::Exact,
                    })
                {
                    return false;
                }
                match canon::split_ip_port(&query.value) {
                    Ok((addr, _)) => {
                        let text = query.value.rsplit_once(':').map_or("", |(a, _)| a);
                        let text = text
                            .strip_prefix('[')
                            .and_then(|t| t.strip_suffix(']'))
                            .unwrap_or(text);
                        self.address(addr, text, How::Address, How::Network, out)
                    }
                    Err(_) => true,
                }
            }
            IocKind::Cidr => {
                if let Some(entry) = self.find(IocKind::Cidr, &query.value)
                    && !out(Match {
                        entry,
                        how: How::Exact,
                    })
                {
                    return false;
                }
                // A listed network that contains the whole queried network.
                let Ok(net) = canon::network(&query.value) else {
                    return true;
                };
                let containing = match net.addr {
                    IpAddr::V4(a) => self.network_v4(u32::from(a)),
                    IpAddr::V6(a) => self.network_v6(u128::from(a)),
                };
                match containing {
                    Some(entry)
                        if entry != self.find(IocKind::Cidr, &query.value).unwrap_or(u32::MAX) =>
                    {
                        let covers = self
                            .ioc(entry)
                            .and_then(|i| canon::network(&i.value).ok())
                            .is_some_and(|n| n.prefix <= net.prefix);
                        if covers {
                            out(Match {
                                entry,
                                how: How::Network,
                            })
                        } else {
                            true
                        }
                    }
                    _ => true,
                }
            }
            IocKind::Domain => self.domain(&query.value, How::Exact, How::ParentDomain, out),
            IocKind::Url => {
                if let Some(entry) = self.find(IocKind::Url, &query.value)
                    && !out(Match {
                        entry,
                        how: How::Exact,
                    })
                {
                    return false;
                }
                let Some(host) = url_parts(&query.value).and_then(|p| host_ioc(p.host)) else {
                    return true;
                };
                match host.kind {
                    IocKind::Domain => {
                        self.domain(&host.value, How::Host, How::HostParentDomain, out)
                    }
                    _ => match canon::ip(&host.value) {
                        Ok(addr) => {
                            self.address(addr, &host.value, How::Host, How::HostNetwork, out)
                        }
                        Err(_) => true,
                    },
                }
            }
            IocKind::Email => {
                if let Some(entry) = self.find(IocKind::Email, &query.value)
                    && !out(Match {
                        entry,
                        how: How::Exact,
                    })
                {
                    return false;
                }
                match query.value.rsplit_once('@') {
                    Some((_, domain)) => self.domain(domain, How::Host, How::HostParentDomain, out),
                    None => true,
                }
            }
            kind => {
                if let Some(entry) = self.find(kind, &query.value)
                    && !out(Match {
                        entry,
                        how: How::Exact,
                    })
                {
                    return false;
                }
                for alias in hash_kinds_for(kind).iter().filter(|k| **k != kind) {
                    if let Some(entry) = self.find(*alias, &query.value)
                        && !out(Match {
                            entry,
                            how: How::HashAlias,
                        })
                    {
                        return false;
                    }
                }
                true
            }
        }
    }

    /// The hashes of the keys the lookup of `query` probes first: its own value, a URL's
    /// host, a domain's parent. A hint only (a key left out is still found, later).
    fn first_keys(&self, query: &Ioc, out: &mut impl FnMut(u64)) {
        out(self.hash(query.kind, query.value.as_bytes()));
        match query.kind {
            IocKind::Url => {
                if let Some(p) = url_parts(&query.value)
                    && !p.host.starts_with('[')
                {
                    let kind = if p.host.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
                        IocKind::Ipv4
                    } else {
                        IocKind::Domain
                    };
                    out(self.hash(kind, p.host.as_bytes()));
                }
            }
            IocKind::Domain => {
                if let Some(p) = parent_domains(&query.value).next() {
                    out(self.hash(IocKind::Domain, p.as_bytes()));
                }
            }
            _ => {}
        }
    }

    /// Visits every match of each query, as [`Index::lookup`] does for one: `visit(i, m)` gets
    /// the query's position and returns `false` to stop that query's lookup.
    ///
    /// Why batches: a lookup waits on memory (a hit reads a table slot, then the value in the
    /// arena: two cache misses), and one lookup's code is too long for the processor to start
    /// the next one's reads while it waits. Here the first keys of sixteen queries are probed
    /// with a comparison that reads each candidate slot and accepts none, so the slots' reads
    /// are all started before any is waited on; then once more reading each candidate's value;
    /// the lookups proper then find both in cache. Bulk and fleet matching go through here
    /// (`lookup::observables_matches`); on the benchmark's mixed queries it gives 1.3–1.4 × the
    /// throughput of one [`Index::lookup`] after another (docs/performance.md).
    pub fn lookup_each<Q: std::borrow::Borrow<Ioc>>(
        &self,
        queries: &[Q],
        mut visit: impl FnMut(usize, Match) -> bool,
    ) {
        const BATCH: usize = 16;
        let mut hashes = [0u64; BATCH * 2];
        for (b, chunk) in queries.chunks(BATCH).enumerate() {
            let mut n = 0;
            for q in chunk {
                self.first_keys(q.borrow(), &mut |h| {
                    if let Some(slot) = hashes.get_mut(n) {
                        *slot = h;
                        n += 1;
                    }
                });
            }
            // The values read are combined and kept only so the reads are not optimised away.
            let mut warm = 0u32;
            for h in &hashes[..n] {
                self.table.find(*h, |s| {
                    warm ^= s.offset;
                    false
                });
            }
            for h in &hashes[..n] {
                self.table.find(*h, |s| {
                    warm ^= u32::from(self.arena.get(s.offset as usize).copied().unwrap_or(0));
                    false
                });
            }
            std::hint::black_box(warm);
            for (i, q) in chunk.iter().enumerate() {
                self.lookup(q.borrow(), &mut |m| visit(b * BATCH + i, m));
            }
        }
    }

    /// The first (most specific) match of a query, if any.
    pub fn first(&self, query: &Ioc) -> Option<Match> {
        let mut found = None;
        self.lookup(query, &mut |m| {
            found = Some(m);
            false
        });
        found
    }

    /// Every match of a query.
    pub fn all(&self, query: &Ioc) -> Vec<Match> {
        let mut found = Vec::new();
        self.lookup(query, &mut |m| {
            found.push(m);
            true
        });
        found
    }
}

/// Turns nested networks into sorted disjoint ranges, each owned by the most specific network
/// covering it (networks are laminar: two CIDRs are disjoint or one contains the other).
fn flatten<T>(nets: &mut [Range<T>]) -> Vec<Range<T>>
where
    T: Copy + Ord + Step,
{
    nets.sort_by(|a, b| a.start.cmp(&b.start).then(b.end.cmp(&a.end)));
    let mut out: Vec<Range<T>> = Vec::with_capacity(nets.len() * 2);
    let mut stack: Vec<Range<T>> = Vec::new();
    // `cursor` is the first address not yet assigned; `None` once the top of the space is done.
    let mut cursor: Option<T> = None;
    let emit = |out: &mut Vec<Range<T>>, from: Option<T>, to: T, entry: u32| {
        if let Some(from) = from
            && from <= to
        {
            out.push(Range {
                start: from,
                end: to,
                entry,
            });
        }
    };
    for net in nets.iter() {
        while let Some(top) = stack.last().copied() {
            if top.end >= net.start {
                break;
            }
            emit(&mut out, cursor, top.end, top.entry);
            cursor = top.end.next();
            stack.pop();
        }
        if let Some(top) = stack.last().copied()
            && let Some(prev) = net.start.prev()
        {
            emit(&mut out, cursor, prev, top.entry);
        }
        stack.push(*net);
        cursor = Some(net.start);
    }
    while let Some(top) = stack.pop() {
        emit(&mut out, cursor, top.end, top.entry);
        cursor = top.end.next();
    }
    out
}

/// Successor and predecessor of an address, `None` at the ends of the space.
trait Step: Sized {
    fn next(self) -> Option<Self>;
    fn prev(self) -> Option<Self>;
}

impl Step for u32 {
    fn next(self) -> Option<Self> {
        self.checked_add(1)
    }
    fn prev(self) -> Option<Self> {
        self.checked_sub(1)
    }
}

impl Step for u128 {
    fn next(self) -> Option<Self> {
        self.checked_add(1)
    }
    fn prev(self) -> Option<Self> {
        self.checked_sub(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canon::{canonicalize, detect};

    #[test]
    fn a_match_kind_names_itself_as_it_serialises() {
        for how in [
            How::Exact,
            How::HashAlias,
            How::Network,
            How::ParentDomain,
            How::Address,
            How::Host,
            How::HostParentDomain,
            How::HostNetwork,
        ] {
            assert_eq!(
                serde_json::to_value(how).ok(),
                Some(serde_json::Value::from(how.as_str()))
            );
        }
    }

    fn index(values: &[&str]) -> Index {
        let mut index = Index::new();
        for (i, v) in values.iter().enumerate() {
            let ioc = detect(v).unwrap_or_else(|e| panic!("{v}: {e}"));
            index
                .upsert(&ioc, i as u64 + 1, 50)
                .unwrap_or_else(|e| panic!("{e}"));
        }
        index.commit();
        index
    }

    fn hits(index: &Index, query: &str) -> Vec<(String, How)> {
        let q = detect(query).unwrap_or_else(|e| panic!("{query}: {e}"));
        index
            .all(&q)
            .into_iter()
            .map(|m| {
                (
                    index.ioc(m.entry).map(|i| i.value).unwrap_or_default(),
                    m.how,
                )
            })
            .collect()
    }

    #[test]
    fn exact_and_longest_prefix() {
        let idx = index(&[
            "10.0.0.0/8",
            "10.1.0.0/16",
            "10.1.2.0/24",
            "10.1.2.3",
            "2001:db8::/32",
            "0.0.0.0/1",
        ]);
        assert_eq!(
            hits(&idx, "10.1.2.3"),
            [
                ("10.1.2.3".into(), How::Exact),
                ("10.1.2.0/24".into(), How::Network)
            ]
        );
        assert_eq!(
            hits(&idx, "10.1.3.1"),
            [("10.1.0.0/16".into(), How::Network)]
        );
        assert_eq!(
            hits(&idx, "10.2.0.0"),
            [("10.0.0.0/8".into(), How::Network)]
        );
        assert_eq!(
            hits(&idx, "10.1.2.255"),
            [("10.1.2.0/24".into(), How::Network)]
        );
        assert_eq!(
            hits(&idx, "10.1.255.255"),
            [("10.1.0.0/16".into(), How::Network)]
        );
        assert_eq!(hits(&idx, "11.0.0.0"), [("0.0.0.0/1".into(), How::Network)]);
        assert_eq!(hits(&idx, "128.0.0.1"), []);
        assert_eq!(
            hits(&idx, "2001:db8:1::1"),
            [("2001:db8::/32".into(), How::Network)]
        );
        assert_eq!(hits(&idx, "2001:db9::1"), []);
        assert_eq!(
            hits(&idx, "10.1.0.0/20"),
            [("10.1.0.0/16".into(), How::Network)]
        );
        assert_eq!(hits(&idx, "10.0.0.0/7"), []);
    }

    #[test]
    fn flatten_matches_a_brute_force_scan() {
        // Random laminar networks over a small space, checked address by address.
        let mut seed = 12345u64;
        let mut rnd = |n: u64| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) % n
        };
        for _ in 0..50 {
            let mut nets: Vec<(u32, u8)> = Vec::new();
            for _ in 0..rnd(12) + 1 {
                let prefix = 24 + rnd(9) as u8;
                let addr = canon::mask_v4(0x0a00_0000 | rnd(256) as u32, prefix);
                if !nets.contains(&(addr, prefix)) {
                    nets.push((addr, prefix));
                }
            }
            let texts: Vec<String> = nets
                .iter()
                .map(|(a, p)| format!("{}/{p}", std::net::Ipv4Addr::from(*a)))
                .collect();
            let mut idx = Index::new();
            for t in &texts {
                let ioc = canonicalize(IocKind::Cidr, t).unwrap_or_else(|e| panic!("{e}"));
                idx.upsert(&ioc, 0, 0).unwrap_or_else(|e| panic!("{e}"));
            }
            idx.commit();
            for host in 0..256u32 {
                let addr = 0x0a00_0000 | host;
                let expected = nets
                    .iter()
                    .filter(|(a, p)| canon::mask_v4(addr, *p) == *a && *p < 32)
                    .max_by_key(|(_, p)| *p)
                    .map(|(a, p)| format!("{}/{p}", std::net::Ipv4Addr::from(*a)));
                let got = idx
                    .network_v4(addr)
                    .and_then(|e| idx.ioc(e))
                    .map(|i| i.value);
                assert_eq!(got, expected, "{texts:?} at .{host}");
            }
        }
    }

    #[test]
    fn parent_domains_and_url_fallbacks() {
        let idx = index(&[
            "evil.example",
            "b.evil.example",
            "1.2.3.4",
            "http://evil.example/a",
            "10.9.0.0/16",
        ]);
        assert_eq!(
            hits(&idx, "x.a.b.evil.example"),
            [("b.evil.example".into(), How::ParentDomain)]
        );
        assert_eq!(hits(&idx, "notevil.example"), []);
        assert_eq!(
            hits(&idx, "http://evil.example/a"),
            [
                ("http://evil.example/a".into(), How::Exact),
                ("evil.example".into(), How::Host)
            ]
        );
        assert_eq!(
            hits(&idx, "https://cdn.b.evil.example/x"),
            [("b.evil.example".into(), How::HostParentDomain)]
        );
        assert_eq!(
            hits(&idx, "http://1.2.3.4:8080/x"),
            [("1.2.3.4".into(), How::Host)]
        );
        assert_eq!(
            hits(&idx, "http://10.9.8.7/"),
            [("10.9.0.0/16".into(), How::HostNetwork)]
        );
        assert_eq!(
            hits(&idx, "bad@mail.evil.example"),
            [("evil.example".into(), How::HostParentDomain)]
        );
        assert_eq!(
            hits(&idx, "1.2.3.4:443"),
            [("1.2.3.4".into(), How::Address)]
        );
    }

    #[test]
    fn hash_aliases_and_removal() {
        let mut idx = index(&["d41d8cd98f00b204e9800998ecf8427e"]);
        let imphash = canonicalize(IocKind::Imphash, "F34D5F2D4577ED6D9CEEC516C1F5A744")
            .unwrap_or_else(|e| panic!("{e}"));
        idx.upsert(&imphash, 9, 10)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            hits(&idx, "f34d5f2d4577ed6d9ceec516c1f5a744"),
            [("f34d5f2d4577ed6d9ceec516c1f5a744".into(), How::HashAlias)]
        );
        assert_eq!(
            hits(&idx, "D41D8CD98F00B204E9800998ECF8427E"),
            [("d41d8cd98f00b204e9800998ecf8427e".into(), How::Exact)]
        );
        assert!(idx.remove(&imphash));
        assert!(!idx.remove(&imphash));
        assert_eq!(hits(&idx, "f34d5f2d4577ed6d9ceec516c1f5a744"), []);
        assert_eq!(idx.len(), 1);
        // Re-adding after removal works and an upsert only updates.
        idx.upsert(&imphash, 9, 10)
            .unwrap_or_else(|e| panic!("{e}"));
        let entry = idx
            .upsert(&imphash, 11, 70)
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_default();
        assert_eq!(
            (idx.id(entry), idx.score(entry), idx.len()),
            (Some(11), Some(70), 2)
        );
    }

    #[test]
    fn a_batch_finds_what_one_lookup_after_another_finds() {
        use crate::synthetic::{self, Rng};
        let n = 20_000;
        let mut idx = Index::new();
        for i in 0..n {
            idx.upsert(&synthetic::indicator(i), i + 1, 50)
                .unwrap_or_else(|e| panic!("{e}"));
        }
        // Every path of `lookup`: hash aliases, ip:port, e-mail, IPv6, URL hosts by address.
        for v in [
            "198.51.100.7:8080",
            "198.51.100.7",
            "phish@evil.example",
            "evil.example",
            "2001:db8::/32",
            "http://203.0.113.9/a",
        ] {
            let ioc = detect(v).unwrap_or_else(|e| panic!("{v}: {e}"));
            idx.upsert(&ioc, n + 1, 50)
                .unwrap_or_else(|e| panic!("{e}"));
        }
        let imphash = canonicalize(IocKind::Imphash, "f34d5f2d4577ed6d9ceec516c1f5a744")
            .unwrap_or_else(|e| panic!("{e}"));
        idx.upsert(&imphash, n + 2, 50)
            .unwrap_or_else(|e| panic!("{e}"));
        idx.commit();
        let mut rng = Rng::new(3);
        let mut queries: Vec<Ioc> = (0..5_000).map(|_| synthetic::query(&mut rng, n)).collect();
        for v in [
            "F34D5F2D4577ED6D9CEEC516C1F5A744",
            "198.51.100.7:8080",
            "198.51.100.7:22",
            "a@mail.evil.example",
            "2001:db8::1",
            "http://203.0.113.9/b",
            "http://[2001:db8::5]/",
        ] {
            queries.push(detect(v).unwrap_or_else(|e| panic!("{v}: {e}")));
        }
        let mut batched: Vec<Vec<Match>> = vec![Vec::new(); queries.len()];
        idx.lookup_each(&queries, |i, m| {
            batched[i].push(m);
            true
        });
        let one_by_one: Vec<Vec<Match>> = queries.iter().map(|q| idx.all(q)).collect();
        assert_eq!(batched, one_by_one);
        // Enough of them match, in each way, for the comparison to mean something.
        let ways: std::collections::BTreeSet<&str> = one_by_one
            .iter()
            .flatten()
            .map(|m| m.how.as_str())
            .collect();
        assert_eq!(ways.len(), 8, "{ways:?}");
        assert!(one_by_one.iter().filter(|m| !m.is_empty()).count() > 2_000);
        // Stopping a query's lookup stops that query only.
        let mut firsts: Vec<Option<Match>> = vec![None; queries.len()];
        idx.lookup_each(&queries, |i, m| {
            assert!(
                firsts[i].is_none(),
                "query {i} went on after it was stopped"
            );
            firsts[i] = Some(m);
            false
        });
        let one_by_one: Vec<Option<Match>> = queries.iter().map(|q| idx.first(q)).collect();
        assert_eq!(firsts, one_by_one);
    }

    #[test]
    fn removing_a_network_updates_containment() {
        let mut idx = index(&["10.0.0.0/8", "10.1.0.0/16"]);
        let inner = canonicalize(IocKind::Cidr, "10.1.0.0/16").unwrap_or_else(|e| panic!("{e}"));
        assert!(idx.remove(&inner));
        idx.commit();
        assert_eq!(
            hits(&idx, "10.1.2.3"),
            [("10.0.0.0/8".into(), How::Network)]
        );
    }
}
