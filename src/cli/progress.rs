//! Progress of the CLI: bars on a terminal (indicatif), plain lines otherwise.

use std::collections::HashMap;
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::progress::{ProgressEvent, ProgressSink};

/// Shows each counted piece of work (θ1's buckets, its `GetMetricData` batches, …) as a bar
/// when stderr is a terminal, and every event as a line when it is not (a log file, CI).
pub struct TerminalProgress {
    bars: Option<Bars>,
}

struct Bars {
    multi: MultiProgress,
    by_scope: Mutex<HashMap<String, ProgressBar>>,
    style: ProgressStyle,
}

impl TerminalProgress {
    /// Bars when stderr is a terminal and `quiet` is off; lines otherwise (none when quiet).
    #[must_use]
    pub fn new(quiet: bool) -> Option<Self> {
        if quiet {
            return None;
        }
        let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
        let bars = terminal.then(|| Bars {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            by_scope: Mutex::new(HashMap::new()),
            style: ProgressStyle::with_template("{prefix:>22} [{bar:30}] {pos}/{len} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        });
        Some(Self { bars })
    }
}

fn line(e: &ProgressEvent) -> String {
    match (e.done, e.total) {
        (Some(d), Some(t)) => format!("[{}] {:<12} {:>4}/{:<4} {}", e.phase, e.scope, d, t, e.message),
        _ => format!("[{}] {:<12} {}", e.phase, e.scope, e.message),
    }
}

impl ProgressSink for TerminalProgress {
    fn report(&self, e: &ProgressEvent) {
        let Some(bars) = &self.bars else {
            eprintln!("{}", line(e));
            return;
        };
        let (Some(done), Some(total)) = (e.done, e.total) else {
            let _ = bars.multi.println(line(e));
            return;
        };
        let mut by_scope = bars.by_scope.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let key = format!("{} {}", e.phase, e.scope);
        let bar = by_scope.entry(key.clone()).or_insert_with(|| {
            let bar = bars.multi.add(ProgressBar::new(total));
            bar.set_style(bars.style.clone());
            bar.set_prefix(key);
            bar
        });
        bar.set_length(total);
        bar.set_position(done);
        bar.set_message(e.message.clone());
        if done >= total {
            bar.finish();
        }
    }
}
