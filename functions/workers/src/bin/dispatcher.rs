//! Lambda entry point for the `dispatcher` function (see template.yaml).
fn main() -> Result<(), lambda_runtime::Error> {
    puck_workers::dispatcher::run()
}
