//! The in-container cache of org entitlements: the authorizer's only per-request I/O is one
//! GetItem per org per TTL.
//!
//! What is cached is the stored grant set, not a yes/no: grants carry their own end (a grace
//! period) and are evaluated against the clock at decision time, so a cached set never lets a
//! grace period outlive its end.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::domain::{EntitlementSet, OrgId};

pub const DEFAULT_TTL: Duration = Duration::from_secs(30);
/// A warm container serves few orgs; the bound only stops an unbounded stream of distinct orgs
/// from growing memory without limit.
pub const DEFAULT_MAX_ORGS: usize = 4_096;

#[derive(Debug)]
pub struct EntitlementsCache {
    ttl: Duration,
    max_orgs: usize,
    entries: Mutex<HashMap<OrgId, (EntitlementSet, Instant)>>,
}

impl EntitlementsCache {
    /// `ttl` zero disables caching (every check reads DynamoDB).
    pub fn new(ttl: Duration, max_orgs: usize) -> Self {
        Self {
            ttl,
            max_orgs: max_orgs.max(1),
            entries: Mutex::new(HashMap::new()),
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<OrgId, (EntitlementSet, Instant)>> {
        // Entries are replaced whole, so a panic elsewhere cannot leave one half-written.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The org's set if it was fetched less than the TTL ago.
    pub fn get(&self, org: &OrgId, now: Instant) -> Option<EntitlementSet> {
        let entries = self.lock();
        let (set, fetched) = entries.get(org)?;
        (now.saturating_duration_since(*fetched) < self.ttl).then(|| set.clone())
    }

    /// Records a set read at `fetched` (the moment the read was *sent*, so the TTL bounds the
    /// age of the data, not the age of the cache entry).
    pub fn insert(&self, org: OrgId, set: EntitlementSet, fetched: Instant) {
        if self.ttl.is_zero() {
            return;
        }
        let mut entries = self.lock();
        if entries.len() >= self.max_orgs && !entries.contains_key(&org) {
            let ttl = self.ttl;
            entries.retain(|_, (_, at)| fetched.saturating_duration_since(*at) < ttl);
            if entries.len() >= self.max_orgs {
                let oldest = entries
                    .iter()
                    .min_by_key(|(_, (_, at))| *at)
                    .map(|(k, _)| k.clone());
                if let Some(oldest) = oldest {
                    entries.remove(&oldest);
                }
            }
        }
        entries.insert(org, (set, fetched));
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn org(n: &str) -> OrgId {
        OrgId::parse(n).unwrap()
    }

    #[test]
    fn entries_expire_after_the_ttl() {
        let cache = EntitlementsCache::new(Duration::from_secs(30), 10);
        let t0 = Instant::now();
        cache.insert(org("a"), EntitlementSet::default(), t0);
        assert!(cache.get(&org("a"), t0 + Duration::from_secs(29)).is_some());
        assert!(cache.get(&org("a"), t0 + Duration::from_secs(30)).is_none());
        assert!(cache.get(&org("b"), t0).is_none());
    }

    #[test]
    fn zero_ttl_never_caches() {
        let cache = EntitlementsCache::new(Duration::ZERO, 10);
        let t0 = Instant::now();
        cache.insert(org("a"), EntitlementSet::default(), t0);
        assert!(cache.get(&org("a"), t0).is_none());
        assert!(cache.is_empty());
    }

    #[test]
    fn size_is_bounded_and_the_oldest_goes_first() {
        let cache = EntitlementsCache::new(Duration::from_secs(30), 3);
        let t0 = Instant::now();
        for (i, name) in ["a", "b", "c", "d"].iter().enumerate() {
            cache.insert(
                org(name),
                EntitlementSet::default(),
                t0 + Duration::from_millis(i as u64),
            );
        }
        assert_eq!(cache.len(), 3);
        let later = t0 + Duration::from_secs(1);
        assert!(cache.get(&org("a"), later).is_none());
        assert!(cache.get(&org("d"), later).is_some());
    }
}
