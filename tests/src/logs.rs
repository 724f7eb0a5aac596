//! In-memory log capture, so tests can prove that no secret ever reaches a log line (docs/security.md).
//!
//! [`install_log_capture`] installs (once per test binary) a global `tracing` subscriber that
//! formats every event of our crates at debug and above, and of everything else at info and above
//! (filter `puck=debug,info`), into one shared buffer and nowhere else. [`TestStack::start`]
//! calls it, so every test's stack logs into the same buffer; [`captured_logs`] returns all of
//! it.
//!
//! [`TestStack::start`]: crate::TestStack::start

use std::io::Write;
use std::sync::{Mutex, MutexGuard, Once};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

/// The filter the capture uses: debug for every `puck*` crate, info for the rest.
pub const LOG_FILTER: &str = "puck=debug,info";

static BUFFER: Mutex<Vec<u8>> = Mutex::new(Vec::new());
static INSTALL: Once = Once::new();

fn buffer() -> MutexGuard<'static, Vec<u8>> {
    // A test that panicked while logging must not hide every later test's logs.
    BUFFER.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Writer handed to the subscriber: appends to [`BUFFER`].
#[derive(Clone, Copy, Debug, Default)]
struct Capture;

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        buffer().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Capture {
    type Writer = Capture;

    fn make_writer(&'a self) -> Self::Writer {
        Capture
    }
}

/// Installs the capturing subscriber as the global default; later calls are no-ops.
///
/// # Panics
/// When another global subscriber was installed first: its logs would escape the capture, and a
/// "no secret in the logs" assertion would then prove nothing.
pub fn install_log_capture() {
    INSTALL.call_once(|| {
        tracing_subscriber::fmt()
            .with_env_filter(EnvFilter::new(LOG_FILTER))
            .with_writer(Capture)
            .with_ansi(false)
            .with_target(true)
            .try_init()
            .expect("another tracing subscriber was installed before the e2e log capture");
    });
}

/// Everything logged so far by this test binary (all tests), as text.
pub fn captured_logs() -> String {
    String::from_utf8_lossy(&buffer()).into_owned()
}
