//! Adapters for the core ports (being written).
pub mod telemetry {
    pub fn init() {}
}
#[derive(Debug, Clone)]
pub struct Config;
impl Config {
    pub fn from_env() -> anyhow::Result<Self> { Ok(Config) }
}
pub async fn build_context(_c: &Config) -> anyhow::Result<puck_core::services::Context> { anyhow::bail!("todo") }
