//! Route handlers, grouped by resource. Each parses the request, calls a core service and maps
//! the result with `puck_http`.

pub mod deliveries;
pub mod endpoints;
pub mod events;
pub mod inbound;
pub mod investigations;
pub mod subscriptions;
