//! The results bucket: every output of the fleet, and the state a dead worker must not take
//! with it (claims, leases, apply journals, knowledge bases), with S3's conditional writes.
//!
//! Layout, one bucket:
//!
//! | key | what |
//! |---|---|
//! | `<tenant>/<request>/result.json` | the request's result, written once (`If-None-Match: *`) |
//! | `<tenant>/<request>/…` | its world states and reports |
//! | `.miyabi/claims/<tenant>/<request>.json` | who runs the request, until when |
//! | `.miyabi/leases/<account>.json` | who applies in the account, until when |
//! | `.miyabi/journal/<account>/<seq>.jsonl` | the account's apply journal, one object per append |
//! | `.miyabi/knowledge/<tenant>/<account>.redb` | the tenant's knowledge base of the account |
//!
//! Tenant and request ids are checked ([`super::request`]) so that no key of one tenant can
//! reach another's prefix or the `.miyabi/` state.

use aws_sdk_s3::primitives::ByteStream;

use crate::aws::{AwsError, Layered};

/// One object read: its bytes and its entity tag (for a conditional write over it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    /// The body.
    pub body: Vec<u8>,
    /// The `ETag`, quotes included, as S3 sends it.
    pub etag: String,
}

/// The results bucket, through a layered S3 client (limited, counted, retried).
#[derive(Debug, Clone)]
pub struct ResultsBucket {
    s3: Layered<aws_sdk_s3::Client>,
    bucket: String,
}

/// What a conditional write found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Written {
    /// The object was written; its new entity tag.
    Done(String),
    /// The condition failed: the object exists (create), or changed (replace).
    Lost,
}

impl ResultsBucket {
    /// The bucket `bucket`, through `s3`.
    #[must_use]
    pub fn new(s3: Layered<aws_sdk_s3::Client>, bucket: impl Into<String>) -> Self {
        Self {
            s3,
            bucket: bucket.into(),
        }
    }

    /// The bucket's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.bucket
    }

    /// Reads `key`; `None` when there is no such object.
    ///
    /// # Errors
    /// The typed error of `GetObject`, or of reading its body.
    pub async fn get(&self, key: &str) -> Result<Option<Object>, AwsError> {
        let got = self
            .s3
            .layer
            .call("GetObject", || {
                self.s3.client.get_object().bucket(&self.bucket).key(key).send()
            })
            .await;
        let out = match got {
            Ok(out) => out,
            Err(e) if e.code() == Some("NoSuchKey") => return Ok(None),
            Err(e) => return Err(e),
        };
        let etag = out.e_tag().unwrap_or_default().to_owned();
        let body = out.body.collect().await.map_err(|e| {
            self.s3
                .layer
                .unreadable("GetObject", &format!("the body of {key}: {e}"))
        })?;
        Ok(Some(Object {
            body: body.into_bytes().to_vec(),
            etag,
        }))
    }

    /// Writes `key`, whatever is there.
    ///
    /// # Errors
    /// The typed error of `PutObject`.
    pub async fn put(&self, key: &str, body: Vec<u8>) -> Result<String, AwsError> {
        match self.put_with(key, body, Condition::None).await? {
            Written::Done(etag) => Ok(etag),
            Written::Lost => unreachable!("an unconditional write has no condition to lose"),
        }
    }

    /// Writes `key` only if no object has that key (`If-None-Match: *`): of two writers, one
    /// wins and the other gets [`Written::Lost`].
    ///
    /// # Errors
    /// The typed error of `PutObject`, other than the lost condition.
    pub async fn create(&self, key: &str, body: Vec<u8>) -> Result<Written, AwsError> {
        self.put_with(key, body, Condition::Absent).await
    }

    /// Replaces `key` only if it is still the version `etag` (`If-Match`).
    ///
    /// # Errors
    /// The typed error of `PutObject`, other than the lost condition.
    pub async fn replace(&self, key: &str, body: Vec<u8>, etag: &str) -> Result<Written, AwsError> {
        self.put_with(key, body, Condition::Matches(etag)).await
    }

    async fn put_with(&self, key: &str, body: Vec<u8>, condition: Condition<'_>) -> Result<Written, AwsError> {
        let put = self
            .s3
            .layer
            .call("PutObject", || {
                let mut request = self
                    .s3
                    .client
                    .put_object()
                    .bucket(&self.bucket)
                    .key(key)
                    .body(ByteStream::from(body.clone()));
                match condition {
                    Condition::None => {}
                    Condition::Absent => request = request.if_none_match("*"),
                    Condition::Matches(etag) => request = request.if_match(etag),
                }
                request.send()
            })
            .await;
        match put {
            Ok(out) => Ok(Written::Done(out.e_tag().unwrap_or_default().to_owned())),
            Err(e) if lost_condition(&e) => Ok(Written::Lost),
            // S3 answers an `If-Match` on a key that is gone with 404: the object matched
            // against was deleted (a lease cleared away after it expired).
            Err(e) if matches!(condition, Condition::Matches(_)) && e.code() == Some("NoSuchKey") => Ok(Written::Lost),
            Err(e) => Err(e),
        }
    }

    /// Deletes `key` (nothing there is no error).
    ///
    /// # Errors
    /// The typed error of `DeleteObject`.
    pub async fn delete(&self, key: &str) -> Result<(), AwsError> {
        self.s3
            .layer
            .call("DeleteObject", || {
                self.s3.client.delete_object().bucket(&self.bucket).key(key).send()
            })
            .await
            .map(|_| ())
    }

    /// Deletes `key` only if it is still the version `etag`: [`Written::Lost`] when it changed
    /// or is gone.
    ///
    /// # Errors
    /// The typed error of `DeleteObject`, other than the lost condition.
    pub async fn delete_if(&self, key: &str, etag: &str) -> Result<Written, AwsError> {
        let deleted = self
            .s3
            .layer
            .call("DeleteObject", || {
                self.s3
                    .client
                    .delete_object()
                    .bucket(&self.bucket)
                    .key(key)
                    .if_match(etag)
                    .send()
            })
            .await;
        match deleted {
            Ok(_) => Ok(Written::Done(String::new())),
            Err(e) if lost_condition(&e) || e.code() == Some("NoSuchKey") => Ok(Written::Lost),
            Err(e) => Err(e),
        }
    }

    /// The keys under `prefix`, in S3's (lexicographic) order, every page.
    ///
    /// # Errors
    /// The typed error of the `ListObjectsV2` page that failed.
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>, AwsError> {
        let mut keys = Vec::new();
        self.s3
            .layer
            .pages(
                "ListObjectsV2",
                |token| {
                    self.s3
                        .client
                        .list_objects_v2()
                        .bucket(&self.bucket)
                        .prefix(prefix)
                        .set_continuation_token(token)
                        .send()
                },
                aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Output::next_continuation_token,
                |page| keys.extend(page.contents().iter().filter_map(|o| o.key().map(str::to_owned))),
            )
            .await?;
        Ok(keys)
    }
}

#[derive(Debug, Clone, Copy)]
enum Condition<'a> {
    None,
    Absent,
    Matches(&'a str),
}

/// S3's answers to a conditional request whose condition failed: `PreconditionFailed` (412),
/// and `ConditionalRequestConflict` (409) when another conditional write of the key was in
/// flight.
fn lost_condition(e: &AwsError) -> bool {
    matches!(
        e.code(),
        Some("PreconditionFailed" | "ConditionalRequestConflict" | "HTTP412" | "HTTP409")
    )
}
