//! Lambda entry point for the `events-publish-batch` route (see template.yaml).
fn main() -> Result<(), lambda_http::Error> {
    puck_api::run(&puck_api::EVENTS_PUBLISH_BATCH)
}
