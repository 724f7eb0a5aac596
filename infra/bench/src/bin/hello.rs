//! The hello-world reference Lambda: `lambda_runtime` with the same tokio runtime flavour as the
//! service's functions (current-thread) and nothing else, so the cold-start and size gap between
//! it and a real function is exactly what the function adds (config, SDK clients, master key).
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::{json, Value};

fn main() -> Result<(), Error> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(lambda_runtime::run(service_fn(|_event: LambdaEvent<Value>| async {
        Ok::<_, Error>(json!({ "message": "hello" }))
    })))
}
