//! The one waiting helper: read until a condition holds, through reads that each go through the
//! call layer (so every poll waits for the limiter and is retried on its own).
//!
//! The SDK's waiters are not used: they would send their polls around the call layer, past the
//! limiter and with a retry policy of their own.
//!
//! Many waits on resources of one kind share their reads through [`Coalesced`]: 64 resizes in
//! flight, each polling `DescribeInstances` on its own every 2 s, would ask 32 reads a second of
//! a bucket that allows EC2 20 (10 at the default share), and every precondition read would
//! queue behind the polls.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
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

/// Reads of many resources' states gathered into rounds: a round reads every watched key in one
/// request, and a waiter takes its answer from the first round that started after it asked. N
/// waits cost one read per `spacing`, not N per poll; a key no round has read yet, or a lone
/// wait's, is read at once.
pub struct Coalesced<V> {
    spacing: Duration,
    watched: Mutex<BTreeMap<String, usize>>,
    latest: Mutex<Option<Arc<Round<V>>>>,
    /// Held for a whole round: one round at a time, in the order waiters asked.
    turn: tokio::sync::Mutex<()>,
}

struct Round<V> {
    started: tokio::time::Instant,
    /// The keys it read, sorted: a key it did not read has no answer in it (absent from
    /// `values` means read and not found).
    keys: Vec<String>,
    values: BTreeMap<String, V>,
}

impl<V> Round<V> {
    fn read(&self, key: &str) -> bool {
        self.keys.binary_search_by(|k| k.as_str().cmp(key)).is_ok()
    }
}

impl<V> std::fmt::Debug for Coalesced<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coalesced")
            .field("spacing", &self.spacing)
            .field("watched", &self.watched.lock().map_or(0, |w| w.len()))
            .finish_non_exhaustive()
    }
}

/// A key watched by a [`Coalesced`] reader for as long as this lives.
#[must_use = "the key is watched only while the guard lives"]
pub struct Watching<'a, V> {
    reads: &'a Coalesced<V>,
    key: String,
}

impl<V> Drop for Watching<'_, V> {
    fn drop(&mut self) {
        let mut watched = self.reads.watched.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = watched.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                watched.remove(&self.key);
            }
        }
    }
}

impl<V: Clone> Coalesced<V> {
    /// A reader whose rounds start at least `spacing` apart.
    #[must_use]
    pub fn new(spacing: Duration) -> Self {
        Self {
            spacing,
            watched: Mutex::new(BTreeMap::new()),
            latest: Mutex::new(None),
            turn: tokio::sync::Mutex::new(()),
        }
    }

    /// Adds `key` to every round until the guard is dropped.
    pub fn watch(&self, key: &str) -> Watching<'_, V> {
        *self
            .watched
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(key.to_owned())
            .or_default() += 1;
        Watching {
            reads: self,
            key: key.to_owned(),
        }
    }

    /// The value of `key` as a round that started after this call found it (`None`: the round's
    /// read did not return the key). When no such round has started, this call runs one with
    /// `read`, over every watched key and `key`.
    ///
    /// # Errors
    /// The error of the round this call ran. Waiters that were waiting on a failed round run
    /// their own, in turn.
    pub async fn get<E, Fut>(&self, key: &str, read: impl FnOnce(Vec<String>) -> Fut) -> Result<Option<V>, E>
    where
        Fut: Future<Output = Result<BTreeMap<String, V>, E>>,
    {
        let asked = tokio::time::Instant::now();
        let _turn = self.turn.lock().await;
        let latest = self.latest.lock().unwrap_or_else(PoisonError::into_inner).clone();
        if let Some(round) = &latest {
            // A round that started after the ask answers it, if it read the key: a round run
            // for other waiters before this key was watched did not.
            if round.started >= asked && round.read(key) {
                return Ok(round.values.get(key).cloned());
            }
            // Spacing bounds how often shared rounds read the same keys again. A key the last
            // round did not read (a wait that just began) is read at once, and so is a lone
            // wait's key: its own poll spaces its reads.
            let shared = self.watched.lock().unwrap_or_else(PoisonError::into_inner).len() > 1;
            if shared && round.read(key) {
                tokio::time::sleep_until(round.started + self.spacing).await;
            }
        }
        let mut keys: Vec<String> = self
            .watched
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .cloned()
            .collect();
        if let Err(at) = keys.binary_search_by(|k| k.as_str().cmp(key)) {
            keys.insert(at, key.to_owned());
        }
        let started = tokio::time::Instant::now();
        let values = read(keys.clone()).await?;
        let found = values.get(key).cloned();
        *self.latest.lock().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(Round { started, keys, values }));
        Ok(found)
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

    #[tokio::test]
    async fn a_round_run_for_other_keys_does_not_answer_a_key_it_did_not_read() {
        let reads = Coalesced::<&str>::new(Duration::ZERO);
        let read = |keys: Vec<String>| async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            Ok::<_, ()>(keys.into_iter().map(|k| (k, "running")).collect::<BTreeMap<_, _>>())
        };
        // A round holds the turn; "c" then "b" queue behind it. "c"'s own round starts after
        // "b" asked, and reads "c" only: "b" must not take its answer (it would read "gone").
        let (a, c, b) = tokio::join!(
            reads.get("a", read),
            async {
                tokio::time::sleep(Duration::from_millis(2)).await;
                reads.get("c", read).await
            },
            async {
                tokio::time::sleep(Duration::from_millis(4)).await;
                reads.get("b", read).await
            },
        );
        assert_eq!(
            (a, c, b),
            (Ok(Some("running")), Ok(Some("running")), Ok(Some("running")))
        );
    }

    #[tokio::test]
    async fn many_waits_share_each_round_and_rounds_keep_their_spacing() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let reads = Coalesced::<u32>::new(Duration::from_millis(100));
        let rounds = AtomicUsize::new(0);
        let widest = AtomicUsize::new(0);
        let read = |keys: Vec<String>| {
            rounds.fetch_add(1, Ordering::SeqCst);
            widest.fetch_max(keys.len(), Ordering::SeqCst);
            async move {
                tokio::time::sleep(Duration::from_millis(5)).await;
                Ok::<_, ()>(keys.iter().filter(|k| *k != "gone").map(|k| (k.clone(), 7)).collect())
            }
        };
        let guards: Vec<_> = (0..64).map(|i| reads.watch(&format!("i-{i}"))).collect();
        let started = tokio::time::Instant::now();
        let answers = futures::future::join_all((0..64).map(|i| {
            let key = format!("i-{i}");
            let reads = &reads;
            async move { reads.get(&key, read).await }
        }))
        .await;
        assert!(answers.iter().all(|a| *a == Ok(Some(7))));
        // The first waiter's round starts before the others ask; they share the next one.
        assert_eq!(
            rounds.load(Ordering::SeqCst),
            2,
            "64 waiters asking at once cost two rounds"
        );
        assert_eq!(widest.load(Ordering::SeqCst), 64, "a round reads every watched key");
        assert!(
            started.elapsed() >= Duration::from_millis(100),
            "rounds keep their spacing"
        );
        // A key the read does not return is None.
        assert_eq!(reads.get("gone", read).await, Ok(None));
        assert_eq!(rounds.load(Ordering::SeqCst), 3);
        drop(guards);
        assert!(
            reads.watched.lock().unwrap().is_empty(),
            "dropped guards unwatch their keys"
        );
    }

    #[tokio::test]
    async fn a_failed_round_goes_to_its_runner_and_the_next_waiter_reads_again() {
        let reads = Coalesced::<u32>::new(Duration::from_millis(10));
        let failed = reads
            .get("i-1", |_| async { Err::<BTreeMap<String, u32>, _>("throttled") })
            .await;
        assert_eq!(failed, Err("throttled"));
        let next = reads
            .get("i-1", |keys| async move {
                Ok::<_, &str>(keys.into_iter().map(|k| (k, 1)).collect())
            })
            .await;
        assert_eq!(next, Ok(Some(1)));
    }
}
