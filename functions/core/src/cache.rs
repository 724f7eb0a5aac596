//! Short-lived read caches for the two configuration reads on an account's hottest keys.
//!
//! Every API request reads its key's record (`find_by_hash`), every publish lists the account's
//! subscriptions (`list_all`) and every attempt reads its subscription (`get`). Those reads all
//! land on one DynamoDB partition key per key or per account, which allows 3,000 read units/s:
//! uncached, they, not the sharded delivery writes, would cap one account at about 1,500
//! deliveries/s. A warm function instance therefore keeps each answer for a few seconds
//! (`CONFIG_CACHE_SECONDS`), so a key's read rate is bounded by instances ÷ TTL, not by traffic.
//!
//! What that costs in freshness, and why it is acceptable: a change made through another
//! function instance (a revoked key, an edited, disabled or deleted subscription) reaches a warm
//! instance within the TTL. Writes made through the same store drop the account's cached entries
//! at once, so one process (the local stack) always reads its own writes. Lookups that found
//! nothing are not cached: a key or subscription created a moment ago works at once.

use crate::ids::{AccountId, ApiKeyId, SubscriptionId};
use crate::model::{ApiKeyRecord, DeliveryStatus, Subscription};
use crate::ports::{ApiKeyStore, SettingsWrite, StoreResult, SubscriptionStore};
use crate::time::Timestamp;
use async_trait::async_trait;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Entries beyond this are dropped wholesale (a warm instance serves a bounded set of tenants).
const MAX_ENTRIES: usize = 10_000;

/// A map whose entries expire `ttl` after they were stored.
#[derive(Debug)]
struct TtlMap<K, V> {
    ttl: Duration,
    entries: Mutex<HashMap<K, (Instant, V)>>,
    /// Bumped by every removal: a read that began before one must not store what it read.
    generation: std::sync::atomic::AtomicU64,
}

impl<K: Eq + Hash + Clone, V: Clone> TtlMap<K, V> {
    fn new(ttl: Duration) -> Self {
        Self { ttl, entries: Mutex::new(HashMap::new()), generation: std::sync::atomic::AtomicU64::new(0) }
    }

    fn get(&self, key: &K) -> Option<V> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.get(key).filter(|(at, _)| at.elapsed() < self.ttl).map(|(_, v)| v.clone())
    }

    /// The generation to pass to [`Self::put_unless_removed_since`], taken before a read.
    fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Stores what a read that began at `generation` found, unless something was removed since
    /// (a write raced the read; what it read may be stale).
    fn put_unless_removed_since(&self, generation: u64, key: K, value: V) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if self.generation() != generation {
            return;
        }
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(key, (Instant::now(), value));
    }

    /// Applies `change` to the entry if it is live, keeping the time it was read: a patched
    /// entry still expires `ttl` after its read, so what the cache holds is never older than the
    /// TTL however often it is patched. Skipped if something was removed since `generation`.
    fn patch_unless_removed_since(&self, generation: u64, key: &K, change: impl FnOnce(&mut V)) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if self.generation() != generation {
            return;
        }
        if let Some((_, value)) = entries.get_mut(key).filter(|(at, _)| at.elapsed() < self.ttl) {
            change(value);
        }
    }

    fn retain(&self, keep: impl Fn(&K) -> bool) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        self.generation.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        entries.retain(|k, _| keep(k));
    }
}

/// [`ApiKeyStore`] that remembers found keys, and accounts found to exist, for the TTL; revoking
/// through it forgets the keys (an account, once it exists, stays).
pub struct CachedApiKeys {
    inner: Arc<dyn ApiKeyStore>,
    found: TtlMap<String, ApiKeyRecord>,
    accounts: TtlMap<AccountId, ()>,
}

impl CachedApiKeys {
    /// `inner` itself when `ttl` is zero (no cache at all).
    pub fn wrap(inner: Arc<dyn ApiKeyStore>, ttl: Duration) -> Arc<dyn ApiKeyStore> {
        if ttl.is_zero() {
            return inner;
        }
        Arc::new(Self { inner, found: TtlMap::new(ttl), accounts: TtlMap::new(ttl) })
    }
}

#[async_trait]
impl ApiKeyStore for CachedApiKeys {
    async fn find_by_hash(&self, key_hash: &str) -> StoreResult<Option<ApiKeyRecord>> {
        if let Some(record) = self.found.get(&key_hash.to_owned()) {
            return Ok(Some(record));
        }
        let generation = self.found.generation();
        let found = self.inner.find_by_hash(key_hash).await?;
        if let Some(record) = &found {
            self.found.put_unless_removed_since(generation, key_hash.to_owned(), record.clone());
        }
        Ok(found)
    }

    async fn insert(&self, record: &ApiKeyRecord) -> StoreResult<()> {
        self.inner.insert(record).await
    }

    async fn revoke(&self, account: &AccountId, key_id: &ApiKeyId) -> StoreResult<bool> {
        let revoked = self.inner.revoke(account, key_id).await;
        self.found.retain(|_| false);
        revoked
    }

    async fn account_exists(&self, account: &AccountId) -> StoreResult<bool> {
        if self.accounts.get(account).is_some() {
            return Ok(true);
        }
        let generation = self.accounts.generation();
        let exists = self.inner.account_exists(account).await?;
        if exists {
            self.accounts.put_unless_removed_since(generation, account.clone(), ());
        }
        Ok(exists)
    }
}

/// [`SubscriptionStore`] that remembers `get` and `list_all` answers for the TTL. A write through
/// it forgets the account's entries, except the attempt path's bookkeeping (`record_last_delivery`,
/// `mark_failing`, `clear_failing`), which patches the cached subscription: it runs on many
/// attempts and changes nothing fan-out reads.
pub struct CachedSubscriptions {
    inner: Arc<dyn SubscriptionStore>,
    one: TtlMap<(AccountId, SubscriptionId), Subscription>,
    all: TtlMap<AccountId, Vec<Subscription>>,
}

impl CachedSubscriptions {
    /// `inner` itself when `ttl` is zero (no cache at all).
    pub fn wrap(inner: Arc<dyn SubscriptionStore>, ttl: Duration) -> Arc<dyn SubscriptionStore> {
        if ttl.is_zero() {
            return inner;
        }
        Arc::new(Self { inner, one: TtlMap::new(ttl), all: TtlMap::new(ttl) })
    }

    /// Applies a write's effect to the cached subscription, if cached: the attempt path's
    /// bookkeeping (last delivery, failing clock) then neither re-reads nor re-writes it.
    fn patch(&self, account: &AccountId, id: &SubscriptionId, change: impl FnOnce(&mut Subscription)) {
        let generation = self.one.generation();
        self.one.patch_unless_removed_since(generation, &(account.clone(), id.clone()), change);
    }

    fn forget(&self, account: &AccountId) {
        self.one.retain(|(a, _)| a != account);
        self.all.retain(|a| a != account);
    }
}

#[async_trait]
impl SubscriptionStore for CachedSubscriptions {
    async fn insert(&self, sub: &Subscription) -> StoreResult<()> {
        let out = self.inner.insert(sub).await;
        self.forget(&sub.account_id);
        out
    }

    async fn get(&self, account: &AccountId, id: &SubscriptionId) -> StoreResult<Option<Subscription>> {
        let key = (account.clone(), id.clone());
        if let Some(sub) = self.one.get(&key) {
            return Ok(Some(sub));
        }
        let generation = self.one.generation();
        let found = self.inner.get(account, id).await?;
        if let Some(sub) = &found {
            self.one.put_unless_removed_since(generation, key, sub.clone());
        }
        Ok(found)
    }

    async fn list_page(
        &self,
        account: &AccountId,
        limit: usize,
        after: Option<&SubscriptionId>,
    ) -> StoreResult<(Vec<Subscription>, Option<SubscriptionId>)> {
        // What people and tools list is always read fresh.
        self.inner.list_page(account, limit, after).await
    }

    async fn list_all(&self, account: &AccountId) -> StoreResult<Vec<Subscription>> {
        if let Some(subs) = self.all.get(account) {
            return Ok(subs);
        }
        let generation = self.all.generation();
        let subs = self.inner.list_all(account).await?;
        self.all.put_unless_removed_since(generation, account.clone(), subs.clone());
        Ok(subs)
    }

    async fn get_fresh(&self, account: &AccountId, id: &SubscriptionId) -> StoreResult<Option<Subscription>> {
        self.inner.get_fresh(account, id).await
    }

    async fn update_settings(
        &self,
        sub: &Subscription,
        read_version: u64,
        restart_failing_clock: bool,
    ) -> StoreResult<SettingsWrite> {
        let out = self.inner.update_settings(sub, read_version, restart_failing_clock).await;
        self.forget(&sub.account_id);
        out
    }

    async fn delete(&self, account: &AccountId, id: &SubscriptionId) -> StoreResult<bool> {
        let out = self.inner.delete(account, id).await;
        self.forget(account);
        out
    }

    async fn record_last_delivery(
        &self,
        account: &AccountId,
        id: &SubscriptionId,
        status: DeliveryStatus,
        at: Timestamp,
    ) -> StoreResult<()> {
        self.inner.record_last_delivery(account, id, status, at).await?;
        self.patch(account, id, |sub| {
            // The store keeps a newer outcome than a late write's (docs/storage.md): so does the copy.
            if sub.last_delivery_at.is_none_or(|recorded| recorded <= at) {
                sub.last_delivery_status = Some(status.as_str().to_owned());
                sub.last_delivery_at = Some(at);
            }
        });
        Ok(())
    }

    async fn mark_failing(&self, account: &AccountId, id: &SubscriptionId, since: Timestamp) -> StoreResult<bool> {
        let marked = self.inner.mark_failing(account, id, since).await?;
        if marked {
            self.patch(account, id, |sub| {
                sub.failing_since = Some(since);
                sub.consecutive_failures = 1;
            });
        } else {
            // Already failing since another instance's mark, or gone: read it again.
            self.forget(account);
        }
        Ok(marked)
    }

    async fn clear_failing(&self, account: &AccountId, id: &SubscriptionId) -> StoreResult<()> {
        self.inner.clear_failing(account, id).await?;
        self.patch(account, id, |sub| {
            sub.failing_since = None;
            sub.consecutive_failures = 0;
        });
        Ok(())
    }

    async fn count_failure(
        &self,
        account: &AccountId,
        id: &SubscriptionId,
        failing_since: Timestamp,
        limit: u32,
    ) -> StoreResult<Option<u32>> {
        let counted = self.inner.count_failure(account, id, failing_since, limit).await?;
        match counted {
            Some(n) => self.patch(account, id, |sub| sub.consecutive_failures = n),
            // Counted to the end by another instance, or the run ended: read it again.
            None => self.forget(account),
        }
        Ok(counted)
    }

    async fn disable_failing(
        &self,
        account: &AccountId,
        id: &SubscriptionId,
        failing_since: Timestamp,
        at: Timestamp,
    ) -> StoreResult<bool> {
        let out = self.inner.disable_failing(account, id, failing_since, at).await;
        self.forget(account);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fakes::{subscription_for, Memory};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Counts the reads that reach the store underneath.
    struct Counting {
        inner: Arc<Memory>,
        reads: AtomicUsize,
    }

    #[async_trait]
    impl SubscriptionStore for Counting {
        async fn insert(&self, sub: &Subscription) -> StoreResult<()> {
            SubscriptionStore::insert(&*self.inner, sub).await
        }
        async fn get(&self, account: &AccountId, id: &SubscriptionId) -> StoreResult<Option<Subscription>> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            SubscriptionStore::get(&*self.inner, account, id).await
        }
        async fn list_page(
            &self,
            account: &AccountId,
            limit: usize,
            after: Option<&SubscriptionId>,
        ) -> StoreResult<(Vec<Subscription>, Option<SubscriptionId>)> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            SubscriptionStore::list_page(&*self.inner, account, limit, after).await
        }
        async fn list_all(&self, account: &AccountId) -> StoreResult<Vec<Subscription>> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            SubscriptionStore::list_all(&*self.inner, account).await
        }
        async fn update_settings(&self, sub: &Subscription, v: u64, restart: bool) -> StoreResult<SettingsWrite> {
            SubscriptionStore::update_settings(&*self.inner, sub, v, restart).await
        }
        async fn delete(&self, account: &AccountId, id: &SubscriptionId) -> StoreResult<bool> {
            SubscriptionStore::delete(&*self.inner, account, id).await
        }
        async fn record_last_delivery(
            &self,
            account: &AccountId,
            id: &SubscriptionId,
            status: DeliveryStatus,
            at: Timestamp,
        ) -> StoreResult<()> {
            SubscriptionStore::record_last_delivery(&*self.inner, account, id, status, at).await
        }
        async fn mark_failing(&self, account: &AccountId, id: &SubscriptionId, since: Timestamp) -> StoreResult<bool> {
            SubscriptionStore::mark_failing(&*self.inner, account, id, since).await
        }
        async fn clear_failing(&self, account: &AccountId, id: &SubscriptionId) -> StoreResult<()> {
            SubscriptionStore::clear_failing(&*self.inner, account, id).await
        }
        async fn count_failure(
            &self,
            account: &AccountId,
            id: &SubscriptionId,
            failing_since: Timestamp,
            limit: u32,
        ) -> StoreResult<Option<u32>> {
            SubscriptionStore::count_failure(&*self.inner, account, id, failing_since, limit).await
        }
        async fn disable_failing(
            &self,
            account: &AccountId,
            id: &SubscriptionId,
            failing_since: Timestamp,
            at: Timestamp,
        ) -> StoreResult<bool> {
            SubscriptionStore::disable_failing(&*self.inner, account, id, failing_since, at).await
        }
    }

    fn counted() -> Arc<Counting> {
        Arc::new(Counting { inner: Arc::new(Memory::default()), reads: AtomicUsize::new(0) })
    }

    /// A counted store holding one subscription, and a cache over it with `ttl`.
    async fn stored_and_cached(ttl: Duration) -> (Arc<Counting>, Arc<dyn SubscriptionStore>, Subscription) {
        let store = counted();
        let cached = CachedSubscriptions::wrap(store.clone(), ttl);
        let sub = subscription_for(&["agent.*"]);
        SubscriptionStore::insert(&*store, &sub).await.unwrap();
        (store, cached, sub)
    }

    #[tokio::test]
    async fn reads_within_the_ttl_are_served_from_the_cache_and_expire_after_it() {
        let (store, cached, sub) = stored_and_cached(Duration::from_millis(40)).await;
        for _ in 0..3 {
            assert_eq!(cached.list_all(&sub.account_id).await.unwrap().len(), 1);
            assert_eq!(cached.get(&sub.account_id, &sub.id).await.unwrap().unwrap().id, sub.id);
        }
        assert_eq!(store.reads.load(Ordering::SeqCst), 2, "one list and one get reached the store");
        tokio::time::sleep(Duration::from_millis(60)).await;
        cached.list_all(&sub.account_id).await.unwrap();
        assert_eq!(store.reads.load(Ordering::SeqCst), 3, "expired: read again");
    }

    #[tokio::test]
    async fn a_write_through_the_cache_is_read_back_at_once() {
        let store = counted();
        let cached = CachedSubscriptions::wrap(store.clone(), Duration::from_secs(3600));
        let sub = subscription_for(&["agent.*"]);
        assert!(cached.list_all(&sub.account_id).await.unwrap().is_empty());
        cached.insert(&sub).await.unwrap();
        assert_eq!(cached.list_all(&sub.account_id).await.unwrap().len(), 1, "the insert dropped the empty list");
        let disabled = Subscription { active: false, ..sub.clone() };
        assert_eq!(cached.update_settings(&disabled, 0, false).await.unwrap(), SettingsWrite::Written);
        assert!(!cached.get(&sub.account_id, &sub.id).await.unwrap().unwrap().active);
        assert!(cached.delete(&sub.account_id, &sub.id).await.unwrap());
        assert!(cached.get(&sub.account_id, &sub.id).await.unwrap().is_none());
        assert!(cached.list_all(&sub.account_id).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_missing_subscription_is_not_remembered_as_missing() {
        let store = counted();
        let cached = CachedSubscriptions::wrap(store.clone(), Duration::from_secs(3600));
        let sub = subscription_for(&["agent.*"]);
        assert!(cached.get(&sub.account_id, &sub.id).await.unwrap().is_none());
        SubscriptionStore::insert(&*store, &sub).await.unwrap();
        assert!(cached.get(&sub.account_id, &sub.id).await.unwrap().is_some(), "created elsewhere, found at once");
    }

    #[tokio::test]
    async fn last_delivery_is_patched_into_the_cached_subscription() {
        let (store, cached, sub) = stored_and_cached(Duration::from_secs(3600)).await;
        cached.get(&sub.account_id, &sub.id).await.unwrap();
        let at = Timestamp::from_unix_seconds(1_700_000_000);
        cached.record_last_delivery(&sub.account_id, &sub.id, DeliveryStatus::Succeeded, at).await.unwrap();
        let seen = cached.get(&sub.account_id, &sub.id).await.unwrap().unwrap();
        assert_eq!((seen.last_delivery_status.as_deref(), seen.last_delivery_at), (Some("succeeded"), Some(at)));
        assert_eq!(store.reads.load(Ordering::SeqCst), 1, "patched, not read again");
    }

    #[tokio::test]
    async fn the_failing_clock_is_patched_so_the_next_attempt_sees_it_without_a_read() {
        let (store, cached, sub) = stored_and_cached(Duration::from_secs(3600)).await;
        cached.get(&sub.account_id, &sub.id).await.unwrap();
        let since = Timestamp::from_unix_seconds(1_700_000_000);
        assert!(cached.mark_failing(&sub.account_id, &sub.id, since).await.unwrap());
        assert_eq!(cached.get(&sub.account_id, &sub.id).await.unwrap().unwrap().failing_since, Some(since));
        cached.clear_failing(&sub.account_id, &sub.id).await.unwrap();
        assert_eq!(cached.get(&sub.account_id, &sub.id).await.unwrap().unwrap().failing_since, None);
        assert_eq!(store.reads.load(Ordering::SeqCst), 1, "patched, not read again");
        let stored = SubscriptionStore::get(&*store, &sub.account_id, &sub.id).await.unwrap().unwrap();
        assert_eq!(stored.failing_since, None, "the writes reached the store");
    }

    /// The attempt path patches the cached subscription on many attempts (its last delivery
    /// alternates between `failed` and `failed_permanent` under a stream of failures): a change
    /// made on another container (a re-enable, a new failing clock) must still arrive within the
    /// TTL, or a stale copy could decide auto-disable forever.
    #[tokio::test]
    async fn patches_do_not_keep_a_cached_subscription_past_its_ttl() {
        let (store, cached, sub) = stored_and_cached(Duration::from_millis(60)).await;
        cached.get(&sub.account_id, &sub.id).await.unwrap();
        let elsewhere = Subscription { active: false, version: 1, ..sub.clone() };
        assert_eq!(
            SubscriptionStore::update_settings(&*store, &elsewhere, 0, false).await.unwrap(),
            SettingsWrite::Written
        );
        let at = Timestamp::from_unix_seconds(1_700_000_000);
        for n in 0..12 {
            let status = if n % 2 == 0 { DeliveryStatus::Failed } else { DeliveryStatus::FailedPermanent };
            cached.record_last_delivery(&sub.account_id, &sub.id, status, at).await.unwrap();
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(!cached.get(&sub.account_id, &sub.id).await.unwrap().unwrap().active, "the change arrived");
    }

    #[test]
    fn a_read_that_raced_a_removal_is_not_stored() {
        let map: TtlMap<u32, &str> = TtlMap::new(Duration::from_secs(3600));
        let before = map.generation();
        map.retain(|_| false);
        map.put_unless_removed_since(before, 1, "read before the removal");
        assert_eq!(map.get(&1), None);
        map.put_unless_removed_since(map.generation(), 1, "read after");
        assert_eq!(map.get(&1), Some("read after"));
    }

    #[tokio::test]
    async fn a_zero_ttl_is_no_cache() {
        let (store, cached, sub) = stored_and_cached(Duration::ZERO).await;
        cached.list_all(&sub.account_id).await.unwrap();
        cached.list_all(&sub.account_id).await.unwrap();
        assert_eq!(store.reads.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn revoking_through_the_cache_takes_effect_at_once() {
        let mem = Arc::new(Memory::default());
        let cached = CachedApiKeys::wrap(mem.clone(), Duration::from_secs(3600));
        let caller = crate::fakes::caller();
        let record = ApiKeyRecord {
            key_id: caller.key_id,
            account_id: caller.account_id,
            key_hash: "ab".repeat(32),
            key_prefix: "pck_live_abcd".into(),
            scopes: caller.scopes,
            revoked: false,
            created_at: Timestamp::from_unix_seconds(1_700_000_000),
        };
        ApiKeyStore::insert(&*mem, &record).await.unwrap();
        assert!(!cached.find_by_hash(&record.key_hash).await.unwrap().unwrap().revoked);
        assert!(cached.revoke(&record.account_id, &record.key_id).await.unwrap());
        assert!(cached.find_by_hash(&record.key_hash).await.unwrap().unwrap().revoked);
    }

    #[tokio::test]
    async fn an_account_is_known_once_a_key_was_issued_to_it_and_an_unknown_one_is_not_remembered() {
        let mem = Arc::new(Memory::default());
        let cached = CachedApiKeys::wrap(mem.clone(), Duration::from_secs(3600));
        let caller = crate::fakes::caller();
        assert!(!cached.account_exists(&caller.account_id).await.unwrap());
        let record = ApiKeyRecord {
            key_id: caller.key_id,
            account_id: caller.account_id.clone(),
            key_hash: "cd".repeat(32),
            key_prefix: "pck_live_abcd".into(),
            scopes: caller.scopes,
            revoked: false,
            created_at: Timestamp::from_unix_seconds(1_700_000_000),
        };
        ApiKeyStore::insert(&*mem, &record).await.unwrap();
        assert!(cached.account_exists(&caller.account_id).await.unwrap(), "a new account counts at once");
        mem.keys.lock().unwrap().clear();
        assert!(cached.account_exists(&caller.account_id).await.unwrap(), "a known account is remembered");
    }
}
