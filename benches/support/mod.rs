//! What the benches share: their command-line flags, the process's CPU and memory from /proc,
//! and progress lines on stderr. Each bench uses part of it.
#![allow(dead_code)]

use miyabi_aws::progress::{ProgressEvent, ProgressSink};

/// The value after `--name` on the command line.
pub fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

/// The number after `name`, or `default`.
pub fn number(name: &str, default: u64) -> u64 {
    arg(name).and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// CPU seconds (user + sys) of this process and of its reaped children so far, and this
/// process's peak RSS in MiB, from /proc.
pub fn usage() -> (f64, f64, f64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<f64> = stat
        .rsplit(')')
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .map(|v| v.parse().unwrap_or(0.0))
        .collect();
    let ticks = 100.0; // USER_HZ on Linux
    let field = |i: usize| fields.get(i).copied().unwrap_or(0.0) / ticks;
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let hwm_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .unwrap_or(0.0);
    (field(11) + field(12), field(13) + field(14), hwm_kib / 1024.0)
}

/// Progress lines on stderr; batch counters only every tenth step.
pub struct StderrProgress;

impl ProgressSink for StderrProgress {
    fn report(&self, e: &ProgressEvent) {
        if e.done.is_none_or(|d| d % 10 == 0 || Some(d) == e.total) {
            eprintln!("  [{}] {} {}", e.phase, e.scope, e.message);
        }
    }
}
