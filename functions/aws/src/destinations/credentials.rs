//! Credentials for the customers' roles: one `AssumeRole` per role and Puck account, cached until
//! shortly before they expire, so a steady stream of deliveries costs one STS call per role an
//! hour rather than one per attempt.
//!
//! Keyed by role *and* external id: two Puck accounts naming the same role never share
//! credentials, so a role trusting only its owner's external id is never used for another
//! account's deliveries (the confused-deputy guard of the trust policy in docs/receiving.md).

use super::{answer_of, Creds};
use puck_core::destination::RoleArn;
use puck_core::sending::AwsAnswer;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

/// `RoleSessionName` of every assumed session: names the service in the customer's CloudTrail.
pub const SESSION_NAME: &str = "puck-webhooks";
/// Requested session length: one hour, the default maximum of a role.
const SESSION_SECS: i32 = 3600;
/// Credentials are refreshed this long before they expire, so none expires during a send.
const REFRESH_BEFORE: Duration = Duration::from_secs(300);
/// Entries beyond this are dropped wholesale (a warm container serves a bounded set of roles).
const MAX_ENTRIES: usize = 10_000;

type Key = (String, String);

/// The per-container cache of assumed-role credentials.
pub struct RoleCredentials {
    sts: aws_sdk_sts::Client,
    cached: Mutex<HashMap<Key, Creds>>,
    /// Held while assuming, so a batch of attempts for one role makes one STS call.
    assuming: tokio::sync::Mutex<()>,
}

impl RoleCredentials {
    pub fn new(sts: aws_sdk_sts::Client) -> Self {
        Self { sts, cached: Mutex::default(), assuming: tokio::sync::Mutex::new(()) }
    }

    /// Credentials of `role` assumed with `external_id`: cached while fresh, else assumed now. An
    /// STS refusal is the attempt's answer, its code prefixed `AssumeRole: `.
    pub async fn get(&self, role: &RoleArn, external_id: &str) -> Result<Creds, AwsAnswer> {
        let key = (role.as_str().to_owned(), external_id.to_owned());
        if let Some(c) = self.fresh(&key, SystemTime::now()) {
            return Ok(c);
        }
        let _one_at_a_time = self.assuming.lock().await;
        if let Some(c) = self.fresh(&key, SystemTime::now()) {
            return Ok(c);
        }
        let assumed = self
            .sts
            .assume_role()
            .role_arn(role.as_str())
            .role_session_name(SESSION_NAME)
            .external_id(external_id)
            .duration_seconds(SESSION_SECS)
            .send()
            .await
            .map_err(|e| answer_of(e, "AssumeRole: "))?;
        let Some(c) = assumed.credentials() else {
            return Err(AwsAnswer::Unreachable { error: "AssumeRole: no credentials in the answer".into() });
        };
        let expires = SystemTime::try_from(*c.expiration()).unwrap_or_else(|_| SystemTime::now());
        let creds = Creds::new(
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token().to_owned()),
            Some(expires),
            "puck-assume-role",
        );
        tracing::info!(
            role_arn = role.as_str(),
            expires_in_secs = expires.duration_since(SystemTime::now()).map(|d| d.as_secs()).unwrap_or(0),
            "assumed a destination role"
        );
        let mut cached = self.cached.lock().expect("role credential cache");
        if cached.len() >= MAX_ENTRIES {
            cached.clear();
        }
        cached.insert(key, creds.clone());
        Ok(creds)
    }

    fn fresh(&self, key: &Key, now: SystemTime) -> Option<Creds> {
        let cached = self.cached.lock().expect("role credential cache");
        cached.get(key).filter(|c| is_fresh(c.expiry(), now)).cloned()
    }
}

/// Whether credentials expiring at `expiry` may still be used at `now`: more than
/// [`REFRESH_BEFORE`] left.
fn is_fresh(expiry: Option<SystemTime>, now: SystemTime) -> bool {
    expiry.is_some_and(|at| at > now + REFRESH_BEFORE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_refreshed_five_minutes_before_they_expire() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert!(is_fresh(Some(now + Duration::from_secs(301)), now));
        assert!(!is_fresh(Some(now + Duration::from_secs(300)), now));
        assert!(!is_fresh(Some(now - Duration::from_secs(1)), now));
        assert!(!is_fresh(None, now), "credentials without an expiry are never cached");
    }
}
