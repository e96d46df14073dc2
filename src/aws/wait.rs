//! The one waiting helper: read until a condition holds, through reads that each go through the
//! call layer (so every poll waits for the limiter and is retried on its own).
//!
//! The SDK's waiters are not used: they would send their polls around the call layer, past the
//! limiter and with a retry policy of their own.

use std::future::Future;
use std::time::{Duration, Instant};

/// How long to wait for a state, and how often to look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitPolicy {
    /// Between two reads.
    pub poll: Duration,
    /// Give up after.
    pub timeout: Duration,
}

impl Default for WaitPolicy {
    /// Every 5 s for up to 10 minutes: an EC2 stop or start takes seconds to a minute, and
    /// the SDK's own waiters, at 15 s, would add most of a poll to each.
    fn default() -> Self {
        Self {
            poll: Duration::from_secs(5),
            timeout: Duration::from_secs(600),
        }
    }
}

/// A wait that did not end as hoped.
#[derive(Debug)]
pub enum WaitError<T, E> {
    /// A read failed (after the call layer's retries).
    Read(E),
    /// The condition did not hold in time; `last` is what the last read found.
    Timeout {
        /// The last value read.
        last: T,
        /// How long it waited.
        after: Duration,
    },
}

/// Reads with `read` every `policy.poll` until `done` accepts what it found, and returns that.
///
/// # Errors
/// [`WaitError::Read`] with the first failed read, [`WaitError::Timeout`] once `policy.timeout`
/// has passed without `done` accepting a read.
pub async fn until<T, E, Fut>(
    policy: WaitPolicy,
    mut read: impl FnMut() -> Fut,
    done: impl Fn(&T) -> bool,
) -> Result<T, WaitError<T, E>>
where
    Fut: Future<Output = Result<T, E>>,
{
    let started = Instant::now();
    loop {
        let found = read().await.map_err(WaitError::Read)?;
        if done(&found) {
            return Ok(found);
        }
        if started.elapsed() >= policy.timeout {
            return Err(WaitError::Timeout {
                last: found,
                after: started.elapsed(),
            });
        }
        tokio::time::sleep(policy.poll).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fast(timeout_ms: u64) -> WaitPolicy {
        WaitPolicy {
            poll: Duration::from_millis(1),
            timeout: Duration::from_millis(timeout_ms),
        }
    }

    #[tokio::test]
    async fn returns_the_first_read_the_condition_accepts() {
        let mut reads = ["pending", "pending", "running", "stopping"].into_iter();
        let got: Result<&str, WaitError<&str, ()>> = until(
            fast(1000),
            || std::future::ready(Ok(reads.next().unwrap_or("gone"))),
            |s| *s == "running",
        )
        .await;
        assert_eq!(got.unwrap(), "running");
        assert_eq!(reads.next(), Some("stopping"), "no read after the one accepted");
    }

    #[tokio::test]
    async fn a_failed_read_ends_the_wait_and_a_timeout_says_what_was_last_seen() {
        let failed: Result<u8, WaitError<u8, &str>> =
            until(fast(1000), || std::future::ready(Err("denied")), |_| true).await;
        assert!(matches!(failed, Err(WaitError::Read("denied"))));
        let timed_out: Result<&str, WaitError<&str, ()>> =
            until(fast(20), || std::future::ready(Ok("stopping")), |s| *s == "stopped").await;
        match timed_out {
            Err(WaitError::Timeout { last, after }) => {
                assert_eq!(last, "stopping");
                assert!(after >= Duration::from_millis(20));
            }
            other => panic!("expected a timeout, got {other:?}"),
        }
    }
}
