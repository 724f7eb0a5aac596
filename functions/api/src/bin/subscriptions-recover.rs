//! Lambda entry point for the `subscriptions-recover` route (see template.yaml).
fn main() -> Result<(), lambda_http::Error> {
    puck_api::run(&puck_api::SUBSCRIPTIONS_RECOVER)
}
