//! Lambda entry point for the `sweeper` function (see template.yaml).
fn main() -> Result<(), lambda_runtime::Error> {
    puck_workers::sweeper::run()
}
