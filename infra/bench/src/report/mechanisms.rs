//! What the optional delivery mechanisms add to a delivery's bill: AWS destinations, OAuth 2.0
//! receivers and the flow-control mechanisms (docs/flow-control.md). Computed from the price table
//! and the calls each mechanism makes (its module's docs), not measured by a scenario: each adds
//! its calls to a delivery only when a subscription uses it.

use crate::cost::{DYNAMO_RRU_USD, DYNAMO_WRU_USD, SQS_REQUEST_USD};
use std::fmt::Write as _;

/// SQS FIFO queues bill $0.50 per million requests (standard: $0.40).
const SQS_FIFO_REQUEST_USD: f64 = 0.50 / 1e6;

/// `usd` per delivery as $ per million deliveries.
fn per_million(usd: f64) -> String {
    format!("${:.2}", usd * 1e6)
}

/// The section of BENCHMARKS.md on what each optional mechanism adds per delivery.
pub fn mechanisms_md() -> String {
    let wru = DYNAMO_WRU_USD;
    let rows = [
        (
            "AWS destination (SQS, EventBridge)",
            "$0.00".to_owned(),
            "STS AssumeRole has no charge and is cached per role until 5 minutes before its credentials expire; the \
             SendMessage or PutEvents request is billed to the customer's account, not ours; the attempt's Lambda time is \
             an HTTPS attempt's",
        ),
        (
            "OAuth 2.0 receiver",
            "$0.00".to_owned(),
            "one token request per token lifetime per warm dispatcher container (no AWS request), its round trip of \
             Lambda time amortised over every delivery in that lifetime",
        ),
        (
            "Rate limit, per attempt of a limited subscription",
            per_million(wru),
            "one conditional UpdateItem of the subscription's token bucket (1 WRU)",
        ),
        (
            "Rate limit, per delivery that waits for its slot",
            per_million(2.0 * SQS_REQUEST_USD + wru),
            "a delayed SendMessage, the DeleteMessage of the message it replaces, and `next_attempt_at` written",
        ),
        (
            "In-flight cap, receiver known fast",
            "$0.00".to_owned(),
            "an in-memory count; one leased attempt per subscription and container every 10 minutes",
        ),
        (
            "In-flight cap, slow receiver, per attempt",
            per_million(2.0 * wru + 0.5 * DYNAMO_RRU_USD),
            "a slot lease: a Query, a conditional PutItem and a DeleteItem (2 WRU + 0.5 RRU)",
        ),
        (
            "In-flight cap, per wait",
            per_million(2.0 * SQS_REQUEST_USD),
            "a ChangeMessageVisibility and one more receive",
        ),
        (
            "FIFO order, per delivery",
            per_million(
                (SQS_FIFO_REQUEST_USD - SQS_REQUEST_USD) + 2.0 * (SQS_FIFO_REQUEST_USD - SQS_REQUEST_USD / 10.0),
            ),
            "a FIFO send costs $0.10 per million more than a standard one, and the FIFO event source receives and \
             deletes one message per request where the standard queue's batches of 10 share one",
        ),
        (
            "Account publish limit, per publish request",
            per_million(wru),
            "one conditional UpdateItem of the account's counter per request (not per event: $0.01 per million events in \
             batches of 100)",
        ),
        ("Fair queue, reserved concurrency, route throttles", "$0.00".to_owned(), "no charge of their own"),
    ];
    let mut md = String::from("## What the optional mechanisms add per delivery\n\n");
    md.push_str(
        "Each adds its calls only to the deliveries of a subscription (or account) that uses it, so the scenarios above \
         do not include them. Computed from the price table and the calls each makes, in $ per million:\n\n",
    );
    md.push_str("| mechanism | adds | why |\n|---|---:|---|\n");
    for (what, usd, why) in rows {
        let _ = writeln!(md, "| {what} | {usd} | {why} |");
    }
    md.push('\n');
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_mechanism_has_a_figure_from_the_price_table() {
        let md = mechanisms_md();
        assert!(md.contains("| Rate limit, per attempt of a limited subscription | $0.6"), "{md}");
        assert!(md.contains("| In-flight cap, slow receiver, per attempt | $1.31 |"), "{md}");
        assert_eq!(md.lines().filter(|l| l.starts_with("| ") && !l.starts_with("| mechanism")).count(), 10);
    }
}
