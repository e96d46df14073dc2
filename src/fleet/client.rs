//! The other side of the queue: sending a cycle request, and reading its result.

use aws_sdk_sqs::types::MessageAttributeValue;

use super::request::{CycleRequest, CycleResult, RequestError};
use super::store::ResultsBucket;
use crate::aws::AwsSession;
use crate::Error;

/// Checks `request` as a worker would, then sends it to `queue_url` (in `region`); returns the
/// message id.
///
/// # Errors
/// [`Error::Config`] for a request a worker would not run (nothing is sent), the typed
/// [`AwsError`](crate::aws::AwsError) of `SendMessage` otherwise.
pub async fn submit(
    session: &AwsSession,
    region: &str,
    queue_url: &str,
    request: &CycleRequest,
) -> Result<String, Error> {
    let body = serde_json::to_string(request).map_err(|e| Error::Config(format!("cycle request: {e}")))?;
    CycleRequest::parse(&body).map_err(|e: RequestError| Error::Config(e.to_string()))?;
    let sqs = session.clients(region).await.sqs;
    let tenant = MessageAttributeValue::builder()
        .data_type("String")
        .string_value(&request.tenant_id)
        .build()
        .map_err(|e| Error::Config(e.to_string()))?;
    let sent = sqs
        .layer
        .call("SendMessage", || {
            sqs.client
                .send_message()
                .queue_url(queue_url)
                .message_body(&body)
                .message_attributes("tenant_id", tenant.clone())
                .send()
        })
        .await?;
    Ok(sent.message_id().unwrap_or_default().to_owned())
}

/// The result of request `request_id` of `tenant_id` in `bucket`; `None` while it has none.
///
/// # Errors
/// The typed [`AwsError`](crate::aws::AwsError) of `GetObject`, or [`Error::Config`] for ids a worker would refuse and
/// a `result.json` this build cannot read.
pub async fn result(
    session: &AwsSession,
    region: &str,
    bucket: &str,
    tenant_id: &str,
    request_id: &str,
) -> Result<Option<CycleResult>, Error> {
    for id in [tenant_id, request_id] {
        super::request::check_id(id).map_err(|why| Error::Config(format!("id {why}")))?;
    }
    let bucket = ResultsBucket::new(session.clients(region).await.s3, bucket);
    let key = format!("{tenant_id}/{request_id}/result.json");
    let Some(object) = bucket.get(&key).await.map_err(Error::from)? else {
        return Ok(None);
    };
    serde_json::from_slice(&object.body)
        .map(Some)
        .map_err(|e| Error::Config(format!("s3://{}/{key}: {e}", bucket.name())))
}
