//! Lambda entry point for the `subscriptions-update` route (see template.yaml).
fn main() -> Result<(), lambda_http::Error> {
    puck_api::run(&puck_api::SUBSCRIPTIONS_UPDATE)
}
