//! lambda_http glue (being written).
