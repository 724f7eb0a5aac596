//! Where a subscription delivers: `url` (an HTTPS receiver) or `destination` (an AWS queue or
//! event bus), exactly one of the two, and the settings that only make sense for HTTPS.
//!
//! Kept apart from the subscription use cases so the rule lives in one place for create and
//! update: a PATCH may switch a subscription from one kind of target to the other, and whatever
//! it changes, the result must still fit its target (docs/receiving.md, "AWS destinations").

use super::json_fields::Fields;
use super::Context;
use crate::body_formats::Format;
use crate::destination::AwsDestination;
use crate::error::AppError;
use crate::model::Subscription;
use crate::validation::TargetUrl;

/// The target of a new subscription: exactly one of `url` and `destination` → else 400.
pub fn parse_new(ctx: &Context, fields: &Fields) -> Result<(Option<TargetUrl>, Option<AwsDestination>), AppError> {
    let destination = fields.raw("destination").filter(|v| !v.is_null());
    match (fields.opt_str("url")?, destination) {
        (Some(_), Some(_)) => Err(both()),
        (Some(url), None) => Ok((Some(parse_url(ctx, url)?), None)),
        (None, Some(d)) => Ok((None, Some(AwsDestination::parse(d)?))),
        (None, None) => {
            Err(AppError::validation("url", "url is required (or destination, for an AWS queue or event bus)"))
        }
    }
}

/// A PATCH's `url` or `destination` (at most one of them): the subscription switches to that
/// target and drops the other.
pub fn apply_update(ctx: &Context, fields: &Fields, sub: &mut Subscription) -> Result<(), AppError> {
    match (fields.has("url"), fields.has("destination")) {
        (true, true) => Err(both()),
        (true, false) => {
            sub.url = Some(parse_url(ctx, fields.req_str("url")?)?);
            sub.destination = None;
            Ok(())
        }
        (false, true) => {
            let raw = fields.raw("destination").filter(|v| !v.is_null()).ok_or_else(|| {
                AppError::validation("destination", "destination must be an object (give url to deliver over HTTPS)")
            })?;
            sub.destination = Some(AwsDestination::parse(raw)?);
            sub.url = None;
            Ok(())
        }
        (false, false) => Ok(()),
    }
}

/// A subscription with an AWS destination sends the envelope as is (`format: raw`) and has no
/// custom headers or OAuth `auth`: a queue message or event has no request to put them on.
pub fn check_fits(sub: &Subscription) -> Result<(), AppError> {
    if sub.destination.is_none() {
        return Ok(());
    }
    if sub.format != Format::Raw {
        return Err(AppError::validation("format", "format must be raw for an AWS destination"));
    }
    if !sub.header_names.is_empty() {
        return Err(AppError::validation("headers", "headers do not apply to an AWS destination"));
    }
    if sub.auth.is_some() {
        return Err(AppError::validation(
            "auth",
            "auth does not apply to an AWS destination (its role is the credential)",
        ));
    }
    Ok(())
}

fn parse_url(ctx: &Context, raw: &str) -> Result<TargetUrl, AppError> {
    TargetUrl::parse_with(raw, ctx.settings.allow_private_targets).map_err(AppError::Validation)
}

fn both() -> AppError {
    AppError::validation("destination", "give either url or destination, not both")
}

#[cfg(test)]
mod tests {
    use crate::fakes::{caller, context};
    use crate::services::subscriptions::{create, get, update};
    use serde_json::{json, Value};

    fn sqs() -> Value {
        json!({"type": "sqs", "queue_url": "https://sqs.us-east-1.amazonaws.com/111122223333/q", "role_arn": "arn:aws:iam::111122223333:role/r"})
    }

    fn field_of(e: crate::AppError) -> (String, String) {
        match e {
            crate::AppError::Validation(v) => (v.field, v.message),
            other => panic!("not a 400: {other:?}"),
        }
    }

    #[tokio::test]
    async fn create_with_a_destination_shows_it_and_no_url() {
        let (ctx, who) = (context(), caller());
        let created = create(&ctx, &who, json!({"destination": sqs(), "events": ["*"]})).await.unwrap();
        assert_eq!(created["destination"], sqs());
        assert_eq!(created["url"], Value::Null);
        assert!(created["secret"].as_str().unwrap().starts_with("whsec_"), "messages are signed too");
        let fetched = get(&ctx, &who, created["id"].as_str().unwrap()).await.unwrap();
        assert_eq!(fetched["destination"], sqs());
    }

    #[tokio::test]
    async fn create_returns_400_unless_exactly_one_target_fits() {
        let (ctx, who) = (context(), caller());
        let cases = [
            (json!({"events": ["*"]}), "url", "url is required"),
            (json!({"url": "https://example.com", "destination": sqs(), "events": ["*"]}), "destination", "not both"),
            (json!({"destination": sqs(), "events": ["*"], "format": "slack"}), "format", "format must be raw"),
            (
                json!({"destination": sqs(), "events": ["*"], "headers": {"Authorization": "x"}}),
                "headers",
                "headers do not apply",
            ),
            (json!({"destination": {"type": "sqs"}, "events": ["*"]}), "destination.queue_url", "is required"),
            (
                json!({"destination": sqs(), "events": ["*"], "auth": {"type": "oauth2_client_credentials",
                    "token_url": "https://auth.example.com/token", "client_id": "c", "client_secret": "s"}}),
                "auth",
                "auth does not apply",
            ),
        ];
        for (body, field, message) in cases {
            let (f, m) = field_of(create(&ctx, &who, body.clone()).await.unwrap_err());
            assert_eq!(f, field, "{body}");
            assert!(m.contains(message), "{body}: {m}");
        }
    }

    #[tokio::test]
    async fn update_switches_between_url_and_destination_and_keeps_the_fit() {
        let (ctx, who) = (context(), caller());
        let created = create(&ctx, &who, json!({"url": "https://example.com/h", "events": ["*"], "format": "slack"}))
            .await
            .unwrap();
        let id = created["id"].as_str().unwrap();
        let e = update(&ctx, &who, id, json!({"destination": sqs()})).await.unwrap_err();
        assert_eq!(field_of(e).0, "format", "a slack subscription cannot move to a queue as is");
        let moved = update(&ctx, &who, id, json!({"destination": sqs(), "format": "raw"})).await.unwrap();
        assert_eq!((moved["url"].clone(), moved["destination"].clone()), (Value::Null, sqs()));
        let e = update(&ctx, &who, id, json!({"headers": {"X-Team": "a"}})).await.unwrap_err();
        assert_eq!(field_of(e).0, "headers");
        let e = update(&ctx, &who, id, json!({"destination": null})).await.unwrap_err();
        assert_eq!(field_of(e).0, "destination");
        let back = update(&ctx, &who, id, json!({"url": "https://example.com/back"})).await.unwrap();
        assert_eq!(
            (back["url"].clone(), back["destination"].clone()),
            (json!("https://example.com/back"), Value::Null)
        );
    }
}
