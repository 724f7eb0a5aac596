//! The one route matcher, shared by the `not-found` function and the local gateway so both route
//! a request exactly as API Gateway does: a `{param}` matches one non-empty segment, and when
//! several routes take the method and path the most specific wins (a literal segment beats a
//! `{param}`, compared left to right). A path that routes take only with other methods is a 405
//! naming their methods; anything else is a 404 (API Gateway hands both to `$default`).

use crate::{Route, ROUTES};

/// How a request was matched against the route table.
#[derive(Debug, Clone)]
pub enum RouteMatch<'p> {
    /// The route serving this method and path, and its path parameters as (name, raw segment),
    /// still percent-encoded as in the request line.
    Found {
        route: &'static Route,
        params: Vec<(&'static str, &'p str)>,
    },
    /// Routes have this path, none this method: their methods, sorted, deduplicated.
    MethodNotAllowed(Vec<&'static str>),
    NotFound,
}

impl RouteMatch<'_> {
    /// The binary of the matched route, if any.
    pub fn binary(&self) -> Option<&'static str> {
        match self {
            Self::Found { route, .. } => Some(route.binary),
            _ => None,
        }
    }
}

/// Matches a request against [`ROUTES`] the way API Gateway matches it against the API's routes.
pub fn match_route<'p>(method: &str, path: &'p str) -> RouteMatch<'p> {
    match_in(ROUTES, method, path)
}

/// The path parameters of `path` under `template`, or `None` when it does not fit.
fn fit<'p>(template: &'static str, path: &'p str) -> Option<Vec<(&'static str, &'p str)>> {
    let (mut want, mut got) = (template.split('/'), path.split('/'));
    let mut params = Vec::new();
    loop {
        match (want.next(), got.next()) {
            (None, None) => return Some(params),
            (Some(w), Some(g)) => match w.strip_prefix('{').and_then(|w| w.strip_suffix('}')) {
                Some(name) if !g.is_empty() => params.push((name, g)),
                None if w == g => {}
                _ => return None,
            },
            _ => return None,
        }
    }
}

/// Per segment, 1 for a literal and 0 for a `{param}`: a greater vector is a more specific route.
fn specificity(template: &str) -> Vec<u8> {
    template.split('/').map(|s| u8::from(!s.starts_with('{'))).collect()
}

/// [`match_route`] against any table; its `$default` route is skipped (it is what serves a miss).
fn match_in<'p>(table: &'static [Route], method: &str, path: &'p str) -> RouteMatch<'p> {
    let mut allowed = Vec::new();
    let mut best: Option<(&'static Route, Vec<(&'static str, &'p str)>)> = None;
    for route in table.iter().filter(|r| !r.is_default()) {
        let Some(params) = fit(route.path, path) else { continue };
        if route.method != method {
            allowed.push(route.method);
            continue;
        }
        if best.as_ref().is_none_or(|(b, _)| specificity(route.path) > specificity(b.path)) {
            best = Some((route, params));
        }
    }
    match best {
        Some((route, params)) => RouteMatch::Found { route, params },
        None if allowed.is_empty() => RouteMatch::NotFound,
        None => {
            allowed.sort_unstable();
            allowed.dedup();
            RouteMatch::MethodNotAllowed(allowed)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NOT_FOUND;

    fn binary(method: &str, path: &str) -> Option<&'static str> {
        match_route(method, path).binary()
    }

    #[test]
    fn finds_routes_with_their_params_and_tells_404_from_405() {
        assert_eq!(binary("GET", "/v1/webhooks/subscriptions/sub_1"), Some("subscriptions-get"));
        let RouteMatch::Found { route, params } = match_route("POST", "/v1/webhooks/incoming/github/k%2F1") else {
            panic!("inbound route")
        };
        assert_eq!((route.binary, params), ("inbound-receive", vec![("provider", "github"), ("key", "k%2F1")]));
        let allowed = |method, path| match match_route(method, path) {
            RouteMatch::MethodNotAllowed(allowed) => allowed,
            other => panic!("{method} {path}: {other:?}"),
        };
        assert_eq!(allowed("PUT", "/v1/webhooks/subscriptions"), ["GET", "POST"]);
        // Both `/endpoints/{id}` and `/{provider}/{key}` fit: their methods are united.
        assert_eq!(allowed("GET", "/v1/webhooks/incoming/endpoints/ep_1"), ["DELETE", "POST"]);
        for path in [
            "/",
            "",
            "/v1",
            "/v1/webhooks/subscriptions/",
            "/v1/webhooks/subscriptions/a/b",
            "/v1/webhooks/subscriptions//test",
        ] {
            assert!(matches!(match_route("GET", path), RouteMatch::NotFound), "{path}");
        }
    }

    #[test]
    fn the_default_route_is_never_matched_by_path() {
        for method in ["ANY", "GET"] {
            assert!(matches!(match_route(method, "$default"), RouteMatch::NotFound), "{method}");
        }
        assert!(NOT_FOUND.is_default());
    }

    /// Two routes that both take `POST /a/endpoints/x`, declared least specific first.
    static OVERLAPPING: &[Route] = &[
        Route { binary: "by-param", method: "POST", path: "/a/{p}/{k}", handler: NOT_FOUND.handler },
        Route { binary: "by-literal", method: "POST", path: "/a/endpoints/{id}", handler: NOT_FOUND.handler },
        Route { binary: "literal-last", method: "POST", path: "/a/{p}/fixed", handler: NOT_FOUND.handler },
    ];

    #[test]
    fn the_most_specific_route_wins_whatever_the_table_order() {
        let found = |path| match_in(OVERLAPPING, "POST", path).binary();
        assert_eq!(found("/a/endpoints/x"), Some("by-literal"));
        assert_eq!(found("/a/other/x"), Some("by-param"));
        // Left to right: a literal second segment outranks a literal third one.
        assert_eq!(found("/a/endpoints/fixed"), Some("by-literal"));
        assert_eq!(found("/a/other/fixed"), Some("literal-last"));
    }
}
