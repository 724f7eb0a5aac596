//! moto, the embedded AWS: a project-local virtualenv and a `moto_server` child on a loopback port.
//!
//! The virtualenv (`<repo>/.venv`) is created on first use, so a fresh clone needs only Python 3.
//! moto is started through a tiny Python wrapper that exits when its parent process goes away:
//! `kill_on_drop` covers orderly shutdown, the wrapper covers a test binary that is killed or a
//! `static` stack whose `Drop` never runs.

use anyhow::{anyhow, bail, Context as _, Result};
use std::path::{Path, PathBuf};
use std::process::Stdio;
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

const WRAPPER: &str = r#"
import os, sys, threading, time
parent = os.getppid()
def watch():
    while True:
        if os.getppid() != parent:
            os._exit(0)
        time.sleep(0.5)
threading.Thread(target=watch, daemon=True).start()
from moto.server import main
main(sys.argv[1:])
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
    let has_moto = venv.join("bin/moto_server").is_file();
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
        Command::new(venv.join("bin/pip")).arg("install").arg("--quiet").arg("-r").arg(&requirements),
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
        let python = ensure_venv(&repo_root()).await?;
        let port = free_port()?;
        let mut child = Command::new(&python)
            .arg("-c")
            .arg(WRAPPER)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("Failed to start moto with {}", python.display()))?;
        let endpoint = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        loop {
            if let Some(status) = child.try_wait()? {
                bail!("moto exited during startup ({status})");
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
}
