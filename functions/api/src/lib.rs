//! The HTTP API: one handler per route, each deployed as its own Lambda (see `src/bin`).
//!
//! [`ROUTES`] is the registry that binds a binary name (template.yaml's
//! `Metadata.BuildProperties.Binary`) to its handler. The Lambda mains and the local stack both
//! look handlers up here, and the parity test checks it against template.yaml in both directions.

pub mod routes;

use lambda_http::{Body, Request, Response};
use puck_core::services::Context;
use std::future::Future;
use std::pin::Pin;

/// A route handler: takes the container's context and the API Gateway request; never fails (errors
/// are already mapped to JSON responses).
pub type Handler = for<'a> fn(&'a Context, Request) -> Pin<Box<dyn Future<Output = Response<Body>> + Send + 'a>>;

macro_rules! route {
    ($name:literal, $f:path) => {
        ($name, |ctx, req| Box::pin($f(ctx, req)))
    };
}

/// Binary name → handler, for every HTTP route in template.yaml.
pub const ROUTES: &[(&str, Handler)] = &[
    route!("subscriptions-create", routes::subscriptions::create),
    route!("subscriptions-list", routes::subscriptions::list),
    route!("subscriptions-get", routes::subscriptions::get),
    route!("subscriptions-update", routes::subscriptions::update),
    route!("subscriptions-delete", routes::subscriptions::delete),
    route!("subscriptions-test", routes::subscriptions::send_test),
    route!("events-publish", routes::events::publish),
    route!("deliveries-list", routes::deliveries::list),
    route!("deliveries-get", routes::deliveries::get),
    route!("deliveries-replay", routes::deliveries::replay),
    route!("endpoints-create", routes::endpoints::create),
    route!("endpoints-list", routes::endpoints::list),
    route!("endpoints-delete", routes::endpoints::delete),
    route!("inbound-receive", routes::inbound::receive),
    route!("investigations-get", routes::investigations::get),
];

pub fn handler(binary: &str) -> Option<Handler> {
    ROUTES.iter().find(|(name, _)| *name == binary).map(|(_, h)| *h)
}

/// The whole `main` of a route Lambda: typed config, clients built once, then the runtime loop.
pub fn run(binary: &'static str) -> Result<(), lambda_http::Error> {
    let handler = handler(binary).ok_or_else(|| format!("no handler registered for {binary}"))?;
    puck_aws::telemetry::init();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async move {
        let config = puck_aws::Config::from_env()?;
        let ctx: &'static Context = Box::leak(Box::new(puck_aws::build_context(&config).await?));
        lambda_http::run(lambda_http::service_fn(move |req: Request| async move {
            Ok::<_, std::convert::Infallible>(handler(ctx, req).await)
        }))
        .await
    })
}
