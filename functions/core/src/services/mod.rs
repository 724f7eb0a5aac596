//! Use cases. Each takes the [`Context`] (ports + keyring + settings) and parsed input.

use crate::crypto::Keyring;
use crate::ports::{
    ApiKeyStore, Clock, DeliveryQueue, DeliveryStore, EndpointStore, InvestigationStore, SubscriptionStore,
};
use crate::time::Timestamp;
use std::sync::Arc;

/// Tunables shared by the use cases; built from typed config by the adapters crate.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Dev-only `ALLOW_PRIVATE_TARGETS`: admit loopback/private targets (local stack tests).
    pub allow_private_targets: bool,
    /// How long deliveries are also signed with the previous secret after a rotation.
    pub secret_overlap_secs: i64,
    /// Delivery log retention (DynamoDB TTL).
    pub retention_days: i64,
    /// `PUBLIC_BASE_URL`: base of inbound receiver URLs; the request's own host when unset.
    pub public_base_url: Option<String>,
    /// `AUTO_DISABLE_AFTER_SECONDS`: a subscription whose every attempt failed for this long is
    /// disabled (docs/api.md, "Operational events").
    pub auto_disable_after_secs: i64,
    /// `RECOVER_MAX_PER_CALL`: deliveries one recover call replays at most.
    pub recover_max_per_call: usize,
    /// Per-account and per-subscription flow limits (`ACCOUNT_*`, `SUBSCRIPTION_MAX_IN_FLIGHT`).
    pub limits: crate::limits::Limits,
}

impl Settings {
    /// When a record created at `now` leaves the log: `retention_days` later, in whole seconds
    /// (DynamoDB TTL's unit), so every store keeps exactly the same value.
    pub fn expires_at(&self, now: Timestamp) -> Timestamp {
        Timestamp::from_unix_seconds(now.plus_seconds(self.retention_days.saturating_mul(86_400)).unix_seconds())
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            allow_private_targets: false,
            secret_overlap_secs: 24 * 3600,
            retention_days: 30,
            public_base_url: None,
            auto_disable_after_secs: 5 * 86_400,
            recover_max_per_call: 1_000,
            limits: crate::limits::Limits::default(),
        }
    }
}

/// Everything a use case may touch. Built once per Lambda container and shared by reference.
#[derive(Clone)]
pub struct Context {
    /// Master key material: encrypts stored secrets and keys the lookup hashes.
    pub keyring: Keyring,
    /// API key store, for authentication.
    pub api_keys: Arc<dyn ApiKeyStore>,
    /// Outbound subscription store.
    pub subscriptions: Arc<dyn SubscriptionStore>,
    /// Events, deliveries and attempts store.
    pub deliveries: Arc<dyn DeliveryStore>,
    /// Inbound endpoint store.
    pub endpoints: Arc<dyn EndpointStore>,
    /// Investigation store.
    pub investigations: Arc<dyn InvestigationStore>,
    /// The delivery queue the dispatcher consumes.
    pub queue: Arc<dyn DeliveryQueue>,
    /// The time source; a fake in tests.
    pub clock: Arc<dyn Clock>,
    /// The outbound HTTPS sender, for a route that makes an attempt within the request
    /// (`POST …/test?wait=true`); `None` where nothing sends (unit-test contexts).
    pub sender: Option<Arc<dyn crate::ports::WebhookSender>>,
    /// OAuth 2.0 tokens of the receivers with `auth`, cached for the container's life; `None`
    /// where nothing sends (an attempt that needs a token then fails saying so).
    pub tokens: Option<Arc<crate::oauth::cache::TokenCache>>,
    /// Tunables from the environment.
    pub settings: Settings,
    /// Rate counters and in-flight slot leases shared by every instance.
    pub limits: Arc<dyn crate::limits::LimitStore>,
}
pub mod auth;
pub mod dead_letter;
pub mod deliveries;
pub mod dispatch;
pub mod endpoints;
pub mod events;
pub mod fifo;
pub mod ingest;
pub mod investigations;
pub mod json_fields;
pub mod limits;
pub mod oauth_settings;
pub mod operational;
pub mod pacing;
pub mod receive;
mod subscription_keys;
pub mod subscriptions;
pub mod sweeper;
pub mod targets;
pub mod test_events;
