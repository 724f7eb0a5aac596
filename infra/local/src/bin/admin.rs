//! `puck-admin`: API keys for operators. Keys are stored only as hashes, so this tool (or the
//! local stack) is the only place a key is ever shown, exactly once.
//!
//! It reads the same configuration as the functions (`Config::from_env`): against AWS, export the
//! stack outputs (`TABLE_NAME`, `DELIVERY_QUEUE_URL`, `MASTER_KEY_SECRET_ID`); against the local
//! stack, also the `AWS_ENDPOINT_URL…` lines puck-local prints (one moto per service) and
//! `TABLE_NAME=puck-local-Table`, `DELIVERY_QUEUE_URL=…`, `MASTER_KEY_SECRET_ID=puck-local-MasterKeySecret`.
//!
//! ```text
//! puck-admin create-key --account <acct_…|new> [--scopes webhooks:manage,events:publish|all] [--live]
//! puck-admin revoke-key --account <acct_…> --key-id <key_…>
//! ```

use anyhow::{bail, Context as _, Result};
use puck_core::ids::{AccountId, ApiKeyId};

const USAGE: &str = "usage:
  puck-admin create-key --account <acct_…|new> [--scopes <scope,…|all>] [--live]
  puck-admin revoke-key --account <acct_…> --key-id <key_…>";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(command) = args.first().cloned() else {
        bail!("{USAGE}");
    };
    let flag = |name: &str| args.iter().any(|a| a == name);
    let value =
        |name: &str| -> Option<String> { args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned() };
    if flag("--help") || flag("-h") {
        println!("{USAGE}");
        return Ok(());
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let config = puck_aws::Config::from_env()?;
        let ctx = puck_aws::build_context(&config).await?;
        match command.as_str() {
            "create-key" => {
                let account = match value("--account").as_deref() {
                    Some("new") => puck_local::keys::new_account_id(),
                    Some(raw) => AccountId::parse(raw)?,
                    None => bail!("--account is required\n{USAGE}"),
                };
                let scopes = puck_local::keys::parse_scopes(&value("--scopes").unwrap_or_else(|| "all".into()))?;
                let (key, record) = puck_local::issue_api_key(&ctx, &account, &scopes, flag("--live")).await?;
                let scope_names: Vec<&str> = record.scopes.iter().map(|s| s.as_str()).collect();
                println!("account  {}", record.account_id);
                println!("key_id   {}", record.key_id);
                println!("scopes   {}", scope_names.join(","));
                println!("api_key  {key}");
                eprintln!("The key is shown only now; store it safely.");
                Ok(())
            }
            "revoke-key" => {
                let account = AccountId::parse(&value("--account").context("--account is required")?)?;
                let key_id = ApiKeyId::parse(&value("--key-id").context("--key-id is required")?)?;
                if !ctx.api_keys.revoke(&account, &key_id).await? {
                    bail!("{account} has no key {key_id}");
                }
                println!("revoked {key_id}");
                Ok(())
            }
            other => bail!("unknown command {other:?}\n{USAGE}"),
        }
    })
}
