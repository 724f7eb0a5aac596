//! The HTTP API: one handler per route, each deployed as its own Lambda (see `src/bin`).
//!
//! [`ROUTES`] is the one route table: for every HttpApi route of template.yaml, the binary that
//! serves it (`Metadata.BuildProperties.Binary`), its method and path, and its handler. Each main
//! names its route as a Rust item (`puck_api::run(&puck_api::EVENTS_PUBLISH)`), so a mistyped
//! route does not compile; the local gateway, the `not-found` function (the `$default` route) and
//! the parity tests all read this table, and [`router`] is the one matcher they share.
//!
//! Adding a route: one line in the `routes!` block below, a `src/bin/<binary>.rs` main naming the
//! new const, a `[[bin]]` in Cargo.toml, the function in template.yaml and `events/<binary>.json`
//! (listed in `FIXTURES`, routes/mod.rs, for the handler tests).

pub mod openapi;
pub mod router;
pub mod routes;

use lambda_http::{Body, Request, Response};
use puck_core::services::Context;
use std::future::Future;
use std::pin::Pin;

pub use router::{match_route, RouteMatch};

/// A route handler: takes the container's context and the API Gateway request; never fails (errors
/// are already mapped to JSON responses).
pub type Handler = for<'a> fn(&'a Context, Request) -> Pin<Box<dyn Future<Output = Response<Body>> + Send + 'a>>;

/// The path (and route key) of the HTTP API's catch-all route, which SAM binds to a function whose
/// HttpApi event has neither `Path` nor `Method`.
pub const DEFAULT_ROUTE: &str = "$default";

/// One route of the HTTP API, as template.yaml declares it, with the handler serving it.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    /// The Lambda binary (`src/bin/<binary>.rs`, template.yaml's `BuildProperties.Binary`).
    pub binary: &'static str,
    /// Upper-case method; `ANY` for [`DEFAULT_ROUTE`].
    pub method: &'static str,
    /// Path template: `{param}` matches one non-empty segment.
    pub path: &'static str,
    pub handler: Handler,
}

impl Route {
    /// Whether this is the `$default` route (served when no other route matches).
    pub fn is_default(&self) -> bool {
        self.path == DEFAULT_ROUTE
    }
}

/// Declares each route as a `pub const` (what a main names) and [`ROUTES`], the table of them all.
macro_rules! routes {
    ($($item:ident: $binary:literal, $method:literal $path:literal => $handler:path;)*) => {
        $(
            #[doc = concat!("`", $method, " ", $path, "`, served by the `", $binary, "` binary.")]
            pub const $item: Route =
                Route { binary: $binary, method: $method, path: $path, handler: |ctx, req| Box::pin($handler(ctx, req)) };
        )*
        /// Every HttpApi route of template.yaml, `$default` included; a parity test keeps the two equal.
        pub const ROUTES: &[Route] = &[$($item),*];
        /// Each route's const name beside its binary, for the test that the two agree.
        #[cfg(test)]
        const ROUTE_ITEMS: &[(&str, &str)] = &[$((stringify!($item), $binary)),*];
    };
}

routes! {
    SUBSCRIPTIONS_CREATE: "subscriptions-create", "POST" "/v1/webhooks/subscriptions" => routes::subscriptions::create;
    SUBSCRIPTIONS_LIST: "subscriptions-list", "GET" "/v1/webhooks/subscriptions" => routes::subscriptions::list;
    SUBSCRIPTIONS_GET: "subscriptions-get", "GET" "/v1/webhooks/subscriptions/{id}" => routes::subscriptions::get;
    SUBSCRIPTIONS_UPDATE: "subscriptions-update", "PATCH" "/v1/webhooks/subscriptions/{id}" => routes::subscriptions::update;
    SUBSCRIPTIONS_DELETE: "subscriptions-delete", "DELETE" "/v1/webhooks/subscriptions/{id}" => routes::subscriptions::delete;
    SUBSCRIPTIONS_TEST: "subscriptions-test", "POST" "/v1/webhooks/subscriptions/{id}/test" => routes::subscriptions::send_test;
    EVENTS_PUBLISH: "events-publish", "POST" "/v1/events" => routes::events::publish;
    DELIVERIES_LIST: "deliveries-list", "GET" "/v1/webhooks/deliveries" => routes::deliveries::list;
    DELIVERIES_GET: "deliveries-get", "GET" "/v1/webhooks/deliveries/{id}" => routes::deliveries::get;
    DELIVERIES_REPLAY: "deliveries-replay", "POST" "/v1/webhooks/deliveries/{id}/replay" => routes::deliveries::replay;
    ENDPOINTS_CREATE: "endpoints-create", "POST" "/v1/webhooks/incoming/endpoints" => routes::endpoints::create;
    ENDPOINTS_LIST: "endpoints-list", "GET" "/v1/webhooks/incoming/endpoints" => routes::endpoints::list;
    ENDPOINTS_DELETE: "endpoints-delete", "DELETE" "/v1/webhooks/incoming/endpoints/{id}" => routes::endpoints::delete;
    INBOUND_RECEIVE: "inbound-receive", "POST" "/v1/webhooks/incoming/{provider}/{key}" => routes::receivers::receive;
    INVESTIGATIONS_GET: "investigations-get", "GET" "/v1/investigations/{id}" => routes::investigations::get;
    EVENTS_PUBLISH_BATCH: "events-publish-batch", "POST" "/v1/events/batch" => routes::events::publish_batch;
    EVENT_TYPES_LIST: "event-types-list", "GET" "/v1/webhooks/event-types" => routes::event_types::list;
    SUBSCRIPTIONS_RECOVER: "subscriptions-recover", "POST" "/v1/webhooks/subscriptions/{id}/recover" => routes::subscriptions::recover;
    OPENAPI_DOCUMENT: "openapi-document", "GET" "/v1/openapi.json" => routes::reference::openapi;
    API_DOCS: "api-docs", "GET" "/docs" => routes::reference::docs;
    CONSOLE: "console", "GET" "/console" => routes::console::serve;
    CONSOLE_ASSET: "console", "GET" "/console/{asset}" => routes::console::serve;
    NOT_FOUND: "not-found", "ANY" "$default" => routes::fallback::not_found;
}

/// Serves `handler` on `lambda_http`'s runtime loop.
async fn serve<F, Fut>(handler: F) -> Result<(), lambda_http::Error>
where
    F: Fn(Request) -> Fut,
    Fut: Future<Output = Response<Body>> + Send,
{
    lambda_http::run(lambda_http::service_fn(move |req: Request| {
        let answer = handler(req);
        async move { Ok::<_, std::convert::Infallible>(answer.await) }
    }))
    .await
}

/// The whole `main` of a route Lambda: typed config, clients built once, then the runtime loop.
pub fn run(route: &'static Route) -> Result<(), lambda_http::Error> {
    puck_aws::bootstrap::run(puck_aws::build_context, move |ctx| serve(move |req| (route.handler)(ctx, req)))
}

/// The `main` of a route Lambda that needs no AWS clients, configuration or secrets (the
/// `not-found` fallback): it reads no environment and builds no [`Context`].
pub fn run_without_context(handler: fn(&Request) -> Response<Body>) -> Result<(), lambda_http::Error> {
    puck_aws::bootstrap::start(serve(move |req| std::future::ready(handler(&req))))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The const a main names for a route: its binary in upper snake case.
    fn const_name(binary: &str) -> String {
        binary.to_ascii_uppercase().replace('-', "_")
    }

    #[test]
    fn every_main_serves_the_route_its_binary_is_named_after() {
        let bins = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/bin");
        for route in ROUTES {
            let path = bins.join(format!("{}.rs", route.binary));
            let main = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            // Routes that touch no data serve a plain function and build no AWS context.
            let context_free = [
                ("not-found", "routes::fallback::answer"),
                ("openapi-document", "routes::reference::openapi_answer"),
                ("api-docs", "routes::reference::docs_answer"),
                ("console", "routes::console::answer"),
            ];
            let expected = match context_free.iter().find(|(binary, _)| *binary == route.binary) {
                Some((_, answer)) => format!("puck_api::run_without_context(puck_api::{answer})"),
                None => format!("puck_api::run(&puck_api::{})", const_name(route.binary)),
            };
            assert!(main.contains(&expected), "{} must call {expected}", path.display());
        }
        let binaries: std::collections::BTreeSet<&str> = ROUTES.iter().map(|r| r.binary).collect();
        let count = std::fs::read_dir(&bins).unwrap().count();
        assert_eq!(count, binaries.len(), "one src/bin main per binary, no more");
    }

    #[test]
    fn route_consts_are_named_after_their_binary_and_binaries_are_unique() {
        // A binary serving several routes (the console: its page and its assets) names the
        // const of its first route after itself and the others after itself plus a suffix.
        for (item, binary) in ROUTE_ITEMS {
            assert!(item.starts_with(&const_name(binary)), "the const {item} of {binary}");
        }
        let mut seen = std::collections::BTreeSet::new();
        for route in ROUTES {
            assert!(seen.insert((route.method, route.path)), "{} {} routed twice", route.method, route.path);
        }
        assert_eq!(ROUTES.iter().filter(|r| r.is_default()).count(), 1, "exactly one $default route");
    }
}
