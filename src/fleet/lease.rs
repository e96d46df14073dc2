//! Leases: an object in the results bucket that says who holds something until when, taken
//! and renewed with conditional writes, and taken over once it expires.
//!
//! A worker claims a request with one (so that of two workers given the same request id only
//! one runs it) and takes one per account before it applies (so that one applying cycle runs
//! per account). Expiry is judged on the workers' clocks, which AWS keeps within milliseconds
//! of each other; a lease lasts minutes.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::store::{ResultsBucket, Written};
use crate::aws::AwsError;

/// The body of a lease object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Body {
    holder: String,
    /// Unix milliseconds.
    expires_at_ms: u64,
}

/// A lease this process holds.
#[derive(Debug)]
pub struct Lease {
    bucket: ResultsBucket,
    key: String,
    holder: String,
    ttl: Duration,
    etag: tokio::sync::Mutex<String>,
    took_over: Option<String>,
}

/// What an attempt to take a lease found.
#[derive(Debug)]
pub enum Taken {
    /// It is ours.
    Held(Box<Lease>),
    /// Another holder's, live.
    Busy {
        /// Who holds it.
        holder: String,
        /// How long until it expires, unless renewed.
        expires_in: Duration,
    },
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn body(holder: &str, ttl: Duration) -> Vec<u8> {
    let body = Body {
        holder: holder.to_owned(),
        expires_at_ms: now_ms().saturating_add(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX)),
    };
    serde_json::to_vec(&body).unwrap_or_else(|e| unreachable!("a lease body serialises: {e}"))
}

impl Lease {
    /// Takes the lease at `key` for `holder`, for `ttl`: creates it, or takes it over when its
    /// holder let it expire (or is `holder` itself, from an earlier attempt).
    ///
    /// # Errors
    /// The typed error of a read or write of the bucket.
    pub async fn take(bucket: &ResultsBucket, key: &str, holder: &str, ttl: Duration) -> Result<Taken, AwsError> {
        // Each round loses only to a writer that changed the object in between: a few rounds
        // settle any race.
        for _ in 0..8 {
            if let Written::Done(etag) = bucket.create(key, body(holder, ttl)).await? {
                return Ok(Taken::Held(Box::new(Self::held(bucket, key, holder, ttl, etag, None))));
            }
            let Some(current) = bucket.get(key).await? else {
                continue; // released in between
            };
            // A body this build cannot read was not written by a live lease of it: taken over.
            let found: Option<Body> = serde_json::from_slice(&current.body).ok();
            let now = now_ms();
            if let Some(found) = &found {
                if found.holder != holder && found.expires_at_ms > now {
                    return Ok(Taken::Busy {
                        holder: found.holder.clone(),
                        expires_in: Duration::from_millis(found.expires_at_ms - now),
                    });
                }
            }
            if let Written::Done(etag) = bucket.replace(key, body(holder, ttl), &current.etag).await? {
                let previous = found.map(|f| f.holder).filter(|h| h != holder);
                return Ok(Taken::Held(Box::new(Self::held(
                    bucket, key, holder, ttl, etag, previous,
                ))));
            }
        }
        Ok(Taken::Busy {
            holder: "(contended)".to_owned(),
            expires_in: ttl,
        })
    }

    /// The holders of the live leases under `prefix`, one lease per object: the workers
    /// present there. Leases left to expire (their holders died) are deleted on the way.
    ///
    /// # Errors
    /// The typed error of a list or read of the bucket.
    pub async fn live_holders(bucket: &ResultsBucket, prefix: &str) -> Result<Vec<String>, AwsError> {
        let now = now_ms();
        let mut live = Vec::new();
        for key in bucket.list(prefix).await? {
            let Some(object) = bucket.get(&key).await? else {
                continue; // released in between
            };
            match serde_json::from_slice::<Body>(&object.body) {
                Ok(found) if found.expires_at_ms > now => live.push(found.holder),
                // Renewed in between, the delete loses: the next count sees it.
                _ => drop(bucket.delete_if(&key, &object.etag).await?),
            }
        }
        Ok(live)
    }

    fn held(
        bucket: &ResultsBucket,
        key: &str,
        holder: &str,
        ttl: Duration,
        etag: String,
        took_over: Option<String>,
    ) -> Self {
        Self {
            bucket: bucket.clone(),
            key: key.to_owned(),
            holder: holder.to_owned(),
            ttl,
            etag: tokio::sync::Mutex::new(etag),
            took_over,
        }
    }

    /// The holder whose expired lease this one replaced, if any: that holder died or stalled,
    /// and what it left (an apply journal) is this holder's to recover.
    #[must_use]
    pub fn took_over(&self) -> Option<&str> {
        self.took_over.as_deref()
    }

    /// The key.
    #[must_use]
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Extends the lease by its time to live from now. `Ok(false)`: it was lost (another holder
    /// took it over after it expired), and the work under it must stop.
    ///
    /// # Errors
    /// The typed error of the write.
    pub async fn renew(&self) -> Result<bool, AwsError> {
        let mut etag = self.etag.lock().await;
        match self
            .bucket
            .replace(&self.key, body(&self.holder, self.ttl), &etag)
            .await?
        {
            Written::Done(new) => {
                *etag = new;
                Ok(true)
            }
            Written::Lost => Ok(false),
        }
    }

    /// Gives the lease up, unless it was lost meanwhile (then it is the new holder's).
    ///
    /// # Errors
    /// The typed error of the delete.
    pub async fn release(self) -> Result<(), AwsError> {
        let etag = self.etag.into_inner();
        self.bucket.delete_if(&self.key, &etag).await.map(|_| ())
    }
}
