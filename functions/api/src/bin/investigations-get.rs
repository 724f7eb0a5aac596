//! Lambda entry point for the `investigations-get` route (see template.yaml).
fn main() -> Result<(), lambda_http::Error> {
    puck_api::run(&puck_api::INVESTIGATIONS_GET)
}
