//! Queue and schedule consumers (being written).
pub mod dispatcher {
    use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
    use puck_core::services::dispatch::Dispatcher;
    pub async fn handle(_d: &Dispatcher, _event: SqsEvent) -> SqsBatchResponse { SqsBatchResponse::default() }
}
pub mod dead_letter {
    use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
    use puck_core::services::Context;
    pub async fn handle(_ctx: &Context, _event: SqsEvent) -> SqsBatchResponse { SqsBatchResponse::default() }
}
pub mod sweeper {
    use puck_core::services::Context;
    pub async fn handle(_ctx: &Context, _event: serde_json::Value) -> Result<serde_json::Value, puck_core::AppError> { Ok(serde_json::Value::Null) }
}
