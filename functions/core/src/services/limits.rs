//! The per-account limits of docs/flow-control.md: publish rate, test-event rate, subscription
//! count. Each check runs before anything of the request is written, so a refused request has
//! done nothing; a rate check is one conditional write of the account's counter for the current
//! window, whatever the number of events.

use super::Context;
use crate::error::AppError;
use crate::ids::AccountId;
use crate::limits::{counter_shards, shard_share, Window};

/// Counts `events` events against `ACCOUNT_PUBLISH_PER_SECOND` (a 1 s window); over it →
/// [`AppError::RateLimited`] and none of them may be published.
pub async fn check_publish(ctx: &Context, account: &AccountId, events: usize) -> Result<(), AppError> {
    let limit = ctx.settings.limits.publish_per_second;
    let amount = u32::try_from(events).unwrap_or(u32::MAX);
    take(ctx, account, Window::at("publish", 1, ctx.clock.now()), amount, limit, |retry| {
        format!(
            "this account publishes at most {limit} events per second; {amount} more are over it: \
             nothing was published, retry after {retry} s"
        )
    })
    .await
}

/// Counts one `POST …/test` against `ACCOUNT_TESTS_PER_MINUTE` (a 60 s window).
pub async fn check_test(ctx: &Context, account: &AccountId) -> Result<(), AppError> {
    let limit = ctx.settings.limits.tests_per_minute;
    take(ctx, account, Window::at("test", 60, ctx.clock.now()), 1, limit, |retry| {
        format!("this account sends at most {limit} test events per minute; retry after {retry} s")
    })
    .await
}

/// Refuses a new subscription once the account has `ACCOUNT_MAX_SUBSCRIPTIONS`. The count is
/// the account's subscription list as the instance sees it (`CONFIG_CACHE_SECONDS`), so creates
/// running at once on several instances may pass it by their number.
pub async fn check_subscription_count(ctx: &Context, account: &AccountId) -> Result<(), AppError> {
    let max = ctx.settings.limits.max_subscriptions;
    let have = ctx.subscriptions.list_all(account).await?.len();
    if have >= max as usize {
        tracing::info!(%account, subscriptions = have, limit = max, "subscription refused: account limit");
        return Err(AppError::LimitExceeded(format!(
            "this account has {have} subscriptions, the most it may have ({max}); delete one first"
        )));
    }
    Ok(())
}

/// How many shards of a sharded counter one request tries before it is refused.
const SHARDS_TRIED: u32 = 3;

/// Counts `amount` in the window's counter: in one exact counter for a small limit, else in one of
/// its [`counter_shards`] (a random one first, then the next ones), each holding its share of the
/// limit. Close to the limit a request may be refused while another shard still has room: an
/// account then gets a little less than its limit, never more.
async fn take_in_some_shard(
    ctx: &Context,
    account: &AccountId,
    window: &Window,
    amount: u32,
    limit: u32,
) -> Result<bool, AppError> {
    let shards = counter_shards(limit, window.secs);
    if shards == 1 {
        return Ok(ctx.limits.take(account, window, amount, limit).await?);
    }
    let first = rand::random::<u32>() % shards;
    for k in 0..SHARDS_TRIED.min(shards) {
        let shard = (first + k) % shards;
        if ctx.limits.take(account, &window.in_shard(shard), amount, shard_share(limit, shards, shard)).await? {
            return Ok(true);
        }
    }
    Ok(false)
}

async fn take(
    ctx: &Context,
    account: &AccountId,
    window: Window,
    amount: u32,
    limit: u32,
    message: impl Fn(u32) -> String,
) -> Result<(), AppError> {
    if take_in_some_shard(ctx, account, &window, amount, limit).await? {
        return Ok(());
    }
    let retry_after_secs = window.retry_after_secs(ctx.clock.now());
    tracing::info!(%account, limit_name = window.name, amount, limit, retry_after_secs, "request refused: account rate limit");
    Err(AppError::RateLimited { message: message(retry_after_secs), retry_after_secs })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fakes::{caller, context_with, Memory};
    use crate::limits::Limits;
    use crate::services::{events, subscriptions, test_events};
    use serde_json::json;
    use std::sync::Arc;

    /// A clock stopped in the middle of a minute, so no window ends during a test.
    struct Stopped;
    impl crate::ports::Clock for Stopped {
        fn now(&self) -> crate::time::Timestamp {
            crate::time::Timestamp(1_700_000_010_000)
        }
    }

    fn limited(limits: Limits) -> (Context, Arc<Memory>) {
        let mem = Arc::new(Memory::default());
        let mut ctx = context_with(mem.clone());
        ctx.settings.limits = limits;
        ctx.clock = Arc::new(Stopped);
        (ctx, mem)
    }

    #[tokio::test]
    async fn a_batch_over_the_publish_rate_publishes_nothing_and_says_when_to_retry() {
        let (ctx, mem) = limited(Limits { publish_per_second: 3, ..Limits::default() });
        let who = caller();
        subscriptions::create(&ctx, &who, json!({"url": "https://example.com/h", "events": ["chain.*"]}))
            .await
            .unwrap();
        let batch = |n: usize| json!({"events": (0..n).map(|i| json!({"event_type": "chain.confirmed", "data": {"i": i}})).collect::<Vec<_>>()});
        let err = events::publish_batch(&ctx, &who, batch(4)).await.unwrap_err();
        let AppError::RateLimited { retry_after_secs, .. } = err else { panic!("{err:?}") };
        assert_eq!(retry_after_secs, 1);
        assert!(mem.deliveries.lock().unwrap().is_empty(), "nothing of a refused batch is written");
        assert!(mem.queue.lock().unwrap().is_empty());
        // A refused request takes nothing from the window: 3 still fit, then nothing.
        assert_eq!(events::publish_batch(&ctx, &who, batch(3)).await.unwrap().len(), 3);
        let err = events::publish(&ctx, &who, json!({"event_type": "chain.confirmed", "data": {}})).await;
        assert!(matches!(err, Err(AppError::RateLimited { .. })), "{err:?}");
    }

    #[tokio::test]
    async fn a_sharded_publish_counter_never_lets_an_account_past_its_limit() {
        // 1,000 a second: three shards of 334, 333 and 333 events.
        let (ctx, _) = limited(Limits { publish_per_second: 1_000, ..Limits::default() });
        let account = caller().account_id;
        let mut admitted = 0;
        for _ in 0..40 {
            if check_publish(&ctx, &account, 100).await.is_ok() {
                admitted += 100;
            }
        }
        assert!((900..=1_000).contains(&admitted), "admitted {admitted} of a 1,000 limit");
        let err = check_publish(&ctx, &account, 100).await.unwrap_err();
        assert!(matches!(err, AppError::RateLimited { retry_after_secs: 1, .. }), "{err:?}");
    }

    #[tokio::test]
    async fn the_test_rate_and_the_subscription_count_are_limits_of_the_account() {
        let (ctx, _) = limited(Limits { tests_per_minute: 2, max_subscriptions: 2, ..Limits::default() });
        let who = caller();
        let body = json!({"url": "https://example.com/h", "events": ["chain.*"]});
        let first = subscriptions::create(&ctx, &who, body.clone()).await.unwrap();
        subscriptions::create(&ctx, &who, body.clone()).await.unwrap();
        let err = subscriptions::create(&ctx, &who, body.clone()).await.unwrap_err();
        assert!(matches!(err, AppError::LimitExceeded(_)), "{err:?}");
        assert!(subscriptions::create(&ctx, &caller_of_other_account(), body).await.is_ok(), "per account");

        let id = first["id"].as_str().unwrap();
        let mut outcomes = Vec::new();
        for _ in 0..3 {
            outcomes.push(test_events::send_test_event(&ctx, &who, id, None, false).await);
        }
        assert!(outcomes[..2].iter().all(Result::is_ok), "{outcomes:?}");
        let Err(AppError::RateLimited { retry_after_secs, .. }) = &outcomes[2] else { panic!("{outcomes:?}") };
        assert_eq!(*retry_after_secs, 30, "the minute's window ends 30 s after the stopped clock");
    }

    #[tokio::test]
    async fn an_ingest_message_over_the_publish_rate_is_a_transient_failure_and_publishes_nothing() {
        let (ctx, mem) = limited(Limits { publish_per_second: 2, ..Limits::default() });
        let who = caller();
        crate::services::auth::issue_api_key(
            &ctx,
            &who.account_id,
            &who.scopes,
            crate::services::auth::mint_key(false),
        )
        .await
        .unwrap();
        subscriptions::create(&ctx, &who, json!({"url": "https://example.com/h", "events": ["chain.*"]}))
            .await
            .unwrap();
        let message = json!({"account_id": who.account_id, "events": [
            {"event_type": "chain.confirmed", "data": {}},
            {"event_type": "chain.confirmed", "data": {}},
            {"event_type": "chain.confirmed", "data": {}},
        ]});
        let outcome = crate::services::ingest::ingest(&ctx, &message.to_string()).await;
        // An `Err` (not a rejection): the ingest function keeps the message and SQS retries it.
        assert!(matches!(outcome, Err(AppError::RateLimited { .. })), "{outcome:?}");
        assert!(mem.deliveries.lock().unwrap().is_empty());
    }

    fn caller_of_other_account() -> crate::model::Caller {
        crate::model::Caller { account_id: AccountId::generate(2), ..caller() }
    }
}
