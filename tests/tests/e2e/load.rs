//! Load without loss, small (docs/local-stack.md): the same check as `infra/scripts/load.sh` (10,000
//! events), with 150 events x 3 subscriptions and a receiver failing 10% of requests at random.

use puck_e2e::load::{self, LoadOptions};
use puck_e2e::{TestStack, TestStackOptions};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_reaches_every_subscription_despite_ten_percent_failures() {
    let stack = TestStack::start(TestStackOptions::default().pollers_per_queue(4)).await;
    let opts = LoadOptions { events: 150, stall_timeout: Duration::from_secs(30), ..LoadOptions::default() };
    let report = load::run(stack.api(), &opts, &|line| eprintln!("load: {line}")).await;
    eprintln!("{}", report.summary());
    assert!(
        !report.lost(),
        "loss under load:\n{}\nmissing {:?}\nnot succeeded {:?}",
        report.summary(),
        report.missing_pairs,
        report.not_succeeded
    );
    assert_eq!(report.expected_deliveries, 450);
    assert!(report.injected_failures > 0 && report.retried_deliveries > 0, "the receiver did fail some requests");
}
