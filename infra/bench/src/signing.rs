//! Signing cost: the full header set of one attempt (both signature schemes) against one bare
//! HMAC-SHA256 of the same 1 KiB body, timed in a plain loop with `black_box`.
//!
//! A timing loop instead of criterion keeps the bench's compile time small; each figure is the
//! median of several batches of many iterations, which is stable enough for a µs-scale ratio.

use hmac::{Hmac, Mac};
use puck_core::ids::{AttemptId, EventId};
use puck_core::secret::SigningSecret;
use puck_core::signing::{delivery_headers, AttemptToSign};
use puck_core::signing_key::SigningKey;
use sha2::Sha256;
use std::hint::black_box;
use std::time::Instant;

/// Median nanoseconds per operation of both measurements.
#[derive(Debug, Clone, Copy)]
pub struct SigningFigures {
    /// `delivery_headers` with one secret (Puck `v1=` + Standard Webhooks), ns.
    pub headers_ns: f64,
    /// One HMAC-SHA256 over the body, ns.
    pub hmac_ns: f64,
    /// Body size, bytes.
    pub body_len: usize,
    /// Iterations per batch.
    pub iterations: u32,
}

fn median_ns(batches: usize, iterations: u32, mut f: impl FnMut()) -> f64 {
    for _ in 0..iterations / 10 {
        f();
    }
    let mut per_op: Vec<f64> = (0..batches)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..iterations {
                f();
            }
            start.elapsed().as_nanos() as f64 / f64::from(iterations)
        })
        .collect();
    per_op.sort_by(f64::total_cmp);
    per_op[per_op.len() / 2]
}

/// Runs both measurements.
pub fn measure() -> SigningFigures {
    let secret = SigningKey::Hmac(SigningSecret::generate());
    let event_id = EventId::parse("evt-bench-0001").expect("valid id");
    let attempt_id = AttemptId::generate(1_777_000_000_000);
    // A 1 KiB JSON envelope.
    let mut body = String::from(
        r#"{"event_id":"evt-bench-0001","event_type":"finding.discovered","emitted_at":"2026-05-03T10:00:00Z","api_version":"v1","data":{"pad":""#,
    );
    while body.len() < 1024 - 3 {
        body.push('x');
    }
    body.push_str("\"}}");
    let iterations = 20_000;
    let secrets = [&secret];
    let headers_ns = median_ns(7, iterations, || {
        let h = delivery_headers(black_box(&AttemptToSign {
            event_id: &event_id,
            event_type: "finding.discovered",
            attempt_id: &attempt_id,
            timestamp: 1_777_000_000,
            body: &body,
            secrets: &secrets,
        }));
        black_box(h);
    });
    let key = secret.expose().expose().as_bytes().to_vec();
    let hmac_ns = median_ns(7, iterations, || {
        let mut mac = Hmac::<Sha256>::new_from_slice(black_box(&key)).expect("any key length");
        mac.update(black_box(body.as_bytes()));
        black_box(mac.finalize().into_bytes());
    });
    SigningFigures { headers_ns, hmac_ns, body_len: body.len(), iterations }
}
