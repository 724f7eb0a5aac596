//! Lambda entry point for the `console` route (`GET /console`, `GET /console/{asset}`): static
//! files built into the binary, so it builds no AWS context and reads no secret.
fn main() -> Result<(), lambda_http::Error> {
    puck_api::run_without_context(puck_api::routes::console::answer)
}
