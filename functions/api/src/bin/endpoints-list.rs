//! Lambda entry point for the `endpoints-list` route (see template.yaml).
fn main() -> Result<(), lambda_http::Error> {
    puck_api::run(&puck_api::ENDPOINTS_LIST)
}
