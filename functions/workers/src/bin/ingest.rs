//! Lambda entry point for the `ingest` function (see template.yaml).
fn main() -> Result<(), lambda_runtime::Error> {
    puck_workers::ingest::run()
}
