//! Lambda entry point for the `subscriptions-list` route (see template.yaml).
fn main() -> Result<(), lambda_http::Error> {
    puck_api::run(&puck_api::SUBSCRIPTIONS_LIST)
}
