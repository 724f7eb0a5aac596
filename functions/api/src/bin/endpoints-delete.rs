//! Lambda entry point for the `endpoints-delete` route (see template.yaml).
fn main() -> Result<(), lambda_http::Error> {
    puck_api::run(&puck_api::ENDPOINTS_DELETE)
}
