//! Cold start, first invocation and peak memory of a Lambda binary, measured by playing the
//! Lambda Runtime API on loopback.
//!
//! Why a fake Runtime API rather than `sam local`: it is the exact interface a `provided.al2023`
//! function talks to, it needs no Docker, and its own overhead is a loopback HTTP round trip, so
//! the timings are the binary's. Each run spawns the binary fresh (a cold start), serves the same
//! event twice (first and warm invocation), then holds the third `GET …/next` open, reads
//! `VmHWM` (peak resident set) from `/proc/<pid>/status` and kills the process.
//!
//! Every AWS call of the function goes through a loopback TCP relay to moto that timestamps the
//! first request and first response bytes, which splits init into "before the first AWS call",
//! "the master-key GetSecretValue round trip" and "after it".

use anyhow::{anyhow, Context as _, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const NEXT: &str = "/2018-06-01/runtime/invocation/next";
const RUN_TIMEOUT: Duration = Duration::from_secs(30);

/// What one cold start produced.
#[derive(Debug, Clone, Default)]
pub struct RunResult {
    /// Spawn → first `GET …/next` (init).
    pub init: Duration,
    /// Spawn → first response POST.
    pub first_response: Option<Duration>,
    /// First invocation: event handed out → response posted.
    pub first_invocation: Option<Duration>,
    /// Second (warm) invocation.
    pub warm_invocation: Option<Duration>,
    /// Spawn → first byte of the first AWS request (None when init made no AWS call).
    pub first_aws_request: Option<Duration>,
    /// Spawn → first byte of its response.
    pub first_aws_response: Option<Duration>,
    /// Peak RSS after the warm invocation, KiB.
    pub vm_hwm_kib: Option<u64>,
    /// `statusCode` of an API Gateway response, or "ok"/"batchItemFailures=n" for workers.
    pub outcome: String,
}

#[derive(Default)]
struct ApiState {
    t0: Option<Instant>,
    nexts: Vec<Instant>,
    responses: Vec<(Instant, Bytes)>,
    errors: Vec<String>,
}

/// Runs `binary` once as a fresh process against a fake Runtime API; `events` are served in order.
pub async fn run_once(
    binary: &Path,
    env: &BTreeMap<String, String>,
    events: &[Value],
    moto: &str,
) -> Result<RunResult> {
    let state = Arc::new(Mutex::new(ApiState::default()));
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let api_addr = listener.local_addr()?;
    let bodies: Arc<Vec<Bytes>> = Arc::new(events.iter().map(|e| Bytes::from(e.to_string())).collect());
    let name = binary.file_name().and_then(|n| n.to_str()).unwrap_or("fn").to_owned();
    let server = {
        let state = state.clone();
        let name = name.clone();
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else { continue };
                let (state, bodies, name) = (state.clone(), bodies.clone(), name.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        handle(req, state.clone(), bodies.clone(), name.clone())
                    });
                    let _ =
                        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tcp), service).await;
                });
            }
        })
    };
    let relay = Relay::start(moto).await?;

    let mut cmd = tokio::process::Command::new(binary);
    cmd.env_clear()
        .envs(env)
        .env("AWS_ENDPOINT_URL", &relay.endpoint)
        .env("AWS_LAMBDA_RUNTIME_API", api_addr.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", &name)
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}"))
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
        .env("AWS_EXECUTION_ENV", "AWS_Lambda_provided.al2023")
        .env("_HANDLER", "bootstrap")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    let t0 = Instant::now();
    state.lock().expect("state").t0 = Some(t0);
    let mut child = cmd.spawn().with_context(|| format!("Failed to start {}", binary.display()))?;
    let pid = child.id().ok_or_else(|| anyhow!("no pid"))?;

    let deadline = t0 + RUN_TIMEOUT;
    let outcome = loop {
        {
            let s = state.lock().expect("state");
            if let Some(e) = s.errors.first() {
                break Err(anyhow!("{name}: {e}"));
            }
            if s.nexts.len() > events.len() {
                break Ok(());
            }
        }
        if let Some(status) = child.try_wait()? {
            break Err(anyhow!("{name} exited early ({status})"));
        }
        if Instant::now() > deadline {
            break Err(anyhow!("{name} did not finish within {RUN_TIMEOUT:?}"));
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    let hwm = read_hwm(pid);
    let _ = child.kill().await;
    server.abort();
    relay.task.abort();
    outcome?;

    let s = state.lock().expect("state");
    let (first_aws_request, first_aws_response) = {
        let r = relay.times.lock().expect("relay");
        (r.0.map(|t| t - t0), r.1.map(|t| t - t0))
    };
    let invocation = |i: usize| s.responses.get(i).and_then(|(at, _)| s.nexts.get(i).map(|n| *at - *n));
    Ok(RunResult {
        init: s.nexts[0] - t0,
        first_response: s.responses.first().map(|(at, _)| *at - t0),
        first_invocation: invocation(0),
        warm_invocation: invocation(1),
        first_aws_request,
        first_aws_response,
        vm_hwm_kib: hwm,
        outcome: s.responses.first().map(|(_, b)| describe(b)).unwrap_or_default(),
    })
}

/// A short description of a response body.
fn describe(body: &Bytes) -> String {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    if let Some(code) = v.get("statusCode") {
        return code.to_string();
    }
    if let Some(f) = v.get("batchItemFailures").and_then(Value::as_array) {
        return if f.is_empty() { "ok".into() } else { format!("{} failed", f.len()) };
    }
    "ok".into()
}

async fn handle(
    req: hyper::Request<hyper::body::Incoming>,
    state: Arc<Mutex<ApiState>>,
    bodies: Arc<Vec<Bytes>>,
    name: String,
) -> Result<hyper::Response<Full<Bytes>>, http::Error> {
    let now = Instant::now();
    let path = req.uri().path().to_owned();
    let reply = |status: u16, body: &'static str| {
        hyper::Response::builder().status(status).body(Full::new(Bytes::from_static(body.as_bytes())))
    };
    if path == NEXT {
        let n = {
            let mut s = state.lock().expect("state");
            s.nexts.push(now);
            s.nexts.len() - 1
        };
        let Some(body) = bodies.get(n).cloned() else {
            // No more events: hold the request like an idle Lambda sandbox.
            std::future::pending::<()>().await;
            return reply(500, "");
        };
        let deadline_ms =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_millis() + 30_000;
        return hyper::Response::builder()
            .status(200)
            .header("lambda-runtime-aws-request-id", format!("req-{n}"))
            .header("lambda-runtime-deadline-ms", deadline_ms.to_string())
            .header(
                "lambda-runtime-invoked-function-arn",
                format!("arn:aws:lambda:us-east-1:123456789012:function:{name}"),
            )
            .header("lambda-runtime-trace-id", "Root=1-00000000-000000000000000000000000;Sampled=0")
            .header("content-type", "application/json")
            .body(Full::new(body));
    }
    let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let mut s = state.lock().expect("state");
    if path.ends_with("/response") {
        s.responses.push((now, body));
    } else if path.ends_with("/error") {
        s.errors.push(format!("{path}: {}", String::from_utf8_lossy(&body)));
    } else {
        return reply(404, "");
    }
    reply(202, "{\"status\":\"OK\"}")
}

/// `VmHWM` of a process, KiB.
pub fn read_hwm(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find(|l| l.starts_with("VmHWM:"))?.split_whitespace().nth(1)?.parse().ok()
}

/// A loopback TCP relay to moto that timestamps the first request and response bytes.
struct Relay {
    endpoint: String,
    times: Arc<Mutex<(Option<Instant>, Option<Instant>)>>,
    task: tokio::task::JoinHandle<()>,
}

impl Relay {
    async fn start(moto: &str) -> Result<Self> {
        let target = moto.trim_start_matches("http://").trim_end_matches('/').to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let endpoint = format!("http://{}", listener.local_addr()?);
        let times: Arc<Mutex<(Option<Instant>, Option<Instant>)>> = Arc::default();
        let shared = times.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else { continue };
                let (target, times) = (target.clone(), shared.clone());
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(&target).await else { return };
                    let (mut cr, mut cw) = client.into_split();
                    let (mut sr, mut sw) = server.into_split();
                    let up = {
                        let times = times.clone();
                        async move { pump(&mut cr, &mut sw, &times, true).await }
                    };
                    let down = async move { pump(&mut sr, &mut cw, &times, false).await };
                    let _ = tokio::join!(up, down);
                });
            }
        });
        Ok(Self { endpoint, times, task })
    }
}

async fn pump<R: AsyncReadExt + Unpin, W: AsyncWriteExt + Unpin>(
    from: &mut R,
    to: &mut W,
    times: &Mutex<(Option<Instant>, Option<Instant>)>,
    upstream: bool,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        {
            let mut t = times.lock().expect("relay");
            let now = Instant::now();
            if upstream {
                t.0.get_or_insert(now);
            } else if t.0.is_some() {
                t.1.get_or_insert(now);
            }
        }
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}
