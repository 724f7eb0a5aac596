//! The webhooks domain, free of AWS and Lambda types.
//!
//! Route and worker functions parse their Lambda event, call one of the services in
//! [`services`] with adapters behind the traits in [`ports`], and map the result. Every business
//! rule (validation, filters, signing, backoff, state transitions) lives here so it can be unit
//! tested with in-memory fakes and reused unchanged against moto or AWS.

#![warn(missing_docs)]

pub mod backoff;
pub mod cache;
pub mod catalog;
pub mod crypto;
pub mod destination;
pub mod envelope;
pub mod error;
pub mod filters;
pub mod format;
pub mod ids;
pub mod model;
pub mod page;
pub mod ports;
pub mod receivers;
pub mod secret;
pub mod sending;
pub mod services;
pub mod signing;
pub mod time;
pub mod validation;

#[cfg(any(test, feature = "test-support"))]
pub mod testing;

pub use error::AppError;
