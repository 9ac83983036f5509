//! Keys this process has verified lately.
//!
//! A verified key is remembered by this process (this Lambda container) for [`KEY_CACHE_TTL`],
//! so a warm function answers from one store read instead of two (API Gateway's Lambda
//! authorizers make the same trade, with a 300 s default). A key deleted here is forgotten
//! here at once; another warm container honours it for at most the TTL. Unknown keys are never
//! remembered, so a key created anywhere works at once everywhere.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::domain::auth::Caller;

/// How long a verified key is taken on this process's word.
pub const KEY_CACHE_TTL: Duration = Duration::from_secs(10);
/// Keys remembered at most; past it, the expired go, and if that is not enough, the one that
/// expires first.
const KEY_CACHE_CAPACITY: usize = 1024;

/// Verified keys by hash, each with the instant it stops being trusted.
pub struct KeyCache {
    ttl: Duration,
    entries: Mutex<Entries>,
}

#[derive(Default)]
struct Entries {
    by_hash: HashMap<String, (Caller, Instant)>,
    /// Bumped by every [`KeyCache::forget`]: a lookup that started before a deletion must not
    /// put the deleted key back when it finishes after it.
    generation: u64,
}

impl KeyCache {
    pub fn new(ttl: Duration) -> KeyCache {
        KeyCache {
            ttl,
            entries: Mutex::new(Entries::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn get(&self, hash: &str, now: Instant) -> Option<Caller> {
        self.lock()
            .by_hash
            .get(hash)
            .filter(|(_, until)| now < *until)
            .map(|(caller, _)| caller.clone())
    }

    /// Taken before a store lookup and handed to [`Self::put`] with its result.
    pub(super) fn generation(&self) -> u64 {
        self.lock().generation
    }

    /// Remembers a key read from the store, unless a key was forgotten since `generation`.
    pub(super) fn put(&self, hash: String, caller: Caller, generation: u64, now: Instant) {
        if self.ttl.is_zero() {
            return;
        }
        let mut guard = self.lock();
        if guard.generation != generation {
            return;
        }
        let entries = &mut guard.by_hash;
        if entries.len() >= KEY_CACHE_CAPACITY {
            entries.retain(|_, (_, until)| now < *until);
            let oldest = (entries.len() >= KEY_CACHE_CAPACITY)
                .then(|| {
                    entries
                        .iter()
                        .min_by_key(|(_, (_, until))| *until)
                        .map(|(hash, _)| hash.clone())
                })
                .flatten();
            if let Some(oldest) = oldest {
                entries.remove(&oldest);
            }
        }
        entries.insert(hash, (caller, now + self.ttl));
    }

    /// Forgets a deleted key (found by id: its hash is not kept anywhere else).
    pub fn forget(&self, key_id: Uuid) {
        let mut entries = self.lock();
        entries.generation += 1;
        entries
            .by_hash
            .retain(|_, (caller, _)| caller.key_id != key_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::auth::Role;

    fn caller() -> Caller {
        Caller {
            tenant_id: Uuid::new_v4(),
            key_id: Uuid::new_v4(),
            key_name: "test".into(),
            role: Role::Admin,
            expires_at: None,
        }
    }

    #[test]
    fn a_verified_key_is_trusted_until_its_ttl_ends() {
        let cache = KeyCache::new(Duration::from_secs(10));
        let start = Instant::now();
        let who = caller();
        cache.put("h".into(), who.clone(), cache.generation(), start);
        assert_eq!(cache.get("h", start + Duration::from_secs(9)), Some(who));
        assert_eq!(cache.get("h", start + Duration::from_secs(10)), None);
        assert_eq!(cache.get("other", start), None);
    }

    #[test]
    fn a_forgotten_key_is_not_trusted_and_others_stay() {
        let cache = KeyCache::new(Duration::from_secs(10));
        let now = Instant::now();
        let (gone, kept) = (caller(), caller());
        cache.put("gone".into(), gone.clone(), cache.generation(), now);
        cache.put("kept".into(), kept.clone(), cache.generation(), now);
        cache.forget(gone.key_id);
        assert_eq!(cache.get("gone", now), None);
        assert_eq!(cache.get("kept", now), Some(kept));
    }

    #[test]
    fn a_lookup_that_started_before_a_deletion_does_not_bring_the_key_back() {
        let cache = KeyCache::new(Duration::from_secs(10));
        let now = Instant::now();
        let deleted = caller();
        let started = cache.generation();
        cache.forget(deleted.key_id);
        cache.put("deleted".into(), deleted.clone(), started, now);
        assert_eq!(cache.get("deleted", now), None);
    }

    #[test]
    fn a_zero_ttl_remembers_nothing() {
        let cache = KeyCache::new(Duration::ZERO);
        let now = Instant::now();
        cache.put("h".into(), caller(), cache.generation(), now);
        assert_eq!(cache.get("h", now), None);
    }

    #[test]
    fn a_full_cache_makes_room_by_dropping_the_key_that_expires_first() {
        let cache = KeyCache::new(Duration::from_secs(10));
        let start = Instant::now();
        for i in 0..KEY_CACHE_CAPACITY {
            let at = start + Duration::from_millis(i as u64);
            cache.put(format!("k{i}"), caller(), cache.generation(), at);
        }
        let newest = caller();
        let now = start + Duration::from_secs(1);
        cache.put("new".into(), newest.clone(), cache.generation(), now);
        assert_eq!(cache.get("new", now), Some(newest));
        assert_eq!(cache.get("k0", now), None, "the first to expire made room");
        assert!(cache.get("k1", now).is_some(), "the others stay");
        assert_eq!(cache.lock().by_hash.len(), KEY_CACHE_CAPACITY);
    }
}
