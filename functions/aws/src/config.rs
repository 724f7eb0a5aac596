//! Typed configuration, read once at cold start.
//!
//! Every function reads the same variables (template.yaml `Globals.Environment`), so one struct
//! serves all of them. Values come through a lookup function rather than straight from the process
//! environment: in Lambda that lookup is `std::env::var`, while the local stack runs every function
//! in one process and hands each a map. A missing or malformed variable fails the cold start with a
//! message naming it.

use puck_core::backoff::RetryPolicy;
use puck_core::services::Settings;
use std::fmt;
use std::path::PathBuf;

/// Why the configuration could not be built; the message always names the variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("missing required environment variable {0}")]
    Missing(&'static str),
    #[error("invalid value for {name}: {reason}")]
    Invalid { name: &'static str, reason: String },
}

/// Static AWS credentials taken from the lookup (local stack only, see [`Config::static_credentials`]).
#[derive(Clone, PartialEq, Eq)]
pub struct StaticCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl fmt::Debug for StaticCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StaticCredentials(***)")
    }
}

/// The service configuration shared by every function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `TABLE_NAME`: the single DynamoDB table holding every record.
    pub table_name: String,
    /// `DELIVERY_QUEUE_URL`: the SQS queue of delivery jobs (its redrive policy points at the DLQ).
    pub delivery_queue_url: String,
    /// `MASTER_KEY_SECRET_ID`: Secrets Manager id or ARN of the master key (read once per container).
    pub master_key_secret_id: String,
    /// `INGEST_DEAD_LETTER_QUEUE_URL`: where the ingest function parks messages that can never be
    /// published. Optional for every other function; the ingest function refuses to start
    /// without it.
    pub ingest_dead_letter_queue_url: Option<String>,
    /// `DELIVERY_FIFO_QUEUE_URL`: the SQS FIFO queue of the deliveries of `fifo` subscriptions
    /// (one message group per subscription); a FIFO job fails to enqueue without it.
    pub delivery_fifo_queue_url: Option<String>,
    /// `MAX_DELIVERY_ATTEMPTS` (default 17): must equal the queue's `maxReceiveCount`.
    pub max_delivery_attempts: u32,
    /// `BACKOFF_BASE_SECONDS` (default 30): delay after the first failed attempt.
    pub backoff_base_seconds: u32,
    /// `BACKOFF_MAX_SECONDS` (default 43200): delay cap; SQS refuses visibility above 12 h.
    pub backoff_max_seconds: u32,
    /// `DELIVERY_TIMEOUT_SECONDS` (default 10): whole-request timeout of one outbound attempt.
    pub delivery_timeout_seconds: u64,
    /// `SECRET_OVERLAP_SECONDS` (default 86400): how long the previous secret still signs after a
    /// rotation.
    pub secret_overlap_seconds: i64,
    /// `RETENTION_DAYS` (default 30): delivery log and event retention, enforced by DynamoDB TTL.
    pub retention_days: i64,
    /// `SWEEP_GRACE_SECONDS` (default 300): how long past due an in-flight delivery must be before
    /// the sweeper re-enqueues it.
    pub sweep_grace_seconds: i64,
    /// `AUTO_DISABLE_AFTER_SECONDS` (default 432000, 5 days): a subscription whose every attempt
    /// has failed for this long, with no success in between, is disabled.
    pub auto_disable_after_seconds: i64,
    /// `RECOVER_MAX_PER_CALL` (default 1000): deliveries one recover call replays at most.
    pub recover_max_per_call: usize,
    /// `CONFIG_CACHE_SECONDS` (default 5, 0 = off): how long a warm instance reuses an API key's
    /// record and an account's subscriptions (`puck_core::cache`); a change made elsewhere reaches
    /// it within this time.
    pub config_cache_seconds: u64,
    /// `ACCOUNT_PUBLISH_PER_SECOND`, `ACCOUNT_TESTS_PER_MINUTE`, `ACCOUNT_MAX_SUBSCRIPTIONS`,
    /// `SUBSCRIPTION_MAX_IN_FLIGHT` (defaults 1000, 30, 1000, 10): the flow limits.
    pub limits: puck_core::limits::Limits,
    /// `PUBLIC_BASE_URL` (optional, no trailing slash): base of inbound receiver URLs, e.g.
    /// `https://api.example.com`.
    pub public_base_url: Option<String>,
    /// `ALLOW_PRIVATE_TARGETS` (dev only, `1`/`true`): lets deliveries reach loopback and private
    /// addresses. Refused in Lambda (see `check_dev_switches`).
    pub allow_private_targets: bool,
    /// `EXTRA_CA_CERT` (dev only): path of a PEM CA trusted in addition to the webpki roots, for
    /// test receivers with self-signed certificates. Refused in Lambda like `allow_private_targets`.
    pub extra_ca_cert: Option<PathBuf>,
    /// `AWS_ENDPOINT_URL` (optional): when set, every SDK client talks to it (moto, LocalStack).
    pub aws_endpoint_url: Option<String>,
    /// `AWS_ENDPOINT_URL_SQS` (optional): the SQS client's endpoint, over `AWS_ENDPOINT_URL` (the
    /// local stack's SQS-limits proxy in front of moto). Same name the SDK reads from the process.
    pub aws_endpoint_url_sqs: Option<String>,
    /// `AWS_ENDPOINT_URL_DYNAMODB` (optional): the DynamoDB client's endpoint, over
    /// `AWS_ENDPOINT_URL` (the local stack runs one moto per service). Same name the SDK reads.
    pub aws_endpoint_url_dynamodb: Option<String>,
    /// `AWS_ENDPOINT_URL_SECRETS_MANAGER` (optional): the Secrets Manager client's endpoint, over
    /// `AWS_ENDPOINT_URL`. Same name the SDK reads.
    pub aws_endpoint_url_secrets_manager: Option<String>,
    /// `AWS_REGION` (default `us-east-1`).
    pub aws_region: String,
    /// `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/`AWS_SESSION_TOKEN` from the lookup, honoured
    /// only together with `AWS_ENDPOINT_URL` (so the local stack can pass dummy credentials in its
    /// map). In AWS the SDK's own credential chain is always used.
    pub static_credentials: Option<StaticCredentials>,
}

impl Config {
    /// Reads the configuration from the process environment.
    pub fn from_env() -> anyhow::Result<Self> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the configuration through `lookup` (a name → value function), e.g. the local
    /// stack's per-function map. Empty values count as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        Ok(Self::try_from_lookup(lookup)?)
    }

    /// [`Config::from_lookup`] with the typed error (which variable, and why).
    pub fn try_from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &'static str| lookup(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let required = |name: &'static str| get(name).ok_or(ConfigError::Missing(name));

        let aws_endpoint_url = get("AWS_ENDPOINT_URL");
        if let Some(raw) = &aws_endpoint_url {
            check_url("AWS_ENDPOINT_URL", raw)?;
        }
        let service_endpoint = |name: &'static str| -> Result<Option<String>, ConfigError> {
            let value = get(name);
            if let Some(raw) = &value {
                check_url(name, raw)?;
            }
            Ok(value)
        };
        let aws_endpoint_url_sqs = service_endpoint("AWS_ENDPOINT_URL_SQS")?;
        let aws_endpoint_url_dynamodb = service_endpoint("AWS_ENDPOINT_URL_DYNAMODB")?;
        let aws_endpoint_url_secrets_manager = service_endpoint("AWS_ENDPOINT_URL_SECRETS_MANAGER")?;
        let public_base_url = match get("PUBLIC_BASE_URL") {
            Some(raw) => {
                check_url("PUBLIC_BASE_URL", &raw)?;
                Some(raw.trim_end_matches('/').to_owned())
            }
            None => None,
        };
        let static_credentials = match (&aws_endpoint_url, get("AWS_ACCESS_KEY_ID"), get("AWS_SECRET_ACCESS_KEY")) {
            (Some(_), Some(access_key_id), Some(secret_access_key)) => {
                Some(StaticCredentials { access_key_id, secret_access_key, session_token: get("AWS_SESSION_TOKEN") })
            }
            _ => None,
        };

        let config = Self {
            table_name: required("TABLE_NAME")?,
            delivery_queue_url: required("DELIVERY_QUEUE_URL")?,
            master_key_secret_id: required("MASTER_KEY_SECRET_ID")?,
            ingest_dead_letter_queue_url: get("INGEST_DEAD_LETTER_QUEUE_URL"),
            delivery_fifo_queue_url: get("DELIVERY_FIFO_QUEUE_URL"),
            max_delivery_attempts: number(get("MAX_DELIVERY_ATTEMPTS"), "MAX_DELIVERY_ATTEMPTS", 17, 1)?,
            backoff_base_seconds: number(get("BACKOFF_BASE_SECONDS"), "BACKOFF_BASE_SECONDS", 30, 1)?,
            backoff_max_seconds: number(get("BACKOFF_MAX_SECONDS"), "BACKOFF_MAX_SECONDS", 43_200, 1)?,
            delivery_timeout_seconds: number(get("DELIVERY_TIMEOUT_SECONDS"), "DELIVERY_TIMEOUT_SECONDS", 10, 1)?,
            secret_overlap_seconds: number(get("SECRET_OVERLAP_SECONDS"), "SECRET_OVERLAP_SECONDS", 86_400, 0)?,
            retention_days: number(get("RETENTION_DAYS"), "RETENTION_DAYS", 30, 1)?,
            sweep_grace_seconds: number(get("SWEEP_GRACE_SECONDS"), "SWEEP_GRACE_SECONDS", 300, 0)?,
            auto_disable_after_seconds: number(
                get("AUTO_DISABLE_AFTER_SECONDS"),
                "AUTO_DISABLE_AFTER_SECONDS",
                432_000,
                1,
            )?,
            recover_max_per_call: number(get("RECOVER_MAX_PER_CALL"), "RECOVER_MAX_PER_CALL", 1_000, 1)?,
            config_cache_seconds: number(get("CONFIG_CACHE_SECONDS"), "CONFIG_CACHE_SECONDS", 5, 0)?,
            limits: limits(&get)?,
            public_base_url,
            allow_private_targets: flag(get("ALLOW_PRIVATE_TARGETS"), "ALLOW_PRIVATE_TARGETS")?,
            extra_ca_cert: get("EXTRA_CA_CERT").map(PathBuf::from),
            aws_endpoint_url,
            aws_endpoint_url_sqs,
            aws_endpoint_url_dynamodb,
            aws_endpoint_url_secrets_manager,
            aws_region: get("AWS_REGION").unwrap_or_else(|| "us-east-1".to_owned()),
            static_credentials,
        };
        check_dev_switches(&config, get("AWS_LAMBDA_FUNCTION_NAME").is_some())?;
        if config.backoff_max_seconds < config.backoff_base_seconds {
            return Err(ConfigError::Invalid {
                name: "BACKOFF_MAX_SECONDS",
                reason: "must not be smaller than BACKOFF_BASE_SECONDS".into(),
            });
        }
        Ok(config)
    }

    /// The tunables the core use cases read.
    pub fn settings(&self) -> Settings {
        Settings {
            allow_private_targets: self.allow_private_targets,
            secret_overlap_secs: self.secret_overlap_seconds,
            retention_days: self.retention_days,
            public_base_url: self.public_base_url.clone(),
            auto_disable_after_secs: self.auto_disable_after_seconds,
            recover_max_per_call: self.recover_max_per_call,
            limits: self.limits,
        }
    }

    /// How long a dispatcher's claim on a delivery lasts: three attempt timeouts, the template's
    /// dispatcher timeout (a batch's sends run at once, each within `DELIVERY_TIMEOUT_SECONDS`,
    /// with time to read and record), and well under the delivery queue's visibility timeout
    /// (the template test `dispatcher_timeouts_fit_the_claim_lease` holds both).
    pub fn claim_lease_seconds(&self) -> i64 {
        3 * self.delivery_timeout_seconds as i64
    }

    /// The retry schedule (the dispatcher's backoff).
    pub fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            base_secs: self.backoff_base_seconds,
            max_secs: self.backoff_max_seconds,
            max_attempts: self.max_delivery_attempts,
        }
    }
}

/// The dev-only switches turn the SSRF guard off or trust a CA that is not public; a function in
/// AWS refuses to start with either. In Lambda (`AWS_LAMBDA_FUNCTION_NAME` set) that is every
/// case but one: with `AWS_ENDPOINT_URL` set nothing talks to AWS at all (a Lambda emulation
/// against moto, such as the cold-start benchmark), so the switches stay allowed there.
fn check_dev_switches(config: &Config, in_lambda: bool) -> Result<(), ConfigError> {
    if !in_lambda || config.aws_endpoint_url.is_some() {
        return Ok(());
    }
    let reason = "is a local-development switch and is refused in Lambda".to_owned();
    if config.allow_private_targets {
        return Err(ConfigError::Invalid { name: "ALLOW_PRIVATE_TARGETS", reason });
    }
    if config.extra_ca_cert.is_some() {
        return Err(ConfigError::Invalid { name: "EXTRA_CA_CERT", reason });
    }
    Ok(())
}

fn check_url(name: &'static str, raw: &str) -> Result<(), ConfigError> {
    let url = url::Url::parse(raw).map_err(|e| ConfigError::Invalid { name, reason: format!("not a URL ({e})") })?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(ConfigError::Invalid { name, reason: "must be an http(s) URL with a host".into() });
    }
    Ok(())
}

fn number<T>(raw: Option<String>, name: &'static str, default: T, min: T) -> Result<T, ConfigError>
where
    T: std::str::FromStr + PartialOrd + fmt::Display + Copy,
{
    let Some(raw) = raw else { return Ok(default) };
    match raw.parse::<T>() {
        Ok(v) if v >= min => Ok(v),
        _ => Err(ConfigError::Invalid { name, reason: format!("expected an integer >= {min}, got {raw:?}") }),
    }
}

/// The flow limits; each at least 1.
fn limits(get: &impl Fn(&'static str) -> Option<String>) -> Result<puck_core::limits::Limits, ConfigError> {
    let d = puck_core::limits::Limits::default();
    Ok(puck_core::limits::Limits {
        publish_per_second: number(
            get("ACCOUNT_PUBLISH_PER_SECOND"),
            "ACCOUNT_PUBLISH_PER_SECOND",
            d.publish_per_second,
            1,
        )?,
        tests_per_minute: number(get("ACCOUNT_TESTS_PER_MINUTE"), "ACCOUNT_TESTS_PER_MINUTE", d.tests_per_minute, 1)?,
        max_subscriptions: number(
            get("ACCOUNT_MAX_SUBSCRIPTIONS"),
            "ACCOUNT_MAX_SUBSCRIPTIONS",
            d.max_subscriptions,
            1,
        )?,
        max_in_flight: number(get("SUBSCRIPTION_MAX_IN_FLIGHT"), "SUBSCRIPTION_MAX_IN_FLIGHT", d.max_in_flight, 1)?,
    })
}

fn flag(raw: Option<String>, name: &'static str) -> Result<bool, ConfigError> {
    match raw.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("0" | "false" | "no" | "off") => Ok(false),
        Some("1" | "true" | "yes" | "on") => Ok(true),
        Some(other) => Err(ConfigError::Invalid { name, reason: format!("expected 1/true or 0/false, got {other:?}") }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn base() -> HashMap<&'static str, &'static str> {
        HashMap::from([
            ("TABLE_NAME", "puck"),
            ("DELIVERY_QUEUE_URL", "http://127.0.0.1:5999/123/deliveries"),
            ("MASTER_KEY_SECRET_ID", "puck/master-key"),
        ])
    }

    fn parse(map: &HashMap<&'static str, &'static str>) -> Result<Config, ConfigError> {
        Config::try_from_lookup(|k| map.get(k).map(|v| (*v).to_owned()))
    }

    #[test]
    fn defaults_apply_when_only_required_variables_are_set() {
        let c = parse(&base()).unwrap();
        assert_eq!(c.table_name, "puck");
        assert_eq!(c.max_delivery_attempts, 17);
        assert_eq!(c.backoff_base_seconds, 30);
        assert_eq!(c.backoff_max_seconds, 43_200);
        assert_eq!(c.delivery_timeout_seconds, 10);
        assert_eq!(c.secret_overlap_seconds, 86_400);
        assert_eq!(c.retention_days, 30);
        assert_eq!(c.sweep_grace_seconds, 300);
        assert_eq!((c.auto_disable_after_seconds, c.recover_max_per_call), (432_000, 1_000));
        assert_eq!(c.config_cache_seconds, 5);
        assert_eq!(c.limits, puck_core::limits::Limits::default());
        assert_eq!(c.aws_region, "us-east-1");
        assert!(!c.allow_private_targets);
        assert!(c.public_base_url.is_none() && c.aws_endpoint_url.is_none() && c.extra_ca_cert.is_none());
        assert!(c.static_credentials.is_none());
        assert!(c.ingest_dead_letter_queue_url.is_none(), "only the ingest function needs it");
    }

    #[test]
    fn missing_required_variable_is_named() {
        for name in ["TABLE_NAME", "DELIVERY_QUEUE_URL", "MASTER_KEY_SECRET_ID"] {
            let mut m = base();
            m.remove(name);
            let err = parse(&m).unwrap_err();
            assert_eq!(err, ConfigError::Missing(name));
            assert!(err.to_string().contains(name));
            m.insert(name, "  ");
            assert_eq!(parse(&m).unwrap_err(), ConfigError::Missing(name));
        }
    }

    #[test]
    fn invalid_values_are_named() {
        let cases = [
            ("MAX_DELIVERY_ATTEMPTS", "many"),
            ("MAX_DELIVERY_ATTEMPTS", "0"),
            ("BACKOFF_BASE_SECONDS", "-1"),
            ("DELIVERY_TIMEOUT_SECONDS", "1.5"),
            ("RETENTION_DAYS", "0"),
            ("SWEEP_GRACE_SECONDS", "x"),
            ("AUTO_DISABLE_AFTER_SECONDS", "0"),
            ("RECOVER_MAX_PER_CALL", "lots"),
            ("ACCOUNT_PUBLISH_PER_SECOND", "0"),
            ("SUBSCRIPTION_MAX_IN_FLIGHT", "x"),
            ("ALLOW_PRIVATE_TARGETS", "maybe"),
            ("PUBLIC_BASE_URL", "not a url"),
            ("AWS_ENDPOINT_URL", "ftp://x"),
            ("BACKOFF_MAX_SECONDS", "10"),
        ];
        for (name, value) in cases {
            let mut m = base();
            m.insert(name, value);
            let err = parse(&m).unwrap_err();
            assert!(err.to_string().contains(name), "{name}={value}: {err}");
        }
    }

    #[test]
    fn optional_values_parse() {
        let mut m = base();
        m.extend([
            ("ALLOW_PRIVATE_TARGETS", "1"),
            ("PUBLIC_BASE_URL", "https://api.example.com/"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:5999"),
            ("AWS_REGION", "eu-west-1"),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI-K7MDENG-bPxRfiCYsecret"),
            ("AWS_SESSION_TOKEN", "FwoGZXIvYXdzEtoken-value"),
            ("EXTRA_CA_CERT", "/tmp/ca.pem"),
            ("MAX_DELIVERY_ATTEMPTS", "3"),
            ("AUTO_DISABLE_AFTER_SECONDS", "60"),
            ("RECOVER_MAX_PER_CALL", "5"),
        ]);
        let c = parse(&m).unwrap();
        assert!(c.allow_private_targets);
        assert_eq!(c.public_base_url.as_deref(), Some("https://api.example.com"));
        assert_eq!(c.aws_region, "eu-west-1");
        assert_eq!(c.max_delivery_attempts, 3);
        assert_eq!(c.retry_policy().max_attempts, 3);
        assert_eq!((c.settings().auto_disable_after_secs, c.settings().recover_max_per_call), (60, 5));
        assert_eq!(c.extra_ca_cert, Some(PathBuf::from("/tmp/ca.pem")));
        let creds = c.static_credentials.as_ref().expect("static credentials with an endpoint");
        assert_eq!(creds.secret_access_key, "wJalrXUtnFEMI-K7MDENG-bPxRfiCYsecret");
        assert_eq!(creds.session_token.as_deref(), Some("FwoGZXIvYXdzEtoken-value"));
        // The Debug form (what a `?config` log field prints) shows neither the secret nor the token.
        let debug = format!("{c:?}");
        assert!(debug.contains("StaticCredentials(***)") && debug.contains("eu-west-1"), "{debug}");
        assert!(!debug.contains("wJalrXUtnFEMI") && !debug.contains("token-value"), "{debug}");
    }

    #[test]
    fn dev_switches_are_refused_in_lambda_unless_nothing_talks_to_aws() {
        for (name, value) in [("ALLOW_PRIVATE_TARGETS", "1"), ("EXTRA_CA_CERT", "/tmp/ca.pem")] {
            let mut m = base();
            m.insert(name, value);
            assert!(parse(&m).is_ok(), "{name} outside Lambda");
            m.insert("AWS_LAMBDA_FUNCTION_NAME", "puck-dispatcher");
            let err = parse(&m).unwrap_err();
            assert!(matches!(err, ConfigError::Invalid { name: n, .. } if n == name), "{err}");
            assert!(err.to_string().contains("refused in Lambda"), "{err}");
            m.insert("AWS_ENDPOINT_URL", "http://127.0.0.1:5999");
            assert!(parse(&m).is_ok(), "{name} in an emulation against local endpoints");
        }
        let mut m = base();
        m.extend([("AWS_LAMBDA_FUNCTION_NAME", "puck-dispatcher"), ("ALLOW_PRIVATE_TARGETS", "0")]);
        assert!(parse(&m).is_ok());
    }

    #[test]
    fn static_credentials_need_an_endpoint() {
        let mut m = base();
        m.extend([("AWS_ACCESS_KEY_ID", "AKIA"), ("AWS_SECRET_ACCESS_KEY", "s")]);
        assert!(parse(&m).unwrap().static_credentials.is_none());
    }
}
