//! Lambda entry point for the `inbound-receive` route (see template.yaml).
fn main() -> Result<(), lambda_http::Error> {
    puck_api::run(&puck_api::INBOUND_RECEIVE)
}
