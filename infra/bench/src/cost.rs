//! The all-in bill (docs/benchmarks.md): measured usage of one scenario × AWS list prices, line by line,
//! for x86_64 and arm64; the fixed monthly cost at zero traffic; the partition ceiling.
//!
//! Pure arithmetic on what [`crate::costrun`] measured (the ledger of the real call log, Lambda
//! durations, log bytes, bytes sent), so every rule is unit-tested here and the report only
//! formats. Prices are us-east-1 list prices without free tier, as stated in [`PRICES_AS_OF`].

use crate::ledger::Ledger;
use std::collections::BTreeMap;

/// When the prices below were taken from the AWS pricing pages.
pub const PRICES_AS_OF: &str = "us-east-1 list prices, no free tier, as published on the AWS pricing pages in 2025 (DynamoDB after the Nov 2024 on-demand cut)";

/// API Gateway HTTP API, per request (first 300 M/month), each metered in 512 KB increments.
pub const APIGW_REQUEST_USD: f64 = 1.00 / 1e6;
/// The API Gateway HTTP API metering increment.
pub const APIGW_METER_BYTES: usize = 512 * 1024;
/// Lambda, per request.
pub const LAMBDA_REQUEST_USD: f64 = 0.20 / 1e6;
/// Lambda x86_64, per GB-second.
pub const LAMBDA_X86_GB_S_USD: f64 = 0.000_016_666_7;
/// Lambda arm64 (Graviton), per GB-second.
pub const LAMBDA_ARM_GB_S_USD: f64 = 0.000_013_333_4;
/// DynamoDB on-demand, per write request unit (1 KB).
pub const DYNAMO_WRU_USD: f64 = 0.625 / 1e6;
/// DynamoDB on-demand, per read request unit (4 KB strongly consistent, 2 eventually consistent reads).
pub const DYNAMO_RRU_USD: f64 = 0.125 / 1e6;
/// DynamoDB Standard table class storage, per GB-month (items + 100 B each; index entries too).
pub const DYNAMO_STORAGE_GB_MONTH_USD: f64 = 0.25;
/// SQS standard queue, per request (each 64 KiB chunk).
pub const SQS_REQUEST_USD: f64 = 0.40 / 1e6;
/// CloudWatch Logs standard ingestion, per GB.
pub const LOGS_INGEST_GB_USD: f64 = 0.50;
/// CloudWatch Logs archived storage, per GB-month (billed compressed; priced here on the ingested
/// bytes, an upper bound).
pub const LOGS_STORAGE_GB_MONTH_USD: f64 = 0.03;
/// Data transfer out to the internet, per GB (first 10 TB/month tier).
pub const DATA_OUT_GB_USD: f64 = 0.09;
/// Secrets Manager, per API call ($0.05 per 10,000).
pub const SECRETS_CALL_USD: f64 = 0.05 / 10_000.0;
/// Secrets Manager, per secret-month.
pub const SECRET_MONTH_USD: f64 = 0.40;
/// DynamoDB point-in-time recovery (continuous backups), per GB-month of table size.
pub const DYNAMO_PITR_GB_MONTH_USD: f64 = 0.20;
/// KMS, per API request ($0.03 per 10,000).
pub const KMS_REQUEST_USD: f64 = 0.03 / 10_000.0;
/// KMS requests a table encrypted with the AWS-managed key (`aws/dynamodb`) makes per month:
/// DynamoDB caches the table key and refreshes it about every 5 minutes (an estimate: AWS does
/// not publish the rate; it does not grow with traffic).
pub const DYNAMO_KMS_REQUESTS_MONTH: f64 = MONTH_S / 300.0;
/// CloudWatch standard-resolution alarm, per alarm-month.
pub const ALARM_MONTH_USD: f64 = 0.10;
/// CloudWatch dashboard, per dashboard-month (beyond the 3 free ones).
pub const DASHBOARD_MONTH_USD: f64 = 3.00;
/// Lambda's own log lines per invocation (START, END, REPORT), ingested with the function's logs
/// when the template's `SystemLogLevel` lets INFO through.
pub const LAMBDA_PLATFORM_LOG_BYTES: f64 = 350.0;
/// Seconds in the average month (365.25 / 12 days).
pub const MONTH_S: f64 = 30.4375 * 86_400.0;

const GB: f64 = 1e9;

/// The two Lambda architectures priced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Arch {
    X86_64,
    Arm64,
}

impl Arch {
    pub const ALL: [Arch; 2] = [Arch::X86_64, Arch::Arm64];

    /// The name used in the report and BENCHMARKS.json.
    pub fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Arm64 => "arm64",
        }
    }

    fn gb_s_usd(self) -> f64 {
        match self {
            Arch::X86_64 => LAMBDA_X86_GB_S_USD,
            Arch::Arm64 => LAMBDA_ARM_GB_S_USD,
        }
    }
}

/// Lambda usage of one function in a scenario.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LambdaUse {
    pub invocations: f64,
    /// Sum of billed durations (each invocation rounded up to 1 ms).
    pub billed_ms: f64,
    pub memory_mb: f64,
}

/// Everything one scenario used, as measured.
#[derive(Debug, Clone, Default)]
pub struct Usage {
    /// Successful deliveries the scenario produced (the denominator).
    pub deliveries: f64,
    /// API Gateway requests as metered (512 KB increments).
    pub api_requests: f64,
    /// Per function.
    pub lambda: BTreeMap<String, LambdaUse>,
    /// DynamoDB, SQS and Secrets Manager from the replayed call log.
    pub ledger: Ledger,
    /// Bytes the functions logged (JSON lines, as in Lambda).
    pub log_bytes: f64,
    /// Lambda's own log bytes per invocation at the template's `SystemLogLevel`.
    pub platform_log_bytes_per_invocation: f64,
    /// The HTTP API's access log: one line per request in the template's format.
    pub access_log_bytes: f64,
    /// How long the log groups keep what was ingested (days).
    pub log_retention_days: f64,
    /// Bytes sent out of AWS: delivery requests to receivers and API responses to producers.
    pub data_out_bytes: f64,
    /// Bytes the scenario leaves stored in DynamoDB (items and index entries, 100 B overhead each).
    pub stored_bytes: f64,
    /// How long stored bytes stay (the retention, days).
    pub retention_days: f64,
    /// The table has point-in-time recovery (billed on its size).
    pub pitr: bool,
}

impl Usage {
    /// Lambda invocations of every function.
    pub fn invocations(&self) -> f64 {
        self.lambda.values().map(|f| f.invocations).sum()
    }

    /// Every byte CloudWatch Logs ingests: the functions' lines, Lambda's own, the API access log.
    pub fn ingested_log_bytes(&self) -> f64 {
        self.log_bytes + self.invocations() * self.platform_log_bytes_per_invocation + self.access_log_bytes
    }
}

/// One line of the bill.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub item: &'static str,
    /// What was counted, for the report.
    pub quantity: String,
    pub usd: f64,
}

/// The bill of one scenario, per line, in dollars for the whole scenario.
pub fn bill(u: &Usage, arch: Arch) -> Vec<Line> {
    let l = &u.ledger;
    let invocations = u.invocations();
    let gb_s: f64 = u.lambda.values().map(|f| f.billed_ms / 1000.0 * f.memory_mb / 1024.0).sum();
    let platform_log_bytes = invocations * u.platform_log_bytes_per_invocation;
    let log_bytes = u.ingested_log_bytes();
    let index_wru: f64 = l.index_wru.values().sum();
    // Storage: a month of traffic stays `retention_days`, so it is billed that share of a month.
    let month_share = |days: f64| days * 86_400.0 / MONTH_S;
    let storage_gb_months = u.stored_bytes / GB * month_share(u.retention_days);
    vec![
        Line {
            item: "API Gateway HTTP API",
            quantity: format!("{} requests", u.api_requests),
            usd: u.api_requests * APIGW_REQUEST_USD,
        },
        Line {
            item: "Lambda requests",
            quantity: format!("{invocations} invocations"),
            usd: invocations * LAMBDA_REQUEST_USD,
        },
        Line {
            item: "Lambda duration",
            quantity: format!("{gb_s:.4} GB-s ({})", arch.name()),
            usd: gb_s * arch.gb_s_usd(),
        },
        Line {
            item: "DynamoDB writes, table",
            quantity: format!("{} WRU", l.table_wru),
            usd: l.table_wru * DYNAMO_WRU_USD,
        },
        Line {
            item: "DynamoDB writes, indexes",
            quantity: if l.index_wru.is_empty() {
                "0 WRU".into()
            } else {
                l.index_wru.iter().map(|(k, v)| format!("{k} {v} WRU")).collect::<Vec<_>>().join(", ")
            },
            usd: index_wru * DYNAMO_WRU_USD,
        },
        Line { item: "DynamoDB reads", quantity: format!("{} RRU", l.rru), usd: l.rru * DYNAMO_RRU_USD },
        Line {
            item: "DynamoDB storage",
            quantity: format!("{:.0} B for {} days", u.stored_bytes, u.retention_days),
            usd: storage_gb_months * DYNAMO_STORAGE_GB_MONTH_USD,
        },
        Line {
            item: "DynamoDB point-in-time recovery",
            quantity: if u.pitr {
                format!("{:.0} B for {} days", u.stored_bytes, u.retention_days)
            } else {
                "off".into()
            },
            usd: if u.pitr { storage_gb_months * DYNAMO_PITR_GB_MONTH_USD } else { 0.0 },
        },
        Line {
            item: "SQS requests",
            quantity: format!("{} requests (64 KiB chunks, incl. the event source mapping)", l.sqs),
            usd: l.sqs * SQS_REQUEST_USD,
        },
        Line {
            item: "CloudWatch Logs ingestion",
            quantity: format!(
                "{log_bytes:.0} B (functions {:.0}, Lambda platform {platform_log_bytes:.0}, API access log {:.0})",
                u.log_bytes, u.access_log_bytes
            ),
            usd: log_bytes / GB * LOGS_INGEST_GB_USD,
        },
        Line {
            item: "CloudWatch Logs storage",
            quantity: format!("{log_bytes:.0} B for {} days", u.log_retention_days),
            usd: log_bytes / GB * month_share(u.log_retention_days) * LOGS_STORAGE_GB_MONTH_USD,
        },
        Line {
            item: "Data transfer out",
            quantity: format!("{:.0} B", u.data_out_bytes),
            usd: u.data_out_bytes / GB * DATA_OUT_GB_USD,
        },
        Line {
            item: "Secrets Manager calls",
            quantity: format!("{} calls", l.secrets),
            usd: l.secrets * SECRETS_CALL_USD,
        },
    ]
}

/// Bytes of one HTTP API access-log line in `format` (the template's `AccessLogSettings.Format`):
/// every `$context.<name>` replaced by a value of the length API Gateway writes for it, plus the
/// newline. Unknown variables count 16 bytes.
pub fn access_log_line_bytes(format: &str, route_key: &str, status: u16, response_len: usize) -> usize {
    let mut bytes = 1;
    let mut rest = format;
    while let Some(at) = rest.find("$context.") {
        bytes += at;
        let after = &rest[at + "$context.".len()..];
        let end = after.find(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '_')).unwrap_or(after.len());
        bytes += match &after[..end] {
            "requestId" => "KpB0ljVxIAMEb9Q=".len(),
            "requestTime" => "06/Dec/2026:18:19:37 +0000".len(),
            "routeKey" => route_key.len(),
            "status" => status.to_string().len(),
            "responseLength" => response_len.to_string().len(),
            "responseLatency" => "25".len(),
            "integrationErrorMessage" => "-".len(),
            "identity.sourceIp" => "203.0.113.10".len(),
            _ => 16,
        };
        rest = &after[end..];
    }
    bytes + rest.len()
}

/// Lambda's own log bytes per invocation at a `SystemLogLevel` (absent: Lambda's default, INFO).
pub fn platform_log_bytes(system_log_level: Option<&str>) -> f64 {
    match system_log_level {
        Some(level) if level.eq_ignore_ascii_case("WARN") => 0.0,
        _ => LAMBDA_PLATFORM_LOG_BYTES,
    }
}

/// Dollars per million successful deliveries.
pub fn per_million(u: &Usage, arch: Arch) -> f64 {
    bill(u, arch).iter().map(|l| l.usd).sum::<f64>() / u.deliveries.max(1.0) * 1e6
}

/// The fixed monthly cost at zero traffic, line by line.
#[derive(Debug, Clone, Default)]
pub struct Fixed {
    /// Queues with an event source mapping, and the idle receives Lambda's pollers make per queue per month.
    pub esm_queues: f64,
    pub idle_receives_per_queue_month: f64,
    pub secrets: f64,
    pub alarms: f64,
    pub dashboards: f64,
    /// The table is encrypted with a KMS key (the template's `SSESpecification`).
    pub dynamo_kms: bool,
    /// Scheduled invocations per month (the sweeper) and what one idle run costs.
    pub scheduled_per_month: f64,
    pub scheduled_run: Usage,
}

/// Lambda's SQS pollers: 5 long polls of 20 s each, kept open while the queue is empty.
pub const IDLE_POLLERS: f64 = 5.0;
/// Long-poll wait of the event source mapping.
pub const IDLE_POLL_S: f64 = 20.0;

/// Idle receives per queue per month from the pollers above.
pub fn idle_receives_per_month() -> f64 {
    IDLE_POLLERS * MONTH_S / IDLE_POLL_S
}

/// The fixed monthly lines (x86_64 and arm64 differ only in the scheduled runs' duration).
pub fn fixed_lines(f: &Fixed, arch: Arch) -> Vec<Line> {
    let receives = f.esm_queues * f.idle_receives_per_queue_month;
    let run: f64 = bill(&f.scheduled_run, arch).iter().map(|l| l.usd).sum();
    vec![
        Line {
            item: "SQS empty receives of the event source mappings",
            quantity: format!("{} queues × {:.0}/month", f.esm_queues, f.idle_receives_per_queue_month),
            usd: receives * SQS_REQUEST_USD,
        },
        Line { item: "Secrets Manager secrets", quantity: format!("{}", f.secrets), usd: f.secrets * SECRET_MONTH_USD },
        Line {
            item: "KMS requests (DynamoDB encryption, AWS-managed key)",
            quantity: if f.dynamo_kms { format!("{DYNAMO_KMS_REQUESTS_MONTH:.0}/month") } else { "off".into() },
            usd: if f.dynamo_kms { DYNAMO_KMS_REQUESTS_MONTH * KMS_REQUEST_USD } else { 0.0 },
        },
        Line { item: "CloudWatch alarms", quantity: format!("{}", f.alarms), usd: f.alarms * ALARM_MONTH_USD },
        Line {
            item: "CloudWatch dashboards",
            quantity: format!("{}", f.dashboards),
            usd: f.dashboards * DASHBOARD_MONTH_USD,
        },
        Line {
            item: "Scheduled runs at zero traffic (sweeper)",
            quantity: format!("{:.0}/month", f.scheduled_per_month),
            usd: f.scheduled_per_month * run,
        },
    ]
}

/// Sum of a bill.
pub fn total(lines: &[Line]) -> f64 {
    lines.iter().map(|l| l.usd).sum()
}

/// DynamoDB's per-partition limits.
pub const PARTITION_WCU_S: f64 = 1000.0;
pub const PARTITION_RCU_S: f64 = 3000.0;

/// The hottest key of a group and the sustained deliveries/s it allows.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyLimit {
    /// `table-or-index: key shape`.
    pub key: String,
    /// Sustained units one key value of the shape takes per delivery: the hottest value's, or for
    /// a hash-sharded shape the owner's units over all its shards divided by the shard count.
    pub wru_per_delivery: f64,
    pub rru_per_delivery: f64,
    /// Read units of cached configuration the sample paid on this key in all (the container's
    /// cache misses): under sustained traffic paid per container per cache period, so they bound
    /// the number of containers, not the deliveries/s ([`KeyLimit::containers_at_half`]).
    pub cached_rru: f64,
    /// Write units of subscription state (last delivery, failing clock) the sample paid on this
    /// key in all: while the outcome holds, paid per container per refresh period, so they bound
    /// the number of containers ([`KeyLimit::containers_at_half_write`]); each change of outcome
    /// writes too (see the report's failure case).
    pub state_wru: f64,
    /// Deliveries/s before the key passes 1,000 WCU/s or 3,000 RCU/s (per-delivery units only).
    pub at_limit: f64,
    /// How many hash shards the shape's owner is spread over (1: not sharded).
    pub shards: u32,
    /// The units per delivery of the hottest value seen in the sample (for a sharded shape, one
    /// shard that happened to draw more of the few sampled deliveries than its share).
    pub sample_hottest: (f64, f64),
}

impl KeyLimit {
    /// An unsharded key: its sustained load is the hottest value's.
    pub fn new(key: String, wru_per_delivery: f64, rru_per_delivery: f64) -> Self {
        Self::sharded(key, wru_per_delivery, rru_per_delivery, 1, (wru_per_delivery, rru_per_delivery))
    }

    /// A key of `shards` shards taking `wru_per_delivery`/`rru_per_delivery` each, sustained.
    pub fn sharded(
        key: String,
        wru_per_delivery: f64,
        rru_per_delivery: f64,
        shards: u32,
        sample_hottest: (f64, f64),
    ) -> Self {
        let by = |units: f64, limit: f64| if units > 0.0 { limit / units } else { f64::INFINITY };
        let at_limit = by(wru_per_delivery, PARTITION_WCU_S).min(by(rru_per_delivery, PARTITION_RCU_S));
        Self {
            key,
            wru_per_delivery,
            rru_per_delivery,
            cached_rru: 0.0,
            state_wru: 0.0,
            at_limit,
            shards,
            sample_hottest,
        }
    }

    /// Moves `cached_rru` of the sample's reads and `state_wru` of its writes (in all, over
    /// `deliveries`) out of the per-delivery units.
    pub fn with_cached(mut self, cached_rru: f64, state_wru: f64, deliveries: f64) -> Self {
        let per = |units: f64| units / deliveries.max(1.0);
        let wru = (self.wru_per_delivery - per(state_wru)).max(0.0);
        let rru = (self.rru_per_delivery - per(cached_rru)).max(0.0);
        let hottest = self.sample_hottest;
        self = Self::sharded(self.key, wru, rru, self.shards, hottest);
        self.cached_rru = cached_rru;
        self.state_wru = state_wru;
        self
    }

    /// How many containers may each write the subscription state once per `refresh_secs` while
    /// the key stays under half its write limit, taking the sample's state writes as one refresh.
    pub fn containers_at_half_write(&self, refresh_secs: f64) -> f64 {
        if self.state_wru > 0.0 {
            PARTITION_WCU_S / 2.0 * refresh_secs / self.state_wru
        } else {
            f64::INFINITY
        }
    }

    /// How many containers may each refresh their cached configuration once per `cache_secs`
    /// while the key stays under half its read limit, taking the sample's cached reads as one
    /// refresh (an upper bound: the sample may span more than one cache period).
    pub fn containers_at_half(&self, cache_secs: f64) -> f64 {
        if self.cached_rru > 0.0 {
            PARTITION_RCU_S / 2.0 * cache_secs / self.cached_rru
        } else {
            f64::INFINITY
        }
    }
}

/// Write units of subscription state per delivery on the account's key when a share `failing`
/// of deliveries fails once: a change of outcome is written (last delivery, failing clock) by
/// every container that sees it, so each such delivery pays the failed attempt's state writes
/// (`failed_attempt_state_wru`, measured) and as many again when the next attempt succeeds.
pub fn state_wru_when_failing(failed_attempt_state_wru: f64, failing: f64) -> f64 {
    failing * 2.0 * failed_attempt_state_wru
}

/// The key shapes the service hash-shards, and into how many shards (puck-aws's constants): a
/// delivery's shard is a stable hash of its id, so under sustained traffic each shard takes an
/// equal share of its owner's units.
pub const SHARDED_SHAPES: [(&str, u32); 4] = [
    ("ACCT#{acct}#D{n}", puck_aws::dynamo::LOG_SHARDS),
    ("SUB#{sub}#{n}", puck_aws::dynamo::SUB_SHARDS),
    ("DUE#{n}", puck_aws::dynamo::DUE_SHARDS),
    ("PUB#{n}", puck_aws::dynamo::DUE_SHARDS),
];

/// The shard count of a key shape (1 when not sharded).
pub fn shard_count(shape: &str) -> u32 {
    SHARDED_SHAPES.iter().find(|(s, _)| *s == shape).map_or(1, |(_, n)| *n)
}

/// The lowest ceiling among keys (infinite when no key bounds it).
pub fn ceiling(keys: &[KeyLimit]) -> f64 {
    keys.iter().map(|k| k.at_limit).fold(f64::INFINITY, f64::min)
}

/// Who a partition key belongs to, which decides whether its load is sustained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    /// Shared by all of an account's traffic (or by every account): bounds the account and each subscription.
    Account,
    /// One subscription's traffic: bounds the subscription only.
    Subscription,
    /// One event's or one delivery's: a burst per event, not a sustained ceiling.
    Item,
}

/// The shape of a partition key value: ids replaced by `{acct}`, `{sub}`, `{dlv}`, `{evt}` (the
/// scenario's event ids), other prefixed ids by `{id}`, long hex by `{hash}`, digit runs by `{n}`.
pub fn key_shape(value: &str, event_ids: &[String]) -> (String, Scope) {
    let mut v = value.to_owned();
    for e in event_ids {
        v = v.replace(e.as_str(), "{evt}");
    }
    let mut out = String::new();
    let mut rest = v.as_str();
    'outer: while !rest.is_empty() {
        for (prefix, name) in [
            ("acct_", "{acct}"),
            ("sub_", "{sub}"),
            ("dlv_", "{dlv}"),
            ("att_", "{id}"),
            ("key_", "{id}"),
            ("ep_", "{id}"),
            ("inv_", "{id}"),
        ] {
            if let Some(after) = rest.strip_prefix(prefix) {
                let n = after.chars().take_while(char::is_ascii_alphanumeric).count();
                if n >= 10 {
                    out.push_str(name);
                    rest = &after[n..];
                    continue 'outer;
                }
            }
        }
        let hex = rest.chars().take_while(char::is_ascii_hexdigit).count();
        if hex >= 32 {
            out.push_str("{hash}");
            rest = &rest[hex..];
            continue;
        }
        let digits = rest.chars().take_while(char::is_ascii_digit).count();
        if digits > 0 {
            out.push_str("{n}");
            rest = &rest[digits..];
            continue;
        }
        let c = rest.chars().next().expect("not empty");
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    let scope = if out.contains("{evt}") || out.contains("{dlv}") {
        Scope::Item
    } else if out.contains("{sub}") {
        Scope::Subscription
    } else {
        Scope::Account
    };
    (out, scope)
}

/// Per key shape (table or index), the sustained units one key value of that shape takes per
/// delivery in a scenario of `deliveries` deliveries from one account to one subscription, with
/// its scope. For an unsharded shape that is its hottest value's units. A sample of a few hundred
/// deliveries puts only a handful on each shard of a sharded shape, so its hottest shard overstates
/// what a shard takes under sustained traffic: there the owner's units over all its shards (the
/// value without its shard number; the hottest owner) are divided by [`shard_count`], and the
/// sample's hottest shard is kept alongside.
///
/// Writes of subscription state are moved out of the per-delivery units, and so are reads of
/// configuration with `config_cached` (the functions cache it) ([`KeyLimit::with_cached`]).
pub fn partition_keys(
    keys: &BTreeMap<(String, String), crate::ledger::Load>,
    deliveries: f64,
    event_ids: &[String],
    config_cached: bool,
) -> Vec<(Scope, KeyLimit)> {
    struct Shape {
        scope: Scope,
        hottest: (f64, f64),
        cached_rru: f64,
        state_wru: f64,
        by_owner: BTreeMap<String, (f64, f64)>,
    }
    let mut shapes: BTreeMap<(String, String), Shape> = BTreeMap::new();
    for ((on, value), load) in keys {
        let (shape, scope) = key_shape(value, event_ids);
        let e = shapes.entry((on.clone(), shape)).or_insert(Shape {
            scope,
            hottest: (0.0, 0.0),
            cached_rru: 0.0,
            state_wru: 0.0,
            by_owner: BTreeMap::new(),
        });
        e.hottest = (e.hottest.0.max(load.wru), e.hottest.1.max(load.rru));
        e.cached_rru = e.cached_rru.max(load.cached_rru);
        e.state_wru = e.state_wru.max(load.state_wru);
        let owner = e.by_owner.entry(value.trim_end_matches(|c: char| c.is_ascii_digit()).to_owned()).or_default();
        *owner = (owner.0 + load.wru, owner.1 + load.rru);
    }
    let per = |units: f64| units / deliveries.max(1.0);
    shapes
        .into_iter()
        .map(|((on, shape), s)| {
            let shards = shard_count(&shape);
            let hottest = (per(s.hottest.0), per(s.hottest.1));
            let key = format!("{on}: {shape}");
            let limit = if shards > 1 {
                let (w, r) = s.by_owner.values().fold((0.0, 0.0), |a, o| (f64::max(a.0, o.0), f64::max(a.1, o.1)));
                KeyLimit::sharded(key, per(w) / f64::from(shards), per(r) / f64::from(shards), shards, hottest)
            } else {
                KeyLimit::new(key, hottest.0, hottest.1)
            };
            let cached_rru = if config_cached { s.cached_rru } else { 0.0 };
            let limit = limit.with_cached(cached_rru, s.state_wru, deliveries);
            (s.scope, limit)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage() -> Usage {
        let mut ledger = Ledger { rru: 4.0, table_wru: 3.0, sqs: 3.0, ..Ledger::default() };
        ledger.index_wru.insert("gsi1".into(), 2.0);
        let mut lambda = BTreeMap::new();
        lambda.insert("events-publish".into(), LambdaUse { invocations: 1.0, billed_ms: 10.0, memory_mb: 128.0 });
        lambda.insert("dispatcher".into(), LambdaUse { invocations: 1.0, billed_ms: 30.0, memory_mb: 256.0 });
        Usage {
            deliveries: 1.0,
            api_requests: 1.0,
            lambda,
            ledger,
            log_bytes: 1100.0,
            platform_log_bytes_per_invocation: 350.0,
            access_log_bytes: 200.0,
            log_retention_days: 30.4375,
            data_out_bytes: 2000.0,
            stored_bytes: 3000.0,
            retention_days: 30.4375,
            pitr: true,
        }
    }

    #[test]
    fn every_line_is_priced_from_its_units() {
        let lines = bill(&usage(), Arch::X86_64);
        let usd = |item: &str| lines.iter().find(|l| l.item == item).unwrap().usd;
        assert!((usd("API Gateway HTTP API") - 1e-6).abs() < 1e-15);
        assert!((usd("Lambda requests") - 0.4e-6).abs() < 1e-15);
        // 0.01 s × 0.125 GB + 0.03 s × 0.25 GB = 0.00875 GB-s
        assert!((usd("Lambda duration") - 0.00875 * LAMBDA_X86_GB_S_USD).abs() < 1e-15);
        assert!((usd("DynamoDB writes, indexes") - 2.0 * 0.625e-6).abs() < 1e-15);
        assert!((usd("DynamoDB reads") - 0.5e-6).abs() < 1e-15);
        // 1100 B logged + 2 invocations × 350 B of platform lines + 200 B of access log: 2000 B × $0.50/GB
        assert!((usd("CloudWatch Logs ingestion") - 2000.0 / 1e9 * 0.5).abs() < 1e-15);
        // kept a full month: 2000 B × $0.03/GB-month
        assert!((usd("CloudWatch Logs storage") - 2000.0 / 1e9 * 0.03).abs() < 1e-15);
        // a full month of retention: 3000 B × $0.25/GB-month
        assert!((usd("DynamoDB storage") - 3000.0 / 1e9 * 0.25).abs() < 1e-15);
        assert!((usd("Data transfer out") - 2000.0 / 1e9 * 0.09).abs() < 1e-15);
    }

    #[test]
    fn an_access_log_line_is_its_format_with_each_variable_as_long_as_api_gateway_writes_it() {
        let format = r#"{"requestId":"$context.requestId","routeKey":"$context.routeKey","status":"$context.status","len":"$context.responseLength","x":"$context.somethingElse"}"#;
        let line = r#"{"requestId":"KpB0ljVxIAMEb9Q=","routeKey":"POST /v1/events","status":"202","len":"61","x":"0123456789abcdef"}"#;
        assert_eq!(access_log_line_bytes(format, "POST /v1/events", 202, 61), line.len() + 1);
        assert_eq!(access_log_line_bytes("no variables", "", 200, 0), "no variables".len() + 1);
    }

    #[test]
    fn platform_lines_are_billed_unless_the_system_log_level_is_warn() {
        assert_eq!(platform_log_bytes(Some("WARN")), 0.0);
        assert_eq!(platform_log_bytes(Some("INFO")), LAMBDA_PLATFORM_LOG_BYTES);
        assert_eq!(platform_log_bytes(None), LAMBDA_PLATFORM_LOG_BYTES);
    }

    #[test]
    fn subscription_state_writes_bound_containers_not_deliveries() {
        // 20 deliveries wrote 3 WRU on the key, 1 of them the subscription's last delivery.
        let k = KeyLimit::new("t: ACCT#{acct}".into(), 3.0 / 20.0, 0.0).with_cached(0.0, 1.0, 20.0);
        assert!((k.wru_per_delivery - 0.1).abs() < 1e-12);
        assert!((k.at_limit - 10_000.0).abs() < 1e-6);
        // Once a minute per container: 500 WCU/s × 60 s / 1 WRU.
        assert!((k.containers_at_half_write(60.0) - 30_000.0).abs() < 1e-6);
        // 10% failing once, 2 WRU of state per failed attempt: 0.4 WRU per delivery.
        assert!((state_wru_when_failing(2.0, 0.1) - 0.4).abs() < 1e-12);
    }

    #[test]
    fn arm64_is_cheaper_only_in_duration() {
        let u = usage();
        let gap = per_million(&u, Arch::X86_64) - per_million(&u, Arch::Arm64);
        assert!((gap - 0.00875 * (LAMBDA_X86_GB_S_USD - LAMBDA_ARM_GB_S_USD) * 1e6).abs() < 1e-9);
    }

    #[test]
    fn per_million_divides_by_deliveries() {
        let mut u = usage();
        let one = per_million(&u, Arch::Arm64);
        u.deliveries = 10.0;
        assert!((per_million(&u, Arch::Arm64) - one / 10.0).abs() < 1e-12);
    }

    #[test]
    fn idle_pollers_make_about_650_thousand_receives_a_month() {
        let r = idle_receives_per_month();
        assert!((650_000.0..660_000.0).contains(&r), "{r}");
        let f =
            Fixed { esm_queues: 2.0, idle_receives_per_queue_month: r, secrets: 1.0, alarms: 1.0, ..Fixed::default() };
        let t = total(&fixed_lines(&f, Arch::X86_64));
        assert!((t - (2.0 * r * 0.4e-6 + 0.40 + 0.10)).abs() < 1e-9, "{t}");
    }

    #[test]
    fn key_shapes_name_the_owner() {
        let ev = vec!["evt-1".to_owned()];
        assert_eq!(key_shape("ACCT#acct_01JABCDEFGHJKMNPQRSTVWXYZ0", &ev), ("ACCT#{acct}".into(), Scope::Account));
        assert_eq!(
            key_shape("SUB#sub_01JABCDEFGHJKMNPQRSTVWXYZ0#7", &ev),
            ("SUB#{sub}#{n}".into(), Scope::Subscription)
        );
        assert_eq!(key_shape("EVT#acct_01JABCDEFGHJKMNPQRSTVWXYZ0#evt-1", &ev).1, Scope::Item);
        assert_eq!(key_shape("APIKEY#0123456789abcdef0123456789abcdef", &ev).0, "APIKEY#{hash}");
    }

    #[test]
    fn partition_keys_take_the_hottest_value_of_each_shape_per_delivery() {
        use crate::ledger::Load;
        let mut keys = BTreeMap::new();
        keys.insert(
            ("t".to_owned(), "ACCT#acct_01JABCDEFGHJKMNPQRSTVWXYZ0".to_owned()),
            Load { wru: 40.0, rru: 10.0, ..Load::default() },
        );
        keys.insert(("due".to_owned(), "DUE#3".to_owned()), Load { wru: 4.0, rru: 0.0, ..Load::default() });
        keys.insert(("due".to_owned(), "DUE#4".to_owned()), Load { wru: 6.0, rru: 0.0, ..Load::default() });
        let p = partition_keys(&keys, 10.0, &[], true);
        let due = p.iter().find(|(_, k)| k.key == "due: DUE#{n}").unwrap();
        // Sharded: the 10 WRU of all its shards over the shard count; the sample's hottest is 0.6.
        assert_eq!(due.1.wru_per_delivery, 1.0 / f64::from(puck_aws::dynamo::DUE_SHARDS));
        assert_eq!(due.1.sample_hottest, (0.6, 0.0));
        let acct = p.iter().find(|(_, k)| k.key.starts_with("t:")).unwrap();
        assert_eq!((acct.0, acct.1.wru_per_delivery, acct.1.at_limit), (Scope::Account, 4.0, 250.0));
    }

    #[test]
    fn cached_configuration_reads_bound_containers_not_deliveries() {
        use crate::ledger::Load;
        let mut keys = BTreeMap::new();
        // 20 deliveries: 2 WRU of the account key, and 6 RRU of which 5 were cache misses.
        keys.insert(
            ("t".to_owned(), "ACCT#acct_01JABCDEFGHJKMNPQRSTVWXYZ0".to_owned()),
            Load { wru: 2.0, rru: 6.0, cached_rru: 5.0, ..Load::default() },
        );
        let p = partition_keys(&keys, 20.0, &[], true);
        let k = &p[0].1;
        assert!((k.rru_per_delivery - 0.05).abs() < 1e-12, "{k:?}");
        assert_eq!(k.at_limit, 1000.0 / 0.1);
        // Half of 3,000 RCU/s, refreshed every 5 s at 5 RRU a refresh: 1,500 containers.
        assert!((k.containers_at_half(5.0) - 1500.0).abs() < 1e-9);
    }

    #[test]
    fn a_sharded_key_takes_its_owners_units_over_the_shard_count() {
        use crate::ledger::Load;
        let acct = "ACCT#acct_01JABCDEFGHJKMNPQRSTVWXYZ0";
        let mut keys = BTreeMap::new();
        // 10 deliveries of one account over 3 of its log shards: 30 WRU, the hottest shard 16.
        for (shard, wru) in [(3, 16.0), (17, 8.0), (40, 6.0)] {
            keys.insert(("t".to_owned(), format!("{acct}#D{shard}")), Load { wru, rru: wru / 2.0, ..Load::default() });
        }
        // The subscription's index shards, and an unsharded key of the same account.
        keys.insert(
            ("by_sub".to_owned(), "SUB#sub_01JABCDEFGHJKMNPQRSTVWXYZ0#5".to_owned()),
            Load { wru: 20.0, rru: 0.0, ..Load::default() },
        );
        keys.insert(("t".to_owned(), acct.to_owned()), Load { wru: 0.0, rru: 10.0, ..Load::default() });
        let p = partition_keys(&keys, 10.0, &[], true);
        let find = |k: &str| p.iter().find(|(_, l)| l.key == k).unwrap_or_else(|| panic!("{k} in {p:?}")).clone();
        let (scope, log) = find("t: ACCT#{acct}#D{n}");
        let shards = puck_aws::dynamo::LOG_SHARDS;
        assert_eq!((scope, log.shards), (Scope::Account, shards));
        assert!((log.wru_per_delivery - 3.0 / f64::from(shards)).abs() < 1e-12, "{log:?}");
        assert!((log.rru_per_delivery - 1.5 / f64::from(shards)).abs() < 1e-12, "{log:?}");
        assert_eq!(log.sample_hottest, (1.6, 0.8));
        assert!((log.at_limit - 1000.0 * f64::from(shards) / 3.0).abs() < 1e-6);
        let (scope, sub) = find("by_sub: SUB#{sub}#{n}");
        assert_eq!((scope, sub.shards), (Scope::Subscription, puck_aws::dynamo::SUB_SHARDS));
        assert!((sub.wru_per_delivery - 2.0 / f64::from(sub.shards)).abs() < 1e-12);
        let (_, plain) = find("t: ACCT#{acct}");
        assert_eq!((plain.shards, plain.rru_per_delivery, plain.sample_hottest), (1, 1.0, (0.0, 1.0)));
        assert_eq!(shard_count("DUE#{n}"), puck_aws::dynamo::DUE_SHARDS);
    }

    #[test]
    fn the_ceiling_is_the_tightest_key() {
        let keys =
            vec![KeyLimit::new("t: ACCT#{acct}".into(), 4.0, 1.0), KeyLimit::new("gsi1: SUB#{sub}".into(), 0.5, 6.0)];
        assert_eq!(keys[0].at_limit, 250.0);
        assert_eq!(keys[1].at_limit, 500.0);
        assert_eq!(ceiling(&keys), 250.0);
        assert_eq!(ceiling(&[]), f64::INFINITY);
    }
}
