//! A batch from the FIFO delivery queue: each message group (one FIFO subscription's line) is
//! worked through in order, one message at a time, and once a message is kept (its delivery
//! failed and waits for its backoff, or could not be processed) the group's later messages are
//! reported failed unprocessed, as Lambda requires for FIFO queues: sending them would pass the
//! one that failed. Groups run concurrently. See docs/flow-control.md, "FIFO order".

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use std::future::Future;

/// Whether the batch came from a FIFO queue: its ARN ends in `.fifo`. Not the message group:
/// the standard delivery queue's messages carry one too (the account, for fair queues).
pub(crate) fn is_fifo(event: &SqsEvent) -> bool {
    event.records.iter().any(|m| m.event_source_arn.as_deref().is_some_and(|arn| arn.ends_with(".fifo")))
}

fn group_of(message: &SqsMessage) -> Option<&str> {
    message.attributes.get("MessageGroupId").map(String::as_str)
}

/// Runs `keep` on the batch's messages group by group, in order; returns the messages to keep.
pub(crate) async fn process_in_order<'a, F, Fut>(event: &'a SqsEvent, keep: F) -> SqsBatchResponse
where
    F: Fn(&'a SqsMessage) -> Fut,
    Fut: Future<Output = bool>,
{
    let mut groups: Vec<(Option<&str>, Vec<&SqsMessage>)> = Vec::new();
    for m in &event.records {
        match groups.iter_mut().find(|(g, _)| *g == group_of(m)) {
            Some((_, line)) => line.push(m),
            None => groups.push((group_of(m), vec![m])),
        }
    }
    let keep = &keep;
    let kept = futures::future::join_all(groups.into_iter().map(|(_, line)| async move {
        let mut kept = Vec::new();
        for (i, m) in line.iter().enumerate() {
            if keep(m).await {
                kept.extend(line[i..].iter().filter_map(|m| m.message_id.clone()));
                break;
            }
        }
        kept
    }))
    .await;
    let mut resp = SqsBatchResponse::default();
    resp.batch_item_failures = kept
        .into_iter()
        .flatten()
        .map(|id| {
            let mut f = BatchItemFailure::default();
            f.item_identifier = id;
            f
        })
        .collect();
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn message(id: &str, group: &str) -> SqsMessage {
        let mut m = SqsMessage::default();
        m.message_id = Some(id.into());
        m.attributes.insert("MessageGroupId".into(), group.into());
        m.event_source_arn = Some("arn:aws:sqs:us-east-1:123456789012:deliveries.fifo".into());
        m
    }

    #[test]
    fn a_standard_queue_batch_with_fair_queue_groups_is_not_fifo() {
        let mut fair = message("a1", "acct_1");
        fair.event_source_arn = Some("arn:aws:sqs:us-east-1:123456789012:deliveries".into());
        let mut event = SqsEvent::default();
        event.records = vec![fair];
        assert!(!is_fifo(&event), "the account's message group on the standard queue is not a FIFO line");
    }

    #[tokio::test]
    async fn a_kept_message_holds_back_the_rest_of_its_group_only() {
        let mut event = SqsEvent::default();
        event.records = vec![message("a1", "a"), message("b1", "b"), message("a2", "a"), message("a3", "a")];
        assert!(is_fifo(&event));
        let seen = Mutex::new(Vec::new());
        let resp = process_in_order(&event, |m| {
            let id = m.message_id.clone().unwrap();
            seen.lock().unwrap().push(id.clone());
            async move { id == "a2" }
        })
        .await;
        let kept: Vec<String> = resp.batch_item_failures.into_iter().map(|f| f.item_identifier).collect();
        assert_eq!(kept, vec!["a2", "a3"], "a3 is kept unprocessed behind a2");
        let seen = seen.into_inner().unwrap();
        assert!(!seen.contains(&"a3".to_owned()), "{seen:?}");
        assert!(seen.contains(&"b1".to_owned()));
        let a: Vec<&String> = seen.iter().filter(|s| s.starts_with('a')).collect();
        assert_eq!(a, ["a1", "a2"], "a group's messages in order");
    }
}
