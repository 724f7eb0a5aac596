//! Use cases. Each takes the [`Context`] (ports + keyring + settings) and parsed input.

use crate::crypto::Keyring;
use crate::ports::{ApiKeyStore, Clock, DeliveryQueue, DeliveryStore, EndpointStore, InvestigationStore, SubscriptionStore};
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
}

impl Default for Settings {
    fn default() -> Self {
        Self { allow_private_targets: false, secret_overlap_secs: 24 * 3600, retention_days: 30, public_base_url: None }
    }
}

/// Everything a use case may touch. Built once per Lambda container and shared by reference.
#[derive(Clone)]
pub struct Context {
    pub keyring: Keyring,
    pub api_keys: Arc<dyn ApiKeyStore>,
    pub subscriptions: Arc<dyn SubscriptionStore>,
    pub deliveries: Arc<dyn DeliveryStore>,
    pub endpoints: Arc<dyn EndpointStore>,
    pub investigations: Arc<dyn InvestigationStore>,
    pub queue: Arc<dyn DeliveryQueue>,
    pub clock: Arc<dyn Clock>,
    pub settings: Settings,
}
pub mod dispatch;
pub mod auth;
pub mod deliveries;
pub mod events;
pub mod input;
pub mod subscriptions;
pub mod sweeper;
pub mod dead_letter;
pub mod inbound;
