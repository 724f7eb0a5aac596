//! The webhooks domain, free of AWS and Lambda types.
//!
//! Route and worker functions parse their Lambda event, call one of the services in
//! [`services`] with adapters behind the traits in [`ports`], and map the result. Every business
//! rule (validation, filters, signing, backoff, state transitions) lives here so it can be unit
//! tested with in-memory fakes and reused unchanged against moto or AWS.

#![warn(missing_docs)]

pub mod backoff;
pub mod body_formats;
pub mod cache;
pub mod catalog;
pub mod crypto;
pub mod destination;
pub mod envelope;
pub mod error;
pub mod filters;
pub mod ids;
pub mod limits;
pub mod model;
pub mod oauth;
pub mod page;
pub mod ports;
pub mod providers;
pub mod rate;
pub mod secret;
pub mod sending;
pub mod services;
pub mod signing;
pub mod signing_key;
pub mod time;
pub mod validation;

#[cfg(any(test, feature = "test-support"))]
pub mod fakes;

pub use error::AppError;
