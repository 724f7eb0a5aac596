//! Lambda entry point for the `deliveries-get` route (see template.yaml).
fn main() -> Result<(), lambda_http::Error> {
    puck_api::run(&puck_api::DELIVERIES_GET)
}
