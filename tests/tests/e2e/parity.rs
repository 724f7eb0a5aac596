//! Over real HTTP, the local stack serves what template.yaml declares: every declared route reaches
//! its handler, and anything else is a JSON 404/405 from the `not-found` function (the template's
//! `$default` route), as in AWS. That the template, `puck_api::ROUTES` and the gateway's routing
//! agree is checked once, in infra/local/tests/template_parity.rs.

use crate::support::assert_error;
use puck_e2e::TestStack;
use puck_local::template::Template;
use reqwest::Method;

fn template() -> Template {
    Template::load(&puck_local::moto::repo_root().join("template.yaml")).expect("template.yaml loads")
}

/// A concrete path for a template path: each `{param}` replaced by a plausible value.
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|seg| match seg {
            "{id}" => "sub_01jtq8p5f7z9n1q4r6t8v0w2xc",
            "{provider}" => "github",
            "{key}" => "Qm7Vt2Kx9LpR4wZc8NbH3sJd6FgY1aUe5TiO0rXyEk2MnB7v",
            s if s.starts_with('{') => "x",
            s => s,
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_template_route_answers_from_its_handler_not_the_gateway() {
    let stack = TestStack::start_default().await;
    // The console and the API reference serve public documents (no key); `console::` and
    // `openapi::` tests cover them.
    let public = ["console", "openapi-document", "api-docs"];
    for route in template()
        .routes()
        .expect("routes")
        .into_iter()
        .filter(|r| !r.is_default() && !public.contains(&r.binary.as_str()))
    {
        let method = Method::from_bytes(route.method.as_bytes()).unwrap();
        let path = concrete(&route.path);
        let (status, body, _) = stack.anonymous().raw(method, &path, &[], b"{}".to_vec()).await;
        let code = body["error"]["code"].as_str().unwrap_or_default();
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(
            status != 405 && !message.starts_with("no route for"),
            "{} {path} did not reach {}: {status} {body}",
            route.method,
            route.binary
        );
        // Without a key every route refuses with 401 from its handler (the receiver: bad URL key).
        assert_eq!((status, code), (401, "unauthorized"), "{} {path}: {body}", route.method);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_paths_are_404_json_and_wrong_methods_are_405_json() {
    let stack = TestStack::start_default().await;
    for path in
        ["/", "/v1", "/v1/webhooks", "/v1/nope", "/v1/webhooks/subscriptions/sub_x/extra", "/v2/webhooks/subscriptions"]
    {
        let resp = stack.get(path).await;
        assert_error(&resp, 404, "not_found", "no route");
    }
    for (method, path, allow) in [
        (Method::PUT, "/v1/webhooks/subscriptions", "GET, POST"),
        (Method::DELETE, "/v1/webhooks/subscriptions", "GET, POST"),
        (Method::POST, "/v1/webhooks/subscriptions/sub_x", "DELETE, GET, PATCH"),
        (Method::GET, "/v1/events", "POST"),
        (Method::GET, "/v1/webhooks/subscriptions/sub_x/test", "POST"),
        (Method::DELETE, "/v1/investigations/inv_x", "GET"),
        (Method::GET, "/v1/webhooks/incoming/github/somekey", "POST"),
    ] {
        let resp = stack.api().raw(method.clone(), path, &[], Vec::new()).await;
        assert_error(&resp, 405, "method_not_allowed", method.as_str());
        let allowed = resp.2.get("allow").and_then(|v| v.to_str().ok()).unwrap_or_default();
        assert_eq!(allowed, allow, "{method} {path}");
    }
}
