//! Lambda entry point for the `dead-letter` function (see template.yaml).
fn main() -> Result<(), lambda_runtime::Error> {
    puck_workers::dead_letter::run()
}
