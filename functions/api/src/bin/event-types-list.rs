//! Lambda entry point for the `event-types-list` route (see template.yaml).
fn main() -> Result<(), lambda_http::Error> {
    puck_api::run(&puck_api::EVENT_TYPES_LIST)
}
