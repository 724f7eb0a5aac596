//! The inbound side's records: providers, endpoints (receiver URLs) and the investigations their
//! events start, with their public views.

use crate::ids::{AccountId, EndpointId, InvestigationId};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Inbound providers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// Any sender that POSTs a JSON object with a `query`.
    Generic,
    /// GitHub webhooks (security events, chosen by `X-GitHub-Event`).
    Github,
    /// CrowdStrike Falcon detection and incident notifications.
    Crowdstrike,
}

impl Provider {
    /// Every provider, in the order lists show them.
    pub const ALL: [Provider; 3] = [Provider::Generic, Provider::Github, Provider::Crowdstrike];

    /// The wire name: `generic`, `github` or `crowdstrike`.
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Generic => "generic",
            Provider::Github => "github",
            Provider::Crowdstrike => "crowdstrike",
        }
    }

    /// Parses a wire name; None for an unknown provider.
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == raw)
    }
}

/// An inbound receiver endpoint as stored: the URL key only as a keyed hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Endpoint {
    /// `ep_` id, also the AES-GCM context of the signing secret.
    pub id: EndpointId,
    /// The owning account.
    pub account_id: AccountId,
    /// Which receiver parses and verifies its requests.
    pub provider: Provider,
    /// Hex keyed hash of the secret URL key; the key itself is shown once, at creation.
    pub url_key_hash: String,
    /// The first characters of the URL key, to recognise it in a list.
    pub url_key_prefix: String,
    /// Provider signing secret, AES-256-GCM with the endpoint id as context.
    pub signing_secret_enc: Option<String>,
    /// False stops accepting requests at the endpoint.
    pub active: bool,
    /// Scope of its investigations when the event names none; None for no default.
    pub default_scope: Option<Value>,
    /// Depth (`quick`, `standard`, `deep`) of its investigations when the event names none; None for no default.
    pub default_depth: Option<String>,
    /// When the endpoint was created.
    pub created_at: Timestamp,
}

impl Endpoint {
    /// The public shape: no secret, no key hash; `signature_verification` says whether a secret is set.
    pub fn view(&self) -> Value {
        json!({
            "id": self.id,
            "provider": self.provider,
            "url_key_prefix": self.url_key_prefix,
            "active": self.active,
            "signature_verification": self.signing_secret_enc.is_some(),
            "default_scope": self.default_scope,
            "default_depth": self.default_depth,
            "created_at": self.created_at,
        })
    }
}

/// An investigation triggered by an inbound event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Investigation {
    /// `inv_` id.
    pub id: InvestigationId,
    /// The owning account (the endpoint's).
    pub account_id: AccountId,
    /// Lifecycle state as a string, e.g. `queued`.
    pub status: String,
    /// The receiver it came in through.
    pub provider: Provider,
    /// The endpoint it came in through.
    pub endpoint_id: EndpointId,
    /// What triggered it, e.g. `github:code_scanning_alert` or `generic`.
    pub trigger: String,
    /// The question asked of the agents, built from the provider's payload.
    pub query: String,
    /// One-line description of the triggering event, for lists.
    pub summary: String,
    /// Agents asked to run the investigation.
    pub agent_ids: Vec<String>,
    /// What the agents may look at; None for the endpoint's default or none.
    pub scope: Option<Value>,
    /// How deep to go; None for the endpoint's default or none.
    pub depth: Option<String>,
    /// When it was created.
    pub created_at: Timestamp,
}

impl Investigation {
    /// The public shape returned by the investigations API.
    pub fn view(&self) -> Value {
        json!({
            "id": self.id,
            "status": self.status,
            "provider": self.provider,
            "endpoint_id": self.endpoint_id,
            "trigger": self.trigger,
            "query": self.query,
            "summary": self.summary,
            "agent_ids": self.agent_ids,
            "scope": self.scope,
            "depth": self.depth,
            "created_at": self.created_at,
        })
    }
}
