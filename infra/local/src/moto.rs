//! moto, the embedded AWS: a project-local virtualenv and a `moto_server` child on a loopback port.
//!
//! The virtualenv (`<repo>/.venv`) is created on first use, so a fresh clone needs only Python 3.
//! moto is started through a tiny Python wrapper that exits when its parent process goes away:
//! `kill_on_drop` covers orderly shutdown, the wrapper covers a test binary that is killed or a
//! `static` stack whose `Drop` never runs.

use anyhow::{anyhow, bail, Context as _, Result};
use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

/// The project's pinned Python tools (moto, cfn-lint, standardwebhooks): the one place their
/// versions are written, read by `infra/scripts/bootstrap-python.sh`, `local.sh` and this module.
pub const REQUIREMENTS: &str = include_str!("../../scripts/requirements.txt");

/// The moto version the project is tested against: the first line of [`REQUIREMENTS`].
pub const MOTO_REQUIREMENT: &str = first_line(REQUIREMENTS);

const fn first_line(text: &str) -> &str {
    let bytes = text.as_bytes();
    let mut end = 0;
    while end < bytes.len() && bytes[end] != b'\n' {
        end += 1;
    }
    match std::str::from_utf8(bytes.split_at(end).0) {
        Ok(line) => line,
        Err(_) => panic!("requirements.txt is not UTF-8"),
    }
}

/// How long a cold moto start (Python imports) may take before we give up.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(90);

/// Worker threads of each moto. A long-polling `ReceiveMessage` holds one for up to a second, so
/// there must be more than the pollers of a load run (8 per queue) plus the functions' calls.
const MOTO_THREADS: usize = 32;

/// Loaded into every moto: the patches the file's header lists, each with why it is there.
const PATCHES: &str = include_str!("moto_patches.py");

/// Runs moto's WSGI app (the one `moto_server` runs) under waitress instead of werkzeug's dev
/// server: werkzeug answers every request with `Connection: close`, so each SDK call paid a new
/// TCP connection (about a third of the stack's CPU under load); waitress keeps HTTP/1.1
/// connections alive. Per-request access logging is off; [`PATCHES`] is applied. Exits when its
/// parent goes away.
const WRAPPER: &str = r#"
import logging, os, sys, threading, time
parent = os.getppid()
def watch():
    while True:
        if os.getppid() != parent:
            os._exit(0)
        time.sleep(0.5)
threading.Thread(target=watch, daemon=True).start()
host, port, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
os.environ.setdefault("MOTO_PORT", port)
logging.getLogger("werkzeug").setLevel(logging.ERROR)
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
import waitress
exec(sys.argv[4])
app = DomainDispatcherApplication(create_backend_app)
waitress.serve(app, host=host, port=int(port), threads=threads, connection_limit=1000,
               channel_timeout=300, asyncore_use_poll=True, ident=None, _quiet=True)
"#;

/// The repository root: `PUCK_REPO_ROOT`, else the nearest ancestor of the current directory
/// holding `template.yaml`, else the root this crate was compiled in.
pub fn repo_root() -> PathBuf {
    if let Some(root) = std::env::var_os("PUCK_REPO_ROOT") {
        return PathBuf::from(root);
    }
    if let Ok(cwd) = std::env::current_dir() {
        if let Some(found) =
            cwd.ancestors().find(|d| d.join("template.yaml").is_file() && d.join("Cargo.toml").is_file())
        {
            return found.to_path_buf();
        }
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap_or_else(|_| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")))
}

/// Serialises venv bootstrapping between stacks started concurrently in one process.
static BOOTSTRAP: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Makes sure `<root>/.venv` exists with moto installed; returns its python.
pub async fn ensure_venv(root: &Path) -> Result<PathBuf> {
    let _guard = BOOTSTRAP.lock().await;
    let venv = root.join(".venv");
    let python = venv.join("bin/python");
    // waitress (the server moto runs under) came after moto: a venv without it is reinstalled.
    let has_moto = venv.join("bin/moto_server").is_file() && venv.join("bin/waitress-serve").is_file();
    if has_moto {
        return Ok(python);
    }
    if !python.is_file() {
        tracing::info!(venv = %venv.display(), "creating the project virtualenv (first run)");
        run(Command::new("python3").arg("-m").arg("venv").arg(&venv), "python3 -m venv .venv").await?;
    }
    tracing::info!(requirement = MOTO_REQUIREMENT, "installing moto into the project virtualenv");
    let requirements = venv.join("requirements.txt");
    tokio::fs::write(&requirements, REQUIREMENTS).await.context("Failed to write the virtualenv's requirements.txt")?;
    run(
        // `python -m pip`, not `bin/pip`: a copied venv's pip script may point at another venv.
        Command::new(&python).args(["-m", "pip", "install", "--quiet", "-r"]).arg(&requirements),
        "pip install -r requirements.txt",
    )
    .await?;
    Ok(python)
}

async fn run(cmd: &mut Command, what: &str) -> Result<()> {
    let out = cmd.output().await.with_context(|| format!("Failed to run {what}"))?;
    if !out.status.success() {
        bail!("{what} failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

/// A free loopback port (bound then released; a race with another process is possible but rare).
pub fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("Failed to find a free port")?;
    Ok(listener.local_addr()?.port())
}

/// A running moto server. Dropping it kills the child.
#[derive(Debug)]
pub struct Moto {
    /// `http://127.0.0.1:<port>`: pass as `AWS_ENDPOINT_URL`.
    pub endpoint: String,
    child: Child,
}

impl Moto {
    /// Bootstraps the venv if needed, starts moto on a free loopback port and waits until it answers.
    pub async fn start() -> Result<Self> {
        Self::start_with(PATCHES).await
    }

    /// [`Moto::start`] with the given patches in place of [`PATCHES`] (the tests fake a moto
    /// version this way). Exits with moto's last stderr lines when it dies during startup.
    async fn start_with(patches: &str) -> Result<Self> {
        let python = ensure_venv(&repo_root()).await?;
        let port = free_port()?;
        let mut child = Command::new(&python)
            .arg("-c")
            .arg(WRAPPER)
            .args(["127.0.0.1", &port.to_string(), &MOTO_THREADS.to_string(), patches])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("Failed to start moto with {}", python.display()))?;
        let stderr = StderrTail::drain(child.stderr.take())?;
        let endpoint = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        loop {
            if let Some(status) = child.try_wait()? {
                bail!("moto exited during startup ({status}): {}", stderr.wait_for_end());
            }
            if answers(port).await {
                break;
            }
            if started.elapsed() > STARTUP_TIMEOUT {
                bail!("moto did not answer on {endpoint} within {STARTUP_TIMEOUT:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tracing::info!(endpoint = endpoint.as_str(), pid = child.id(), "moto is up");
        Ok(Self { endpoint, child })
    }

    /// The moto process id (for CPU accounting by the benchmark and the load command).
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Stops moto now (also done on drop).
    pub async fn stop(mut self) -> Result<()> {
        self.child.kill().await.map_err(|e| anyhow!("Failed to stop moto: {e}"))
    }
}

/// The last lines a moto wrote to stderr, so a failed start says why (the patches refusing another
/// moto version, a missing module). Read on a thread of its own, not a task: a moto shared by a
/// test binary outlives the runtime that started it, and an unread pipe would block it once full.
#[derive(Debug, Default)]
struct StderrTail {
    lines: Arc<Mutex<VecDeque<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl StderrTail {
    /// Lines kept: a Python traceback's end, where the exception is.
    const LINES: usize = 20;

    fn drain(stderr: Option<tokio::process::ChildStderr>) -> Result<Self> {
        let mut tail = Self::default();
        let Some(stderr) = stderr else { return Ok(tail) };
        let file = std::fs::File::from(stderr.into_owned_fd().context("moto's stderr")?);
        let lines = tail.lines.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(file).lines().map_while(Result::ok) {
                let mut kept = lines.lock().unwrap_or_else(|e| e.into_inner());
                if kept.len() == Self::LINES {
                    kept.pop_front();
                }
                kept.push_back(line);
            }
        });
        tail.reader = Some(reader);
        Ok(tail)
    }

    /// After the process exited: everything it wrote last, once the pipe is read to its end.
    fn wait_for_end(self) -> String {
        if let Some(reader) = self.reader {
            let _ = reader.join();
        }
        let kept = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        if kept.is_empty() {
            "nothing on stderr".to_owned()
        } else {
            kept.iter().cloned().collect::<Vec<_>>().join("\n")
        }
    }
}

/// Where each AWS service the stack uses is served. moto serves every service on every port, but
/// each process keeps its own state, so a resource lives only at its service's endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceEndpoints {
    pub dynamodb: String,
    pub sqs: String,
    pub secrets_manager: String,
}

impl ServiceEndpoints {
    /// Every service at one endpoint (one moto, LocalStack).
    pub fn all(endpoint: &str) -> Self {
        Self { dynamodb: endpoint.to_owned(), sqs: endpoint.to_owned(), secrets_manager: endpoint.to_owned() }
    }
}

/// One moto per AWS service. moto handles one request at a time (the GIL), so one process per
/// service lets DynamoDB, SQS and Secrets Manager calls run on separate cores: the load command
/// and `puck-local` use this; the tests share one [`Moto`] per test binary.
#[derive(Debug)]
pub struct MotoServices {
    pub dynamodb: Moto,
    pub sqs: Moto,
    pub secrets_manager: Moto,
}

impl MotoServices {
    /// Starts the three servers at once.
    pub async fn start() -> Result<Self> {
        // One bootstrap first, so three starts do not each find the venv missing.
        ensure_venv(&repo_root()).await?;
        let (dynamodb, sqs, secrets_manager) = tokio::try_join!(Moto::start(), Moto::start(), Moto::start())?;
        Ok(Self { dynamodb, sqs, secrets_manager })
    }

    /// The three endpoints, for [`crate::StackOptions::service_endpoints`].
    pub fn endpoints(&self) -> ServiceEndpoints {
        ServiceEndpoints {
            dynamodb: self.dynamodb.endpoint.clone(),
            sqs: self.sqs.endpoint.clone(),
            secrets_manager: self.secrets_manager.endpoint.clone(),
        }
    }

    /// Process ids (for CPU accounting), DynamoDB, SQS, Secrets Manager.
    pub fn pids(&self) -> [Option<u32>; 3] {
        [self.dynamodb.pid(), self.sqs.pid(), self.secrets_manager.pid()]
    }

    /// Stops all three (also done on drop).
    pub async fn stop(self) -> Result<()> {
        self.dynamodb.stop().await?;
        self.sqs.stop().await?;
        self.secrets_manager.stop().await
    }
}

/// Whether an HTTP server answers on the port (moto's dashboard path answers any GET).
async fn answers(port: u16) -> bool {
    let attempt = async {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.ok()?;
        stream.write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n").await.ok()?;
        let mut buf = [0u8; 12];
        stream.read_exact(&mut buf).await.ok()?;
        Some(buf.starts_with(b"HTTP/"))
    };
    tokio::time::timeout(Duration::from_secs(2), attempt).await.ok().flatten().unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moto_requirement_is_the_pinned_first_line_of_requirements_txt() {
        assert!(MOTO_REQUIREMENT.starts_with("moto[server]=="), "{MOTO_REQUIREMENT}");
        assert_eq!(REQUIREMENTS.lines().next(), Some(MOTO_REQUIREMENT));
    }

    fn pinned_version() -> &'static str {
        MOTO_REQUIREMENT.strip_prefix("moto[server]==").expect("an exact pin")
    }

    #[test]
    fn moto_patches_are_written_for_the_pinned_moto() {
        let declared = PATCHES
            .lines()
            .find_map(|l| l.strip_prefix("MOTO_VERSION = \""))
            .and_then(|rest| rest.strip_suffix('"'))
            .expect("moto_patches.py declares MOTO_VERSION");
        assert_eq!(declared, pinned_version(), "move MOTO_VERSION in moto_patches.py with the pin, after re-checking");
    }

    #[tokio::test]
    async fn the_patches_refuse_another_moto_version_and_moto_does_not_start() {
        let faked = format!("import moto\nmoto.__version__ = \"5.0.0\"\n{PATCHES}");
        let err = Moto::start_with(&faked).await.expect_err("moto must not start").to_string();
        let pinned = pinned_version();
        assert!(err.starts_with("moto exited during startup"), "{err}");
        assert!(
            err.contains(&format!(
                "moto_patches.py refuses moto 5.0.0: it replaces private internals of moto {pinned}"
            )),
            "{err}"
        );
        // And with the real version it starts.
        Moto::start_with(PATCHES).await.expect("moto starts").stop().await.unwrap();
    }
}
