//! [`TestStack`]: one local stack per test, and [`ApiClient`], a tiny JSON client for its API.
//!
//! Every stack gets a unique resource prefix (its own table, queues and master key in the shared
//! moto) and an ephemeral API port, so tests run in parallel without seeing each other's data.

use crate::receiver::test_ca_pem_path;
use puck_aws::faults::FaultSwitches;
use puck_core::ids::AccountId;
use puck_core::model::Scope;
use puck_core::services::Context;
use puck_local::{LocalStack, StackOptions};
use reqwest::header::HeaderMap;
use reqwest::Method;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// What every API call returns: status, body as JSON (`Null` when empty, a JSON string when the
/// body is not JSON), and the response headers.
pub type ApiResponse = (u16, Value, HeaderMap);

/// How to start a [`TestStack`]. The defaults suit delivery tests on loopback:
///
/// - `EXTRA_CA_CERT=<test CA>` (always) and `ALLOW_PRIVATE_TARGETS=1` (unless
///   [`TestStackOptions::deny_private_targets`]): [`crate::Receiver`]s are HTTPS on 127.0.0.1 with
///   a certificate from the test CA;
/// - `BACKOFF_BASE_SECONDS=1`, `BACKOFF_MAX_SECONDS=4`, so retries come back in seconds;
/// - queue pollers pause 50 ms after an empty receive;
/// - the template's sweeper schedule (1 minute) unless [`TestStackOptions::sweep_interval`].
#[derive(Clone, Debug)]
pub struct TestStackOptions {
    env: BTreeMap<String, String>,
    poll_interval: Duration,
    sweep_interval: Option<Duration>,
    faults: Option<Arc<FaultSwitches>>,
    allow_private_targets: bool,
    visibility_timeout_secs: Option<u32>,
    pollers_per_queue: usize,
}

impl Default for TestStackOptions {
    fn default() -> Self {
        let env = [("BACKOFF_BASE_SECONDS", "1"), ("BACKOFF_MAX_SECONDS", "4")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        Self {
            env,
            poll_interval: Duration::from_millis(50),
            sweep_interval: None,
            faults: None,
            allow_private_targets: true,
            visibility_timeout_secs: None,
            pollers_per_queue: 1,
        }
    }
}

impl TestStackOptions {
    /// Overrides one variable of the functions' environment (over the template's `Globals`).
    pub fn env(mut self, name: &str, value: impl Into<String>) -> Self {
        self.env.insert(name.to_owned(), value.into());
        self
    }

    /// `MAX_DELIVERY_ATTEMPTS`: the dispatcher's limit and, like a deploy with that
    /// `MaxDeliveryAttempts` parameter, the delivery queue's `maxReceiveCount`.
    pub fn max_delivery_attempts(self, n: u32) -> Self {
        self.env("MAX_DELIVERY_ATTEMPTS", n.to_string())
    }

    /// `BACKOFF_BASE_SECONDS` and `BACKOFF_MAX_SECONDS`.
    pub fn backoff(self, base_secs: u32, max_secs: u32) -> Self {
        self.env("BACKOFF_BASE_SECONDS", base_secs.to_string()).env("BACKOFF_MAX_SECONDS", max_secs.to_string())
    }

    /// `DELIVERY_TIMEOUT_SECONDS`, the per-attempt timeout.
    pub fn delivery_timeout_secs(self, secs: u32) -> Self {
        self.env("DELIVERY_TIMEOUT_SECONDS", secs.to_string())
    }

    /// How long queue pollers pause after an empty receive.
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// Runs the scheduled functions (the sweeper) at this period instead of the template's.
    pub fn sweep_interval(mut self, interval: Duration) -> Self {
        self.sweep_interval = Some(interval);
        self
    }

    /// Leaves `ALLOW_PRIVATE_TARGETS` off, as in AWS: for tests of the address checks themselves
    /// (deliveries to a [`crate::Receiver`] are then refused).
    pub fn deny_private_targets(mut self) -> Self {
        self.allow_private_targets = false;
        self
    }

    /// Overrides the delivery queue's `VisibilityTimeout` (template: 180 s), so a message whose
    /// batch failed without a backoff (a dispatcher that died) comes back within seconds.
    pub fn visibility_timeout_secs(mut self, secs: u32) -> Self {
        self.visibility_timeout_secs = Some(secs);
        self
    }

    /// Concurrent pollers per queue (Lambda runs several batches at once); default 1.
    pub fn pollers_per_queue(mut self, n: usize) -> Self {
        self.pollers_per_queue = n;
        self
    }

    /// Fault switches the adapters consult (DynamoDB / SQS outages); keep a clone to flip them.
    pub fn faults(mut self, faults: Arc<FaultSwitches>) -> Self {
        self.faults = Some(faults);
        self
    }
}

/// Another account and a key for it.
#[derive(Debug, Clone)]
pub struct Account {
    pub account_id: AccountId,
    pub api_key: String,
}

/// A running local stack for one test, with the development key (all scopes) at hand.
pub struct TestStack {
    /// The stack itself: `ctx` for direct port calls, `clients` for raw SDK access, names of the
    /// provisioned resources, `run_schedules_now()`.
    pub stack: LocalStack,
    /// The switches passed in [`TestStackOptions::faults`], if any.
    pub faults: Option<Arc<FaultSwitches>>,
    api: ApiClient,
}

impl std::fmt::Debug for TestStack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestStack").field("stack", &self.stack).finish_non_exhaustive()
    }
}

impl TestStack {
    /// Starts a stack against the binary's shared moto (starting moto on first use) and installs
    /// the log capture.
    ///
    /// # Panics
    /// When moto or the stack cannot start.
    pub async fn start(opts: TestStackOptions) -> Self {
        crate::logs::install_log_capture();
        let endpoint = tokio::task::spawn_blocking(crate::moto::endpoint).await.expect("moto start task");
        let mut stack_opts = StackOptions::new(endpoint);
        stack_opts.resource_prefix = puck_local::unique_prefix("e2e");
        stack_opts.env_overrides = opts.env;
        if opts.allow_private_targets {
            stack_opts.env_overrides.insert("ALLOW_PRIVATE_TARGETS".into(), "1".into());
        } else {
            stack_opts.env_overrides.remove("ALLOW_PRIVATE_TARGETS");
        }
        stack_opts.env_overrides.insert("EXTRA_CA_CERT".into(), test_ca_pem_path().to_string_lossy().into_owned());
        stack_opts.poll_interval = opts.poll_interval;
        stack_opts.sweep_interval = opts.sweep_interval;
        stack_opts.faults = opts.faults.clone();
        stack_opts.delivery_visibility_timeout_secs = opts.visibility_timeout_secs;
        stack_opts.pollers_per_queue = opts.pollers_per_queue;
        let stack =
            LocalStack::start(stack_opts).await.unwrap_or_else(|e| panic!("the local stack failed to start: {e:#}"));
        let api = ApiClient::new(&stack.base_url, Some(stack.api_key.clone()));
        Self { stack, faults: opts.faults, api }
    }

    /// A stack with the default options.
    pub async fn start_default() -> Self {
        Self::start(TestStackOptions::default()).await
    }

    /// `http://127.0.0.1:<port>`, no trailing slash.
    pub fn base_url(&self) -> &str {
        &self.stack.base_url
    }

    /// The development key (scopes: all).
    pub fn api_key(&self) -> &str {
        &self.stack.api_key
    }

    /// The development account.
    pub fn account_id(&self) -> &AccountId {
        &self.stack.account_id
    }

    /// The context the stack's functions share (ports, keyring, clock).
    pub fn ctx(&self) -> &Context {
        &self.stack.ctx
    }

    /// `<base_url><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.stack.base_url)
    }

    /// The client authenticated with the development key.
    pub fn api(&self) -> &ApiClient {
        &self.api
    }

    /// A client sending `Authorization: Bearer <key>`.
    pub fn with_key(&self, key: &str) -> ApiClient {
        ApiClient::new(&self.stack.base_url, Some(key.to_owned()))
    }

    /// A client sending no `Authorization` header.
    pub fn anonymous(&self) -> ApiClient {
        ApiClient::new(&self.stack.base_url, None)
    }

    /// Issues a key with `scopes` for `account` (another account, or the dev account with fewer
    /// scopes).
    ///
    /// # Panics
    /// When the key cannot be stored.
    pub async fn issue_key(&self, account: &AccountId, scopes: &[Scope]) -> String {
        self.stack.issue_key(account, scopes).await.unwrap_or_else(|e| panic!("issue a key: {e:#}"))
    }

    /// A fresh account with a key holding `scopes`.
    pub async fn new_account(&self, scopes: &[Scope]) -> Account {
        let account_id = puck_local::keys::new_account_id();
        let api_key = self.issue_key(&account_id, scopes).await;
        Account { account_id, api_key }
    }

    /// Every item of the stack's tables, as one JSON text (what a table dump would reveal).
    pub async fn table_dump(&self) -> String {
        Value::Array(crate::dynamo::scan_all(&self.stack).await).to_string()
    }

    /// `GET path` with the dev key.
    pub async fn get(&self, path: &str) -> ApiResponse {
        self.api.get(path).await
    }

    /// `POST path` with a JSON body (`Value::Null` sends no body) and the dev key.
    pub async fn post(&self, path: &str, body: Value) -> ApiResponse {
        self.api.post(path, body).await
    }

    /// `PATCH path` with a JSON body and the dev key.
    pub async fn patch(&self, path: &str, body: Value) -> ApiResponse {
        self.api.patch(path, body).await
    }

    /// `DELETE path` with the dev key.
    pub async fn delete(&self, path: &str) -> ApiResponse {
        self.api.delete(path).await
    }
}

/// A JSON client for the stack's API with an optional bearer key. Never follows redirects and
/// never uses a proxy.
#[derive(Clone, Debug)]
pub struct ApiClient {
    http: reqwest::Client,
    base_url: String,
    key: Option<String>,
}

impl ApiClient {
    /// A client for `base_url` sending `key` as a bearer token, if given.
    pub fn new(base_url: &str, key: Option<String>) -> Self {
        let http = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(60))
            .build()
            .expect("reqwest client");
        Self { http, base_url: base_url.trim_end_matches('/').to_owned(), key }
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> ApiResponse {
        self.json(Method::GET, path, Value::Null).await
    }

    /// `POST path` with a JSON body (`Value::Null` sends no body).
    pub async fn post(&self, path: &str, body: Value) -> ApiResponse {
        self.json(Method::POST, path, body).await
    }

    /// `PATCH path` with a JSON body.
    pub async fn patch(&self, path: &str, body: Value) -> ApiResponse {
        self.json(Method::PATCH, path, body).await
    }

    /// `DELETE path`.
    pub async fn delete(&self, path: &str) -> ApiResponse {
        self.json(Method::DELETE, path, Value::Null).await
    }

    /// Any method with a JSON body (`Content-Type: application/json`), or none for `Null`.
    pub async fn json(&self, method: Method, path: &str, body: Value) -> ApiResponse {
        let mut req = self.request(method, path);
        if !body.is_null() {
            req = req.json(&body);
        }
        send(req).await
    }

    /// Any method with exactly these extra headers and raw body bytes (no Content-Type unless
    /// given). The bearer key is added when the client has one and `headers` has no
    /// `Authorization`.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Vec<u8>>,
    ) -> ApiResponse {
        let has_auth = headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("authorization"));
        let mut req = if has_auth { self.http.request(method, self.url(path)) } else { self.request(method, path) };
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let body = body.into();
        if !body.is_empty() {
            req = req.body(body);
        }
        send(req).await
    }

    fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base_url)
        }
    }

    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let req = self.http.request(method, self.url(path));
        match &self.key {
            Some(key) => req.bearer_auth(key),
            None => req,
        }
    }
}

async fn send(req: reqwest::RequestBuilder) -> ApiResponse {
    let resp = req.send().await.unwrap_or_else(|e| panic!("request failed: {e}"));
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes = resp.bytes().await.unwrap_or_else(|e| panic!("reading the response body failed: {e}"));
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    (status, body, headers)
}
