//! CPU per delivery from `/proc/<pid>/stat` (utime + stime): this process — the in-process API
//! gateway and handlers (publish, dispatch), the event-source-mapping loops, and the test receiver,
//! which shares the process — against moto's Python process.
//!
//! Why /proc and not a profiler: it is the same counter the kernel keeps for any server, so the
//! figure can be held beside other webhook servers run on this machine. It includes the receiver's
//! TLS work, so it is an upper bound of our own CPU.

use std::time::Instant;

/// Clock ticks per second of `/proc/<pid>/stat` (USER_HZ, 100 on Linux).
const TICKS_PER_S: f64 = 100.0;

/// CPU seconds (user + system) of a process, or None when it cannot be read.
pub fn cpu_seconds(pid: &str) -> Option<f64> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// utime + stime (fields 14 and 15) of a `/proc/<pid>/stat` line, in seconds. The command name
/// (field 2) may contain spaces, so fields are counted after its closing parenthesis.
pub fn parse_stat(line: &str) -> Option<f64> {
    let rest = &line[line.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ")": field 3 is fields[0], so utime (14) is fields[11] and stime (15) fields[12].
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / TICKS_PER_S)
}

/// CPU counters at one instant.
#[derive(Debug, Clone)]
pub struct Sample {
    at: Instant,
    ours: Option<f64>,
    moto: Option<f64>,
}

/// CPU spent between two samples.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuFigures {
    pub deliveries: u64,
    pub wall_s: f64,
    /// This process (handlers, ESM loops, receiver), CPU seconds.
    pub ours_s: Option<f64>,
    /// moto's process, CPU seconds.
    pub moto_s: Option<f64>,
}

impl CpuFigures {
    /// Our CPU milliseconds per delivery.
    pub fn ours_ms_per_delivery(&self) -> Option<f64> {
        Some(self.ours_s? * 1000.0 / self.deliveries.max(1) as f64)
    }
    /// moto's CPU milliseconds per delivery.
    pub fn moto_ms_per_delivery(&self) -> Option<f64> {
        Some(self.moto_s? * 1000.0 / self.deliveries.max(1) as f64)
    }
}

impl Sample {
    pub fn now(moto_pid: Option<u32>) -> Self {
        Self { at: Instant::now(), ours: cpu_seconds("self"), moto: moto_pid.and_then(|p| cpu_seconds(&p.to_string())) }
    }

    /// The CPU spent since `start` for `deliveries` deliveries.
    pub fn since(&self, start: &Sample, deliveries: u64) -> CpuFigures {
        let diff = |a: Option<f64>, b: Option<f64>| Some(a? - b?);
        CpuFigures {
            deliveries,
            wall_s: (self.at - start.at).as_secs_f64(),
            ours_s: diff(self.ours, start.ours),
            moto_s: diff(self.moto, start.moto),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        let line = "4242 (tokio runtime) S 1 4242 4242 0 -1 4194560 500 0 0 0 250 130 0 0 20 0 9 0 100 1000 10 18446744073709551615";
        assert_eq!(parse_stat(line), Some(3.8));
    }

    #[test]
    fn this_process_has_a_readable_cpu_counter() {
        assert!(cpu_seconds("self").is_some());
    }
}
