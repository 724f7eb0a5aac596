//! The HTTP API: one handler per route, each deployed as its own Lambda (see `src/bin`).
//!
//! [`ROUTES`] is the registry that binds a binary name (template.yaml's
//! `Metadata.BuildProperties.Binary`) to its handler. The Lambda mains and the local stack both
//! look handlers up here, and the parity test checks it against template.yaml in both directions.
//!
//! [`ROUTE_TABLE`] lists the method and path of every route; the `not-found` function (the HTTP
//! API's `$default` route, which API Gateway invokes for any request no route matches) uses it to
//! answer the API's JSON 404 or 405 rather than API Gateway's own `{"message":"Not Found"}`.

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
    route!("subscriptions-recover", routes::subscriptions::recover),
    route!("events-publish", routes::events::publish),
    route!("deliveries-list", routes::deliveries::list),
    route!("deliveries-get", routes::deliveries::get),
    route!("deliveries-replay", routes::deliveries::replay),
    route!("endpoints-create", routes::endpoints::create),
    route!("endpoints-list", routes::endpoints::list),
    route!("endpoints-delete", routes::endpoints::delete),
    route!("inbound-receive", routes::inbound::receive),
    route!("investigations-get", routes::investigations::get),
    route!("not-found", routes::fallback::not_found),
];

/// Binary name, method and path template of every route (`{param}` matches one non-empty
/// segment). Mirrors template.yaml's HttpApi events; a parity test keeps the two equal.
pub const ROUTE_TABLE: &[(&str, &str, &str)] = &[
    ("subscriptions-create", "POST", "/v1/webhooks/subscriptions"),
    ("subscriptions-list", "GET", "/v1/webhooks/subscriptions"),
    ("subscriptions-get", "GET", "/v1/webhooks/subscriptions/{id}"),
    ("subscriptions-update", "PATCH", "/v1/webhooks/subscriptions/{id}"),
    ("subscriptions-delete", "DELETE", "/v1/webhooks/subscriptions/{id}"),
    ("subscriptions-test", "POST", "/v1/webhooks/subscriptions/{id}/test"),
    ("subscriptions-recover", "POST", "/v1/webhooks/subscriptions/{id}/recover"),
    ("events-publish", "POST", "/v1/events"),
    ("deliveries-list", "GET", "/v1/webhooks/deliveries"),
    ("deliveries-get", "GET", "/v1/webhooks/deliveries/{id}"),
    ("deliveries-replay", "POST", "/v1/webhooks/deliveries/{id}/replay"),
    ("endpoints-create", "POST", "/v1/webhooks/incoming/endpoints"),
    ("endpoints-list", "GET", "/v1/webhooks/incoming/endpoints"),
    ("endpoints-delete", "DELETE", "/v1/webhooks/incoming/endpoints/{id}"),
    ("inbound-receive", "POST", "/v1/webhooks/incoming/{provider}/{key}"),
    ("investigations-get", "GET", "/v1/investigations/{id}"),
];

/// How [`match_route`] classified a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteMatch {
    /// A route of [`ROUTE_TABLE`] takes this method on this path: its binary.
    Found(&'static str),
    /// The path matches routes, none with this method: their methods, sorted, deduplicated.
    MethodNotAllowed(Vec<&'static str>),
    NotFound,
}

/// Whether `path` fits the path template (a `{param}` matches one non-empty segment).
fn path_matches(template: &str, path: &str) -> bool {
    let (mut want, mut got) = (template.split('/'), path.split('/'));
    loop {
        match (want.next(), got.next()) {
            (None, None) => return true,
            (Some(w), Some(g)) if w.starts_with('{') && w.ends_with('}') && !g.is_empty() => {}
            (Some(w), Some(g)) if w == g => {}
            _ => return false,
        }
    }
}

/// Matches a request against [`ROUTE_TABLE`] the way API Gateway matches it against the routes.
pub fn match_route(method: &str, path: &str) -> RouteMatch {
    let mut allowed = Vec::new();
    for &(binary, route_method, template) in ROUTE_TABLE {
        if path_matches(template, path) {
            if route_method == method {
                return RouteMatch::Found(binary);
            }
            allowed.push(route_method);
        }
    }
    if allowed.is_empty() {
        return RouteMatch::NotFound;
    }
    allowed.sort_unstable();
    allowed.dedup();
    RouteMatch::MethodNotAllowed(allowed)
}

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

/// The `main` of a route Lambda that needs no AWS clients, configuration or secrets (the
/// `not-found` fallback): it reads no environment and builds no [`Context`].
pub fn run_without_context(handler: fn(&Request) -> Response<Body>) -> Result<(), lambda_http::Error> {
    puck_aws::telemetry::init();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(lambda_http::run(lambda_http::service_fn(move |req: Request| async move {
        Ok::<_, std::convert::Infallible>(handler(&req))
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn match_route_finds_routes_and_tells_404_from_405() {
        assert_eq!(match_route("GET", "/v1/webhooks/subscriptions/sub_1"), RouteMatch::Found("subscriptions-get"));
        assert_eq!(match_route("POST", "/v1/webhooks/incoming/github/k"), RouteMatch::Found("inbound-receive"));
        assert_eq!(match_route("PUT", "/v1/webhooks/subscriptions"), RouteMatch::MethodNotAllowed(vec!["GET", "POST"]));
        // Both `/endpoints/{id}` and `/{provider}/{key}` fit: their methods are united.
        assert_eq!(
            match_route("GET", "/v1/webhooks/incoming/endpoints/ep_1"),
            RouteMatch::MethodNotAllowed(vec!["DELETE", "POST"])
        );
        for path in ["/", "", "/v1", "/v1/webhooks/subscriptions/", "/v1/webhooks/subscriptions/a/b", "/v1/webhooks/subscriptions//test"] {
            assert_eq!(match_route("GET", path), RouteMatch::NotFound, "{path}");
        }
    }

    #[test]
    fn every_route_table_binary_has_a_handler() {
        for (binary, _, _) in ROUTE_TABLE {
            assert!(handler(binary).is_some(), "{binary}");
        }
        assert_eq!(ROUTE_TABLE.len() + 1, ROUTES.len(), "every route plus the not-found fallback");
    }
}
