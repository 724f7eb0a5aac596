//! The end-to-end test harness: the whole service on the local stack, driven over HTTP, with real
//! HTTPS receivers on loopback.
//!
//! Building blocks, one module each:
//!
//! - [`moto`]: one moto server per test binary, started lazily on first use and shared by every
//!   test ([`moto::endpoint`]).
//! - [`stack`]: [`TestStack`], one [`puck_local::LocalStack`] per test under a unique resource
//!   prefix and an ephemeral API port (so tests run in parallel), with test-friendly defaults
//!   (loopback receivers allowed, the test CA trusted, retries in seconds) and a tiny JSON client
//!   ([`ApiClient`]).
//! - [`receiver`]: [`Receiver`], an HTTPS server on `127.0.0.1` that records every request and
//!   answers by a programmable [`Script`].
//! - [`logs`]: captures every log line of the binary in memory ([`captured_logs`]) so tests can
//!   prove that no secret is ever logged.
//! - [`wait`]: polling helpers ([`wait_until`], [`wait_for_some`]); tests never sleep to assert.
//! - [`delivery`]: the delivery log and queue depth, and the public Python `standardwebhooks`
//!   library as an independent signature check ([`delivery::standard_webhooks_verify`]).
//! - [`raw`]: [`raw::RawReceiver`], a hand-written HTTP/1.1-over-TLS receiver that stalls
//!   mid-body, resets the connection or streams a huge body (fault-injection tests).
//! - [`leaks`]: asserts that given secrets appear in neither the captured logs nor a table dump.
//! - [`load`]: the load-without-loss run shared by the `puck-load` command and the e2e suite.
//! - [`browser`]: [`browser::Browser`], a headless Chromium driven over WebDriver (the console tests).
//! - [`iam`]: records each function's AWS calls and checks them against its role as the SAM
//!   translator expands template.yaml.
//! - [`dynamo`]: raw table dumps ([`TestStack::table_dump`]) to prove nothing is stored in clear.
//! - [`customer`]: a customer's own AWS account on the embedded AWS (queue, bus with a rule to a
//!   queue, role) for the AWS-destination tests.
//!
//! A typical test:
//!
//! ```no_run
//! use puck_e2e::{Receiver, TestStack, TestStackOptions, EVENTUALLY};
//! use serde_json::json;
//!
//! # async fn example() {
//! let stack = TestStack::start(TestStackOptions::default()).await;
//! let receiver = Receiver::start().await;
//! let (status, sub, _) = stack
//!     .post("/v1/webhooks/subscriptions", json!({"url": receiver.url(), "events": ["finding.*"]}))
//!     .await;
//! assert_eq!(status, 201, "{sub}");
//! let (status, _, _) = stack.post("/v1/events", json!({"event_type": "finding.discovered", "data": {}})).await;
//! assert_eq!(status, 202);
//! let requests = receiver.wait_for(1, EVENTUALLY).await;
//! assert_eq!(requests[0].header("x-puck-event-type"), Some("finding.discovered"));
//! # }
//! ```

pub mod browser;
pub mod customer;
pub mod delivery;
pub mod dynamo;
pub mod fairness;
pub mod iam;
pub mod leaks;
pub mod load;
pub mod logs;
pub mod moto;
pub mod raw;
pub mod receiver;
pub mod stack;
pub mod wait;

pub use logs::{captured_logs, install_log_capture};
pub use receiver::{ReceivedRequest, Receiver, Reply, Script};
pub use stack::{Account, ApiClient, ApiResponse, TestStack, TestStackOptions};
pub use wait::{wait_for_some, wait_until, EVENTUALLY};
