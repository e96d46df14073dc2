//! What the CLI lets a harness plug into the loop without linking to it: a command run after a
//! phase, and a clock read from a file.
//!
//! The demo uses both: after θ4 applied changes, a test-kit command publishes the metrics the
//! changed estate would produce and moves the simulated clock, which it writes to the file
//! the next θ1 reads "now" from. A user can run any command the same way (a notification, an
//! export), on the system clock.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::clock::Clock;
use crate::cycle::{CycleContext, CycleHook, PhaseId, PhaseOutcome};
use crate::{Error, Result};

/// Runs `command` through `sh -c` after every successful run of `phase`. It gets the
/// iteration and the phase's outcome in `MIYABI_PHASE`, `MIYABI_ITERATION`,
/// `MIYABI_APPLICABLE` and `MIYABI_APPLIED` (empty when the phase does not count it), and the
/// output folder in `MIYABI_OUT`. A non-zero exit stops the loop.
#[derive(Debug, Clone)]
pub struct CommandHook {
    phase: PhaseId,
    command: String,
}

impl CommandHook {
    /// Parses `PHASE=COMMAND`, for example `deployment=./notify.sh`.
    ///
    /// # Errors
    /// [`Error::Config`] when the phase is unknown or the command empty.
    pub fn parse(spec: &str) -> Result<Self> {
        let (phase, command) = spec
            .split_once('=')
            .ok_or_else(|| Error::Config(format!("--hook-after {spec:?}: expected PHASE=COMMAND")))?;
        let phase = PhaseId::from_name(phase.trim()).ok_or_else(|| {
            Error::Config(format!(
                "--hook-after {spec:?}: unknown phase {phase:?} (discovery, planning, optimization, deployment, monitoring, learning)"
            ))
        })?;
        if command.trim().is_empty() {
            return Err(Error::Config(format!("--hook-after {spec:?}: the command is empty")));
        }
        Ok(Self {
            phase,
            command: command.to_owned(),
        })
    }
}

#[async_trait]
impl CycleHook for CommandHook {
    async fn after(&self, phase: PhaseId, outcome: &PhaseOutcome, ctx: &mut CycleContext) -> Result<()> {
        if phase != self.phase {
            return Ok(());
        }
        let count = |n: Option<usize>| n.map(|n| n.to_string()).unwrap_or_default();
        let status = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(&self.command)
            .env("MIYABI_PHASE", phase.name())
            .env("MIYABI_ITERATION", ctx.iteration().to_string())
            .env("MIYABI_APPLICABLE", count(outcome.applicable))
            .env("MIYABI_APPLIED", count(outcome.applied))
            .env("MIYABI_OUT", ctx.output.dir().unwrap_or(Path::new("")))
            .kill_on_drop(true)
            .status()
            .await;
        let failure = match status {
            Ok(s) if s.success() => return Ok(()),
            Ok(s) => format!("`{}` exited with {s}", self.command),
            Err(e) => format!("`{}` could not start: {e}", self.command),
        };
        Err(Error::Hook {
            hook: format!("after {phase}"),
            source: failure.into(),
        })
    }
}

/// "Now" read from a file holding Unix seconds or an RFC 3339 time, re-read on every call so
/// that a hook can move it between phases.
#[derive(Debug)]
pub struct FileClock {
    path: PathBuf,
    last: Mutex<DateTime<Utc>>,
}

impl FileClock {
    /// A clock reading `path`, which must hold a time now.
    ///
    /// # Errors
    /// [`Error::Config`] when the file cannot be read or holds no time.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self> {
        let path = path.into();
        let now = read_time(&path).map_err(Error::Config)?;
        Ok(Self {
            path,
            last: Mutex::new(now),
        })
    }
}

fn read_time(path: &Path) -> std::result::Result<DateTime<Utc>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("clock file {}: {e}", path.display()))?;
    let text = text.trim();
    if let Ok(seconds) = text.parse::<i64>() {
        return DateTime::from_timestamp(seconds, 0)
            .ok_or_else(|| format!("clock file {}: {seconds} is out of range", path.display()));
    }
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            format!(
                "clock file {}: {text:?} is neither Unix seconds nor RFC 3339: {e}",
                path.display()
            )
        })
}

impl Clock for FileClock {
    fn now(&self) -> DateTime<Utc> {
        let mut last = self.last.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match read_time(&self.path) {
            Ok(now) => *last = now,
            // A file being replaced may be missing for an instant: keep the last time read.
            Err(e) => tracing::warn!("{e}; keeping {}", *last),
        }
        *last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hook_spec_names_a_phase_and_a_command() {
        let hook = CommandHook::parse("deployment=echo hi").unwrap();
        assert_eq!(hook.phase, PhaseId::Deployment);
        assert_eq!(hook.command, "echo hi");
        assert!(CommandHook::parse("deploy=echo")
            .unwrap_err()
            .to_string()
            .contains("unknown phase"));
        assert!(CommandHook::parse("learning=")
            .unwrap_err()
            .to_string()
            .contains("empty"));
        assert!(CommandHook::parse("learning")
            .unwrap_err()
            .to_string()
            .contains("PHASE=COMMAND"));
    }

    #[test]
    fn the_file_clock_follows_the_file_and_rejects_garbage() {
        let dir = std::env::temp_dir().join(format!("miyabi-clock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("clock");
        std::fs::write(&path, "3600\n").unwrap();
        let clock = FileClock::open(&path).unwrap();
        assert_eq!(clock.now().timestamp(), 3600);
        std::fs::write(&path, "1970-01-01T02:00:00Z").unwrap();
        assert_eq!(clock.now().timestamp(), 7200);
        std::fs::remove_file(&path).unwrap();
        assert_eq!(clock.now().timestamp(), 7200, "a missing file keeps the last time");
        std::fs::write(&path, "soon").unwrap();
        assert!(FileClock::open(&path)
            .unwrap_err()
            .to_string()
            .contains("neither Unix seconds"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
