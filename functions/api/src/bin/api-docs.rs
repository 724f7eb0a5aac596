//! Lambda entry point for the `api-docs` route (see template.yaml). It touches no data, so it
//! builds no AWS context and reads no secret.
fn main() -> Result<(), lambda_http::Error> {
    puck_api::run_without_context(puck_api::routes::reference::docs_answer)
}
