//! θ4's apply journal in the results bucket, so that it outlives the worker that wrote it: the
//! worker that takes over the account's lease recovers the interrupted apply.
//!
//! S3 has no append: each append is an object of its own, `<prefix><seq>.jsonl` with a
//! zero-padded sequence number, created with `If-None-Match: *`, so that an append never
//! overwrites another (the account's lease keeps a second writer away; should one slip in, it
//! finds its key taken and stops). Reading lists the prefix and joins the objects in key order.

use async_trait::async_trait;

use super::store::{ResultsBucket, Written};
use crate::phases::deployment::journal::JournalStore;
use crate::{Error, Result};

/// One account's apply journal under `.miyabi/journal/<account>/`.
#[derive(Debug)]
pub struct BucketJournal {
    bucket: ResultsBucket,
    prefix: String,
    /// The next sequence number, once the existing objects were listed.
    next: tokio::sync::Mutex<Option<u64>>,
}

impl BucketJournal {
    /// The journal of `account` in `bucket`.
    #[must_use]
    pub fn new(bucket: ResultsBucket, account: &str) -> Self {
        Self {
            bucket,
            prefix: format!(".miyabi/journal/{account}/"),
            next: tokio::sync::Mutex::new(None),
        }
    }

    fn error(&self, e: impl std::fmt::Display) -> Error {
        Error::Journal {
            location: self.describe(),
            message: e.to_string(),
        }
    }

    /// The journal's objects, oldest first.
    async fn keys(&self) -> Result<Vec<String>> {
        let mut keys = self.bucket.list(&self.prefix).await?;
        keys.retain(|k| self.sequence(k).is_some());
        keys.sort();
        Ok(keys)
    }

    fn sequence(&self, key: &str) -> Option<u64> {
        key.strip_prefix(&self.prefix)?.strip_suffix(".jsonl")?.parse().ok()
    }
}

#[async_trait]
impl JournalStore for BucketJournal {
    async fn append(&self, lines: &[u8]) -> Result<()> {
        let mut next = self.next.lock().await;
        let seq = match *next {
            Some(seq) => seq,
            None => self
                .keys()
                .await?
                .iter()
                .filter_map(|k| self.sequence(k))
                .max()
                .map_or(0, |last| last + 1),
        };
        let key = format!("{}{seq:020}.jsonl", self.prefix);
        match self.bucket.create(&key, lines.to_vec()).await? {
            Written::Done(_) => {
                *next = Some(seq + 1);
                Ok(())
            }
            Written::Lost => Err(self.error(format!(
                "{key} was written by another worker: this one no longer holds the account"
            ))),
        }
    }

    async fn load(&self) -> Result<Option<String>> {
        let keys = self.keys().await?;
        if keys.is_empty() {
            return Ok(None);
        }
        let mut text = String::new();
        for key in &keys {
            let object = self.bucket.get(key).await?;
            // Listed, then gone: a clear in between; what is left is read as it is.
            if let Some(object) = object {
                text.push_str(&String::from_utf8(object.body).map_err(|e| self.error(format!("{key}: {e}")))?);
            }
        }
        *self.next.lock().await = keys.iter().filter_map(|k| self.sequence(k)).max().map(|s| s + 1);
        Ok(Some(text))
    }

    async fn clear(&self) -> Result<()> {
        for key in self.keys().await? {
            self.bucket.delete(&key).await?;
        }
        Ok(())
    }

    fn describe(&self) -> String {
        format!("s3://{}/{}", self.bucket.name(), self.prefix)
    }
}
