//! The all-in bill (docs/benchmarks.md): measured usage of one scenario × AWS list prices, line by line,
//! for x86_64 and arm64; the fixed monthly cost at zero traffic; the partition ceiling.
//!
//! Pure arithmetic on what [`crate::cost_scenarios`] measured (the ledger of the real call log, Lambda
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

/// The key shapes the service hash-shards, and into how many shards (puck-aws's constants): a
/// delivery's shard is a stable hash of its id, so under sustained traffic each shard takes an
/// equal share of its owner's units.
pub const SHARDED_SHAPES: [(&str, u32); 5] = [
    ("ACCT#{acct}#D{n}", puck_aws::dynamo::LOG_SHARDS),
    ("SUB#{sub}#{n}", puck_aws::dynamo::SUB_SHARDS),
    ("DUE#{n}", puck_aws::dynamo::DUE_SHARDS),
    ("PUB#{n}", puck_aws::dynamo::DUE_SHARDS),
    // The publish-rate counter has as many shards as its account's limit needs
    // (`puck_core::limits::counter_shards`): the bench's stack gives the account this limit.
    ("LIMIT#{acct}#{n}", puck_core::limits::counter_shards(MODELED_PUBLISH_PER_SECOND, 1)),
];

/// The account publish limit (`ACCOUNT_PUBLISH_PER_SECOND`) the bench's stack runs with: the
/// rate the partition model's account goal asks about (10,000 deliveries a second at 1 → 1), so
/// the publish counter has the shards that rate gets. The template's default is 1,000.
pub const MODELED_PUBLISH_PER_SECOND: u32 = 10_000;

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
mod tests;
