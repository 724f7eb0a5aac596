//! The floor of a scenario: the least it can cost on this architecture (API Gateway or the ingest
//! queue, Lambda, SQS, DynamoDB), from the same price table as the bill, so the report can show
//! how close the design is to what the shape allows (bill ÷ floor).
//!
//! What the floor counts, per the design contract: per publish request its API Gateway request
//! (none through the ingest queue) and its Lambda request; per SQS message one send, and a tenth
//! of a receive and of a delete (the event source mapping takes ten at a time); one write unit per
//! event (the durable record idempotency needs); a tenth of a write unit per delivery outcome (ten
//! outcomes can share an item); the payload stored once for the retention; data out. One SQS
//! message per event carries all of its deliveries.

use crate::cost::{
    Line, APIGW_REQUEST_USD, DATA_OUT_GB_USD, DYNAMO_STORAGE_GB_MONTH_USD, DYNAMO_WRU_USD, LAMBDA_REQUEST_USD, MONTH_S,
    SQS_REQUEST_USD,
};

const GB: f64 = 1e9;

/// What a scenario's floor is made of, counted from the scenario itself.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FloorUse {
    pub deliveries: f64,
    pub events: f64,
    /// API Gateway requests as metered (0 through the ingest queue).
    pub api_requests: f64,
    /// Lambda requests of the publish: one per HTTP request, one per ten ingest messages.
    pub publish_invocations: f64,
    /// SQS messages: one per event to the delivery queue, plus each ingest message.
    pub sqs_messages: f64,
    /// SQS send requests (one SendMessageBatch carries up to ten messages).
    pub sqs_sends: f64,
    /// Bytes of one event's payload, stored once for the retention.
    pub payload_bytes: f64,
    /// Bytes sent to receivers and producers (the bill's own figure).
    pub data_out_bytes: f64,
    pub retention_days: f64,
}

impl FloorUse {
    /// A scenario of `events` events of `payload_bytes`, each to `fanout` subscriptions,
    /// published `per_request` at a time (1: single publish) over HTTP or through the ingest
    /// queue (one event per message, ten messages per invocation).
    pub fn of(events: f64, fanout: f64, per_request: f64, ingest: bool, payload_bytes: f64) -> Self {
        let requests = (events / per_request).ceil();
        let delivery_sends = requests * (per_request / 10.0).ceil();
        let (api_requests, publish_invocations, sqs_messages, sqs_sends) = if ingest {
            (0.0, (events / 10.0).ceil(), 2.0 * events, events + (events / 10.0).ceil())
        } else {
            (requests, requests, events, delivery_sends)
        };
        Self {
            deliveries: events * fanout,
            events,
            api_requests,
            publish_invocations,
            sqs_messages,
            sqs_sends,
            payload_bytes,
            data_out_bytes: 0.0,
            retention_days: 30.0,
        }
    }
}

/// The floor's lines for the whole scenario.
pub fn floor_lines(f: &FloorUse) -> Vec<Line> {
    let wru = f.events + 0.1 * f.deliveries;
    let sqs = f.sqs_sends + 0.2 * f.sqs_messages;
    let stored_gb_months = f.events * f.payload_bytes / GB * (f.retention_days * 86_400.0 / MONTH_S);
    vec![
        Line {
            item: "API Gateway",
            quantity: format!("{} requests", f.api_requests),
            usd: f.api_requests * APIGW_REQUEST_USD,
        },
        Line {
            item: "Lambda requests (publish)",
            quantity: format!("{}", f.publish_invocations),
            usd: f.publish_invocations * LAMBDA_REQUEST_USD,
        },
        Line { item: "SQS", quantity: format!("{sqs} requests"), usd: sqs * SQS_REQUEST_USD },
        Line { item: "DynamoDB writes", quantity: format!("{wru} WRU"), usd: wru * DYNAMO_WRU_USD },
        Line {
            item: "DynamoDB storage (payload once)",
            quantity: format!("{stored_gb_months:.3e} GB-months"),
            usd: stored_gb_months * DYNAMO_STORAGE_GB_MONTH_USD,
        },
        Line {
            item: "Data transfer out",
            quantity: format!("{:.0} B", f.data_out_bytes),
            usd: f.data_out_bytes / GB * DATA_OUT_GB_USD,
        },
    ]
}

/// The floor in dollars per million deliveries.
pub fn floor_per_million(f: &FloorUse) -> f64 {
    floor_lines(f).iter().map(|l| l.usd).sum::<f64>() / f.deliveries.max(1.0) * 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_floor_of_one_event_to_one_subscription_is_what_the_design_counts() {
        let mut f = FloorUse::of(1.0, 1.0, 1.0, false, 1024.0);
        f.data_out_bytes = 2000.0;
        let want = 1.00
            + 0.20
            + 0.40 * 1.2
            + 0.625 * 1.1
            + 1024.0 / GB * 0.25 * 30.0 * 86_400.0 / MONTH_S * 1e6
            + 2000.0 / GB * 0.09 * 1e6;
        assert!((floor_per_million(&f) - want).abs() < 1e-9, "{} vs {want}", floor_per_million(&f));
    }

    #[test]
    fn batches_and_the_ingest_queue_share_the_request_costs() {
        let batch = FloorUse::of(100.0, 1.0, 100.0, false, 1024.0);
        assert_eq!((batch.api_requests, batch.publish_invocations, batch.sqs_sends), (1.0, 1.0, 10.0));
        let ingest = FloorUse::of(20.0, 1.0, 1.0, true, 1024.0);
        assert_eq!((ingest.api_requests, ingest.publish_invocations), (0.0, 2.0));
        assert_eq!((ingest.sqs_messages, ingest.sqs_sends), (40.0, 22.0));
        let fan = FloorUse::of(1.0, 10.0, 1.0, false, 1024.0);
        assert!(floor_per_million(&fan) < floor_per_million(&FloorUse::of(1.0, 1.0, 1.0, false, 1024.0)) / 5.0);
    }
}
