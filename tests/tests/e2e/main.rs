//! End-to-end tests: the whole service on the local stack (moto as AWS), driven through its HTTP
//! API, delivering to real HTTPS receivers on loopback.
//!
//! One test binary (one shared moto), one module per area; each test starts its own stack under
//! a unique prefix, so tests run in parallel. See the `puck_e2e` crate for the harness.

mod attacks;
mod auth;
mod aws_limits;
mod bad_input;
mod batch;
mod catalog;
mod console;
mod custom_headers;
mod delivery_log;
mod destinations;
mod durability;
mod ed25519;
mod failing;
mod faults;
mod fifo;
mod filters;
mod flow_control;
mod formats;
mod harness;
mod iam;
mod inbound;
mod ingest;
mod isolation;
mod limits;
mod load;
mod oauth;
mod openapi;
mod operate;
mod parity;
mod payload_filters;
mod ping;
mod retries;
mod runtime_state;
mod secrets;
mod seeds;
mod storage;
mod subscription_state;
mod subscriptions;
mod support;
mod wire;
