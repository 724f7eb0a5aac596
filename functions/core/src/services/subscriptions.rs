//! Outbound subscriptions: create, list, get, partial update (incl. secret rotation), delete.
//!
//! The signing secret is returned only by create and by an update that changes it; it is stored
//! encrypted with the subscription id as associated data (an Ed25519 subscription's private key
//! likewise, and is never returned: see `subscription_keys`). Deleting a subscription abandons its
//! in-flight deliveries so none is sent afterwards.

use super::json_fields::{text, wrong_type, Fields};
use super::subscription_keys as keys;
use super::{oauth_settings, Context};
use crate::body_formats::Format;
use crate::error::AppError;
use crate::filters::payload::PayloadFilter;
use crate::ids::{SubscriptionId, SubscriptionId as Id};
use crate::model::{Caller, DeliveryStatus, Subscription};
use crate::page::{decode_cursor, encode_cursor, Page};
use crate::ports::SettingsWrite;
use crate::rate::RateLimit;
use crate::validation::{parse_custom_headers, parse_tags, EventPattern, Filters, Severity};
use serde_json::{json, Value};

/// Most entries `events` may have.
pub const MAX_EVENT_PATTERNS: usize = 50;
const MAX_NAME_CHARS: usize = 200;
const CREATE_FIELDS: &[&str] = &[
    "url",
    "events",
    "filters",
    "active",
    "name",
    "secret",
    "format",
    "headers",
    "signature_scheme",
    "public_key",
    "auth",
    "rate_limit_per_second",
    "fifo",
    "destination",
];

/// Parses an id from the path; a malformed id cannot exist, so it is a 404 like an unknown one.
pub fn parse_id(raw: &str) -> Result<SubscriptionId, AppError> {
    Id::parse(raw).map_err(|_| AppError::NotFound("subscription"))
}

fn parse_events(raw: Option<Vec<&str>>) -> Result<Vec<EventPattern>, AppError> {
    let raw = raw.ok_or_else(|| AppError::validation("events", "events is required"))?;
    if raw.is_empty() {
        return Err(AppError::validation("events", "events must not be empty"));
    }
    let mut patterns: Vec<EventPattern> = Vec::with_capacity(raw.len());
    for r in raw {
        let p = EventPattern::parse(r).map_err(AppError::Validation)?;
        if !patterns.contains(&p) {
            patterns.push(p);
        }
    }
    Ok(patterns)
}

fn parse_filters(value: Option<&Value>) -> Result<Filters, AppError> {
    let obj = match value {
        None | Some(Value::Null) => return Ok(Filters::default()),
        Some(Value::Object(o)) => o,
        Some(_) => return Err(wrong_type("filters", "an object")),
    };
    if let Some(k) = obj.keys().find(|k| !["min_severity", "tags", "payload"].contains(&k.as_str())) {
        return Err(AppError::validation(
            "filters",
            format!("unknown field filters.{}", crate::ids::truncate_for_message(k)),
        ));
    }
    let min_severity = match obj.get("min_severity") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(Severity::parse("filters.min_severity", s).map_err(AppError::Validation)?),
        Some(_) => return Err(wrong_type("filters.min_severity", "a string")),
    };
    let tags = match obj.get("tags") {
        None | Some(Value::Null) => Default::default(),
        Some(v) => parse_tags("filters.tags", v).map_err(AppError::Validation)?,
    };
    let payload = match obj.get("payload") {
        None | Some(Value::Null) => None,
        Some(v) => Some(PayloadFilter::parse("filters.payload", v).map_err(AppError::Validation)?),
    };
    Ok(Filters { min_severity, tags, payload })
}

/// `format`: absent or null is `raw`.
fn parse_format(fields: &Fields) -> Result<Format, AppError> {
    fields
        .opt_str("format")?
        .map(Format::parse)
        .transpose()
        .map(Option::unwrap_or_default)
        .map_err(|m| AppError::validation("format", m))
}

/// Sets `sub`'s custom headers from the `headers` field (absent or null: none), encrypting the
/// values like the secret; only the names stay readable.
fn set_headers(ctx: &Context, sub: &mut Subscription, value: Option<&Value>) -> Result<(), AppError> {
    let headers = match value {
        None | Some(Value::Null) => Default::default(),
        Some(v) => parse_custom_headers(v).map_err(AppError::Validation)?,
    };
    sub.header_names = headers.keys().cloned().collect();
    sub.headers_enc = if headers.is_empty() {
        None
    } else {
        let plain = serde_json::to_string(&headers).map_err(|e| AppError::internal("custom headers to store", e))?;
        Some(ctx.keyring.encrypt(&plain, &sub.headers_context()))
    };
    Ok(())
}

/// `rate_limit_per_second`: absent or null is no limit.
fn parse_rate_limit(fields: &Fields) -> Result<Option<RateLimit>, AppError> {
    let field = "rate_limit_per_second";
    match fields.raw(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_u64() {
            Some(n) => RateLimit::parse(n).map(Some).map_err(|m| AppError::validation(field, m)),
            None => Err(AppError::validation(field, RateLimit::parse(0).unwrap_err())),
        },
        Some(_) => Err(wrong_type(field, "an integer or null")),
    }
}

fn parse_name(fields: &Fields) -> Result<Option<String>, AppError> {
    fields.opt_str("name")?.map(|n| text("name", n, MAX_NAME_CHARS)).transpose()
}

/// `POST /v1/webhooks/subscriptions`: validates and stores; the response carries the signing secret, shown only here.
pub async fn create(ctx: &Context, caller: &Caller, body: Value) -> Result<Value, AppError> {
    let fields = Fields::new(body)?;
    fields.deny_unknown(CREATE_FIELDS)?;
    let (url, destination) = super::targets::parse_new(ctx, &fields)?;
    let events = parse_events(fields.opt_str_array("events", MAX_EVENT_PATTERNS)?)?;
    let filters = parse_filters(fields.raw("filters"))?;
    let active = fields.opt_bool("active")?.unwrap_or(true);
    let name = parse_name(&fields)?;
    let format = parse_format(&fields)?;
    let (signature_scheme, key) = keys::initial(&fields)?;
    let rate_limit_per_second = parse_rate_limit(&fields)?;
    let fifo = fields.opt_bool("fifo")?.unwrap_or(false);

    let now = ctx.clock.now();
    let id = Id::generate(now.unix_ms() as u64);
    let mut sub = Subscription {
        secret_enc: keys::seal(ctx, &id, &key),
        id,
        account_id: caller.account_id.clone(),
        name,
        url,
        events,
        filters,
        active,
        format,
        header_names: Vec::new(),
        headers_enc: None,
        auth: None,
        created_at: now,
        updated_at: now,
        last_delivery_status: None,
        last_delivery_at: None,
        previous_secret_enc: None,
        previous_secret_expires_at: None,
        failing_since: None,
        consecutive_failures: 0,
        disabled_reason: None,
        disabled_at: None,
        version: 0,
        signature_scheme,
        public_key: keys::shown_public_key(&key),
        rate_limit_per_second,
        fifo,
        destination,
    };
    set_headers(ctx, &mut sub, fields.raw("headers"))?;
    oauth_settings::set_auth(ctx, &mut sub, &fields)?;
    super::targets::check_fits(&sub)?;
    super::limits::check_subscription_count(ctx, &caller.account_id).await?;
    ctx.subscriptions.insert(&sub).await?;
    tracing::info!(account_id = %sub.account_id, subscription_id = %sub.id, "subscription created");
    Ok(keys::view_with_key(&sub, &key))
}

/// `GET /v1/webhooks/subscriptions`: one page of the caller's subscriptions, oldest first.
pub async fn list(ctx: &Context, caller: &Caller, limit: usize, cursor: Option<&str>) -> Result<Value, AppError> {
    let after = decode_cursor(cursor, Id::parse)?;
    let (subs, last) = ctx.subscriptions.list_page(&caller.account_id, limit, after.as_ref()).await?;
    let page = Page {
        items: subs.iter().map(Subscription::view).collect(),
        next_cursor: last.map(|id| encode_cursor(id.as_str())),
    };
    Ok(json!({ "subscriptions": page.items, "next_cursor": page.next_cursor }))
}

/// Loads a subscription of the caller's account, or 404.
pub async fn load(ctx: &Context, caller: &Caller, raw_id: &str) -> Result<Subscription, AppError> {
    let id = parse_id(raw_id)?;
    ctx.subscriptions.get(&caller.account_id, &id).await?.ok_or(AppError::NotFound("subscription"))
}

/// `GET /v1/webhooks/subscriptions/{id}`: the public view; 404 if not the caller's.
pub async fn get(ctx: &Context, caller: &Caller, raw_id: &str) -> Result<Value, AppError> {
    Ok(load(ctx, caller, raw_id).await?.view())
}

/// `PATCH /v1/webhooks/subscriptions/{id}`: applies the given fields; the response has the secret
/// only when rotated. Reads the subscription fresh and writes only if no other write (another
/// PATCH, an auto-disable) came in between: 409 `conflict` otherwise, and nothing is written, so
/// a rotated secret, a pause or an auto-disable is never silently undone.
pub async fn update(ctx: &Context, caller: &Caller, raw_id: &str, body: Value) -> Result<Value, AppError> {
    let id = parse_id(raw_id)?;
    let mut sub =
        ctx.subscriptions.get_fresh(&caller.account_id, &id).await?.ok_or(AppError::NotFound("subscription"))?;
    let fields = Fields::new(body)?;
    fields.deny_unknown(CREATE_FIELDS)?;
    let read_version = sub.version;
    let mut reenabled = false;

    super::targets::apply_update(ctx, &fields, &mut sub)?;
    if fields.has("events") {
        sub.events = parse_events(fields.opt_str_array("events", MAX_EVENT_PATTERNS)?)?;
    }
    if fields.has("filters") {
        sub.filters = parse_filters(fields.raw("filters"))?;
    }
    if fields.has("active") {
        sub.active = fields.opt_bool("active")?.ok_or_else(|| wrong_type("active", "a boolean"))?;
        if sub.active {
            // Re-enabling clears an auto-disable and restarts its failing clock.
            sub.disabled_reason = None;
            sub.disabled_at = None;
            sub.failing_since = None;
            reenabled = true;
        }
    }
    if fields.has("name") {
        sub.name = parse_name(&fields)?;
    }
    if fields.has("format") {
        sub.format = parse_format(&fields)?;
    }
    if fields.has("fifo") {
        sub.fifo = fields.opt_bool("fifo")?.ok_or_else(|| wrong_type("fifo", "a boolean"))?;
    }
    if fields.has("rate_limit_per_second") {
        sub.rate_limit_per_second = parse_rate_limit(&fields)?;
    }
    if fields.has("headers") {
        set_headers(ctx, &mut sub, fields.raw("headers"))?;
    }
    oauth_settings::set_auth(ctx, &mut sub, &fields)?;
    super::targets::check_fits(&sub)?;
    let now = ctx.clock.now();
    // The outgoing key keeps signing (as a second signature) through the overlap window.
    let rotated = keys::rotate(ctx, &mut sub, &fields, now)?;
    sub.updated_at = now;

    match ctx.subscriptions.update_settings(&sub, read_version, reenabled).await? {
        SettingsWrite::Written => sub.version = read_version + 1,
        SettingsWrite::Gone => return Err(AppError::NotFound("subscription")),
        SettingsWrite::Changed => {
            tracing::info!(account_id = %sub.account_id, subscription_id = %sub.id, "subscription update refused: changed since read");
            return Err(AppError::Conflict(
                "the subscription changed while this update was made; read it again and retry".into(),
            ));
        }
    }
    tracing::info!(account_id = %sub.account_id, subscription_id = %sub.id, secret_rotated = rotated.is_some(), "subscription updated");
    Ok(match rotated {
        Some(key) => keys::view_with_key(&sub, &key),
        None => sub.view(),
    })
}

/// `DELETE /v1/webhooks/subscriptions/{id}`: deletes it and abandons its in-flight deliveries; 404 if not the caller's.
pub async fn delete(ctx: &Context, caller: &Caller, raw_id: &str) -> Result<(), AppError> {
    let id = parse_id(raw_id)?;
    if !ctx.subscriptions.delete(&caller.account_id, &id).await? {
        return Err(AppError::NotFound("subscription"));
    }
    // The subscription is gone first, so a dispatcher racing with this loop also abandons. The
    // delete above is the commit point: if abandoning fails now, the dispatcher abandons each
    // delivery when it next comes up (its subscription is missing), so the answer stays 204. A
    // 503 here would tell the client to retry a delete that already happened (and then 404).
    let now = ctx.clock.now();
    let abandoned = match ctx.deliveries.in_flight_for_subscription(&caller.account_id, &id).await {
        Ok(in_flight) => {
            let mut n = 0;
            for delivery_id in &in_flight {
                match ctx
                    .deliveries
                    .transition(
                        &caller.account_id,
                        delivery_id,
                        &DeliveryStatus::IN_FLIGHT,
                        DeliveryStatus::Abandoned,
                        None,
                        now,
                    )
                    .await
                {
                    Ok(_) => n += 1,
                    Err(e) => {
                        tracing::warn!(account_id = %caller.account_id, subscription_id = %id, delivery_id = %delivery_id, error = %e, "could not abandon a delivery of a deleted subscription; the dispatcher will");
                    }
                }
            }
            n
        }
        Err(e) => {
            tracing::warn!(account_id = %caller.account_id, subscription_id = %id, error = %e, "could not list deliveries of a deleted subscription; the dispatcher will abandon them");
            0
        }
    };
    tracing::info!(account_id = %caller.account_id, subscription_id = %id, abandoned, "subscription deleted");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fakes::{caller, context};
    use crate::time::Timestamp;

    fn body(v: Value) -> Value {
        v
    }

    #[tokio::test]
    async fn create_returns_secret_once_and_get_never() {
        let ctx = context();
        let who = caller();
        let created =
            create(&ctx, &who, body(json!({"url": "https://example.com/h", "events": ["finding.discovered"]})))
                .await
                .unwrap();
        let secret = created["secret"].as_str().unwrap();
        assert!(secret.starts_with("whsec_"));
        let fetched = get(&ctx, &who, created["id"].as_str().unwrap()).await.unwrap();
        assert!(fetched.get("secret").is_none());
        assert_eq!(fetched["active"], true);
        let listed = list(&ctx, &who, 50, None).await.unwrap();
        assert!(!listed.to_string().contains(secret));
    }

    #[tokio::test]
    async fn create_validation_names_the_field() {
        let ctx = context();
        let who = caller();
        let cases = [
            (json!({"url": "http://example.com", "events": ["finding.discovered"]}), "url must use https"),
            (json!({"url": "https://10.0.0.1", "events": ["finding.discovered"]}), "url host is a private"),
            (json!({"events": ["finding.discovered"]}), "url is required"),
            (json!({"url": 5, "events": ["finding.discovered"]}), "url must be a string"),
            (json!({"url": "https://example.com"}), "events is required"),
            (json!({"url": "https://example.com", "events": []}), "events must not be empty"),
            (json!({"url": "https://example.com", "events": ["nope"]}), "events: \"nope\""),
            (json!({"url": "https://example.com", "events": "finding.discovered"}), "events must be an array"),
            (json!({"url": "https://example.com", "events": [1]}), "events items must be strings"),
            (
                json!({"url": "https://example.com", "events": ["finding.discovered"], "filters": {"min_severity": "urgent"}}),
                "filters.min_severity must be one of",
            ),
            (
                json!({"url": "https://example.com", "events": ["finding.discovered"], "filters": {"tags": {"a": 1}}}),
                "filters.tags.a must be a string",
            ),
            (
                json!({"url": "https://example.com", "events": ["finding.discovered"], "filters": []}),
                "filters must be an object",
            ),
            (
                json!({"url": "https://example.com", "events": ["*"], "filters": {"payload": {"host": {"$startsWith": 1}}}}),
                "filters.payload.host.$startsWith: must be a string",
            ),
            (
                json!({"url": "https://example.com", "events": ["finding.discovered"], "active": "yes"}),
                "active must be a boolean",
            ),
            (
                json!({"url": "https://example.com", "events": ["finding.discovered"], "bogus": 1}),
                "unknown field \"bogus\"",
            ),
            (
                json!({"url": "https://example.com", "events": ["finding.discovered"], "secret": "abc"}),
                "secret must start with whsec_",
            ),
            (json!(["not", "an", "object"]), "request body must be a JSON object"),
            (
                json!({"url": "https://example.com", "events": ["*"], "format": "discord"}),
                "format \"discord\" must be one of raw, slack, ms_teams",
            ),
            (json!({"url": "https://example.com", "events": ["*"], "format": 1}), "format must be a string"),
            (
                json!({"url": "https://example.com", "events": ["*"], "headers": {"X-Puck-Thing": "v"}}),
                "headers.X-Puck-Thing is reserved",
            ),
            (
                json!({"url": "https://example.com", "events": ["*"], "headers": "Authorization: x"}),
                "headers must be an object",
            ),
        ];
        for (input, want) in cases {
            match create(&ctx, &who, input.clone()).await {
                Err(AppError::Validation(msg)) => assert!(msg.message.starts_with(want), "{input}: got {msg}"),
                other => panic!("{input}: expected validation error, got {other:?}"),
            }
        }
        assert!(list(&ctx, &who, 50, None).await.unwrap()["subscriptions"].as_array().unwrap().is_empty());
    }

    #[tokio::test]
    async fn patch_changes_only_given_fields_and_rotates_secret() {
        let ctx = context();
        let who = caller();
        let created = create(&ctx, &who, json!({"url": "https://example.com/h", "events": ["finding.discovered"], "filters": {"min_severity": "high"}})).await.unwrap();
        let id = created["id"].as_str().unwrap();
        let paused = update(&ctx, &who, id, json!({"active": false})).await.unwrap();
        assert_eq!(paused["active"], false);
        assert_eq!(paused["filters"]["min_severity"], "high");
        assert!(paused.get("secret").is_none());

        let rotated = update(&ctx, &who, id, json!({"secret": null})).await.unwrap();
        let new_secret = rotated["secret"].as_str().unwrap();
        assert_ne!(new_secret, created["secret"].as_str().unwrap());
        let stored = ctx.subscriptions.get(&who.account_id, &parse_id(id).unwrap()).await.unwrap().unwrap();
        assert!(stored.previous_secret_enc.is_some());
        assert_eq!(ctx.keyring.decrypt(&stored.secret_enc, id).unwrap(), new_secret);

        let set = update(&ctx, &who, id, json!({"secret": "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="}))
            .await
            .unwrap();
        assert_eq!(set["secret"], "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=");
    }

    /// A container: its own config cache over the shared store.
    fn container(mem: &std::sync::Arc<crate::fakes::Memory>) -> Context {
        let cached = crate::cache::CachedSubscriptions::wrap(mem.clone(), std::time::Duration::from_secs(5));
        Context { subscriptions: cached, ..crate::fakes::context_with(mem.clone()) }
    }

    #[tokio::test]
    async fn a_patch_on_a_container_with_a_stale_cache_keeps_a_secret_rotated_on_another() {
        let mem = std::sync::Arc::new(crate::fakes::Memory::default());
        let (one, two) = (container(&mem), container(&mem));
        let who = caller();
        let created = create(&one, &who, json!({"url": "https://example.com/h", "events": ["*"]})).await.unwrap();
        let id = created["id"].as_str().unwrap();
        get(&one, &who, id).await.unwrap(); // cached on one
        let rotated = update(&two, &who, id, json!({"secret": null})).await.unwrap()["secret"].clone();
        let paused = update(&one, &who, id, json!({"active": false})).await.unwrap();
        assert_eq!(paused["active"], false);
        let stored = mem.subs.lock().unwrap().values().next().cloned().unwrap();
        assert_eq!(one.keyring.decrypt(&stored.secret_enc, id).unwrap(), rotated.as_str().unwrap(), "rotation kept");
        assert!(!stored.active && stored.previous_secret_enc.is_some());
    }

    #[tokio::test]
    async fn a_patch_that_raced_an_auto_disable_is_refused_with_409_and_undoes_nothing() {
        let mem = std::sync::Arc::new(crate::fakes::Memory::default());
        let ctx = container(&mem);
        let who = caller();
        let created = create(&ctx, &who, json!({"url": "https://example.com/h", "events": ["*"]})).await.unwrap();
        let id = created["id"].as_str().unwrap();
        let since = Timestamp(1_800_000_000_000);
        mem.subs.lock().unwrap().values_mut().for_each(|s| s.failing_since = Some(since));
        // The auto-disable lands between the PATCH's read and its write.
        *mem.write_after_fresh_read.lock().unwrap() = Some(Box::new(move |s: &mut Subscription| {
            s.active = false;
            s.disabled_reason = Some("failing".into());
            s.version += 1;
        }));
        let refused = update(&ctx, &who, id, json!({"name": "renamed", "secret": null})).await;
        assert!(matches!(refused, Err(AppError::Conflict(_))), "{refused:?}");
        let stored = mem.subs.lock().unwrap().values().next().cloned().unwrap();
        assert_eq!((stored.active, stored.name.as_deref()), (false, None), "the disable stands, nothing written");
        assert!(stored.previous_secret_enc.is_none(), "no secret rotated behind the caller's back");
        // Read again and retried: written. Re-enabling restarts the failing clock.
        let renamed = update(&ctx, &who, id, json!({"name": "renamed", "active": true})).await.unwrap();
        assert_eq!((renamed["name"].clone(), renamed["active"].clone()), (json!("renamed"), json!(true)));
        let stored = mem.subs.lock().unwrap().values().next().cloned().unwrap();
        assert_eq!((stored.failing_since, stored.disabled_reason, stored.version), (None, None, 2));
    }

    #[tokio::test]
    async fn a_patch_leaves_the_attempt_paths_fields_as_stored() {
        let mem = std::sync::Arc::new(crate::fakes::Memory::default());
        let ctx = crate::fakes::context_with(mem.clone());
        let who = caller();
        let created = create(&ctx, &who, json!({"url": "https://example.com/h", "events": ["*"]})).await.unwrap();
        let id = created["id"].as_str().unwrap();
        let since = Timestamp(1_800_000_000_000);
        *mem.write_after_fresh_read.lock().unwrap() = Some(Box::new(move |s: &mut Subscription| {
            s.failing_since = Some(since);
            s.last_delivery_status = Some("failed".into());
        }));
        update(&ctx, &who, id, json!({"name": "n"})).await.unwrap();
        let stored = mem.subs.lock().unwrap().values().next().cloned().unwrap();
        assert_eq!((stored.failing_since, stored.last_delivery_status.as_deref()), (Some(since), Some("failed")));
    }

    #[tokio::test]
    async fn custom_headers_are_stored_encrypted_shown_as_stars_replaced_and_removed() {
        let ctx = context();
        let who = caller();
        let created = create(
            &ctx,
            &who,
            json!({"url": "https://example.com/h", "events": ["*"], "headers": {"Authorization": "Splunk tok-123"}}),
        )
        .await
        .unwrap();
        let id = created["id"].as_str().unwrap();
        assert_eq!(created["headers"], json!({"Authorization": "***"}));
        let stored = ctx.subscriptions.get(&who.account_id, &parse_id(id).unwrap()).await.unwrap().unwrap();
        let enc = stored.headers_enc.clone().unwrap();
        assert!(!enc.contains("tok-123"));
        assert_eq!(
            ctx.keyring.decrypt(&enc, &stored.headers_context()).unwrap(),
            r#"{"Authorization":"Splunk tok-123"}"#
        );
        assert!(!list(&ctx, &who, 50, None).await.unwrap().to_string().contains("tok-123"));

        let replaced = update(&ctx, &who, id, json!({"headers": {"X-Env": "prod"}})).await.unwrap();
        assert_eq!(replaced["headers"], json!({"X-Env": "***"}));
        let untouched = update(&ctx, &who, id, json!({"active": true})).await.unwrap();
        assert_eq!(untouched["headers"], json!({"X-Env": "***"}));
        let removed = update(&ctx, &who, id, json!({"headers": null})).await.unwrap();
        assert_eq!(removed["headers"], json!({}));
        assert!(ctx
            .subscriptions
            .get(&who.account_id, &parse_id(id).unwrap())
            .await
            .unwrap()
            .unwrap()
            .headers_enc
            .is_none());
        assert!(update(&ctx, &who, id, json!({"headers": {"Host": "x"}})).await.is_err());
    }

    #[tokio::test]
    async fn other_accounts_get_404() {
        let ctx = context();
        let created =
            create(&ctx, &caller(), json!({"url": "https://example.com/h", "events": ["agent.*"]})).await.unwrap();
        let id = created["id"].as_str().unwrap();
        let stranger = caller();
        assert_eq!(get(&ctx, &stranger, id).await, Err(AppError::NotFound("subscription")));
        assert_eq!(
            update(&ctx, &stranger, id, json!({"active": false})).await,
            Err(AppError::NotFound("subscription"))
        );
        assert_eq!(delete(&ctx, &stranger, id).await, Err(AppError::NotFound("subscription")));
        assert_eq!(get(&ctx, &stranger, "sub_garbage").await, Err(AppError::NotFound("subscription")));
    }
}
