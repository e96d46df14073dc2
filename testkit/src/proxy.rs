//! A recording, fault-injecting HTTP proxy in front of the local emulators.
//!
//! It routes CloudWatch's Smithy RPC v2 CBOR requests to ministack and everything else to moto,
//! so one endpoint serves all four SDK clients. It records every request (service, operation,
//! start and end) and can answer matching requests with each service's own throttling or auth
//! error in its own wire format, or drop them as a dead endpoint would. In its AWS-like mode
//! ([`crate::quota`]) it also adds AWS's latency and throttles as AWS's quotas do.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::ec2_states::{incorrect_state, reported_state, InstanceStates, StateChange, StateTimes, Verdict};
use crate::metric_request::MetricDataRequest;
use crate::quota::{AwsLike, Quotas};

/// One request the proxy saw.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// `ec2`, `s3`, `rds`, `cloudwatch`, `sts`, `sqs`, `organizations`.
    pub service: String,
    /// The operation, for example `DescribeInstances`.
    pub operation: String,
    /// The Region from the request's credential scope.
    pub region: String,
    /// When the request arrived.
    pub started: Instant,
    /// When its answer was complete.
    pub finished: Instant,
    /// The status answered (0 when the connection was dropped).
    pub status: u16,
    /// The fault injected, if any.
    pub fault: Option<Fault>,
    /// True when the AWS-like mode throttled it (its bucket was empty).
    pub over_quota: bool,
    /// The quota category of its request bucket (AWS's documented table, the body read as
    /// AWS reads it), when the service throttles that operation.
    pub category: Option<String>,
    /// For a `GetMetricData` request, its time range and series.
    pub metric_request: Option<Arc<MetricDataRequest>>,
    /// When the emulator behind worked on it (from sending it upstream to the end of the
    /// answer), when it was forwarded: what the emulator, not the proxy's AWS-like delays, cost.
    pub upstream: Option<(Instant, Instant)>,
    /// The request's path (an S3 request's bucket and key).
    pub path: String,
}

/// What to do to a matching request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The service's own throttling error in its wire format.
    Throttle,
    /// The service's own error for credentials it refuses (invalid, expired): nothing the
    /// account holds can be read with them.
    AuthError,
    /// The service's own error for a permission the (valid) credentials lack, as an IAM or a
    /// bucket policy denies one operation or resource.
    Denied,
    /// Close the connection without an answer, as a dying endpoint does.
    Drop,
}

/// Which requests a fault hits, and how often.
#[derive(Debug, Clone)]
pub struct FaultRule {
    service: Option<String>,
    operation: Option<String>,
    region: Option<String>,
    resource: Option<String>,
    fault: Fault,
    skip: u32,
    times: Option<u32>,
}

impl FaultRule {
    /// Every request of `service` (`*` for all) gets `fault`, forever.
    #[must_use]
    pub fn new(service: &str, fault: Fault) -> Self {
        Self {
            service: (service != "*").then(|| service.to_owned()),
            operation: None,
            region: None,
            resource: None,
            fault,
            skip: 0,
            times: None,
        }
    }

    /// Only requests of `operation`.
    #[must_use]
    pub fn operation(mut self, operation: &str) -> Self {
        self.operation = Some(operation.to_owned());
        self
    }

    /// Only requests signed for `region`.
    #[must_use]
    pub fn region(mut self, region: &str) -> Self {
        self.region = Some(region.to_owned());
        self
    }

    /// Only requests about `name`: an S3 bucket (the first segment of the path), or any
    /// request whose body names it (an instance id, say).
    #[must_use]
    pub fn resource(mut self, name: &str) -> Self {
        self.resource = Some(name.to_owned());
        self
    }

    /// Lets the first `n` matching requests through untouched.
    #[must_use]
    pub fn after(mut self, n: u32) -> Self {
        self.skip = n;
        self
    }

    /// Stops after hitting `n` requests.
    #[must_use]
    pub fn times(mut self, n: u32) -> Self {
        self.times = Some(n);
        self
    }

    fn matches(&self, req: &RequestKey<'_>) -> bool {
        self.service.as_deref().is_none_or(|s| s == req.service)
            && self.operation.as_deref().is_none_or(|o| o == req.operation)
            && self.region.as_deref().is_none_or(|r| r == req.region)
            && self.resource.as_deref().is_none_or(|name| {
                req.path.trim_start_matches('/').split('/').next() == Some(name) || req.body.contains(name)
            })
    }
}

/// What a fault rule looks at in a request.
struct RequestKey<'a> {
    service: &'a str,
    operation: &'a str,
    region: &'a str,
    path: &'a str,
    body: &'a str,
}

struct State {
    moto: String,
    cloudwatch: String,
    client: Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
    log: Mutex<Vec<Recorded>>,
    rules: Mutex<Vec<FaultRule>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    aws_like: Mutex<Option<Arc<Quotas>>>,
    ec2_states: Mutex<Option<Arc<InstanceStates>>>,
}

/// The proxy; it stops when dropped.
pub struct FaultProxy {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    state: Arc<State>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultProxy")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FaultProxy {
    /// Starts a proxy on a free port in front of `moto_url` and `cloudwatch_url`.
    ///
    /// # Errors
    /// When no port can be bound.
    pub async fn start(moto_url: &str, cloudwatch_url: &str) -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr: SocketAddr = listener.local_addr()?;
        let state = Arc::new(State {
            moto: moto_url.trim_end_matches('/').to_owned(),
            cloudwatch: cloudwatch_url.trim_end_matches('/').to_owned(),
            client: Client::builder(TokioExecutor::new()).build_http(),
            log: Mutex::new(Vec::new()),
            rules: Mutex::new(Vec::new()),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            aws_like: Mutex::new(None),
            ec2_states: Mutex::new(None),
        });
        let st = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let st = st.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| handle(st.clone(), req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Ok(Self {
            url: format!("http://{addr}"),
            state,
            task,
        })
    }

    /// Adds a fault rule. Rules are tried in the order added.
    pub fn inject(&self, rule: FaultRule) {
        self.state.rules.lock().expect("rules lock").push(rule);
    }

    /// Switches the AWS-like mode on with `config` (fresh, full buckets), or off with `None`.
    pub fn set_aws_like(&self, config: Option<AwsLike>) {
        *self.state.aws_like.lock().expect("aws-like lock") = config.map(|c| Arc::new(Quotas::new(c)));
    }

    /// Switches EC2's instance state times on (see [`crate::ec2_states`]), or off with `None`.
    pub fn set_ec2_state_times(&self, times: Option<StateTimes>) {
        *self.state.ec2_states.lock().expect("states lock") = times.map(|t| Arc::new(InstanceStates::new(t)));
    }

    /// The instance state changes seen since the state times were switched on.
    #[must_use]
    pub fn state_log(&self) -> Vec<StateChange> {
        self.state
            .ec2_states
            .lock()
            .expect("states lock")
            .as_ref()
            .map(|s| s.log())
            .unwrap_or_default()
    }

    /// Resizes the AWS-like mode's bucket of `action` in `region` to `factor` of its configured
    /// size and refill, mid-run, as a lowered quota or a competing client would. No-op while the
    /// mode is off.
    pub fn resize_bucket(&self, service: &str, region: &str, action: &str, factor: f64) {
        if let Some(q) = self.state.aws_like.lock().expect("aws-like lock").as_ref() {
            q.resize(service, region, action, factor);
        }
    }

    /// Removes every fault rule.
    pub fn clear_faults(&self) {
        self.state.rules.lock().expect("rules lock").clear();
    }

    /// Every request seen so far.
    #[must_use]
    pub fn requests(&self) -> Vec<Recorded> {
        self.state.log.lock().expect("log lock").clone()
    }

    /// Forgets the recorded requests and the in-flight peak.
    pub fn reset_log(&self) {
        self.state.log.lock().expect("log lock").clear();
        self.state.max_in_flight.store(0, Ordering::SeqCst);
    }

    /// Requests seen for one service and operation.
    #[must_use]
    pub fn calls(&self, service: &str, operation: &str) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.service == service && r.operation == operation)
            .collect()
    }

    /// The most requests that were in flight at once.
    #[must_use]
    pub fn max_in_flight(&self) -> usize {
        self.state.max_in_flight.load(Ordering::SeqCst)
    }
}

/// Service and Region from the SigV4 credential scope: `Credential=AK/DATE/REGION/SERVICE/aws4_request`.
fn credential_scope(req: &Request<Incoming>) -> (String, String) {
    let auth = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let scope = auth
        .split("Credential=")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .unwrap_or_default();
    let parts: Vec<&str> = scope.split('/').collect();
    let region = parts.get(2).copied().unwrap_or_default().to_owned();
    let service = match parts.get(3).copied().unwrap_or_default() {
        "monitoring" => "cloudwatch".to_owned(),
        other => other.to_owned(),
    };
    (service, region)
}

fn operation(service: &str, method: &hyper::Method, path: &str, query: &str, body: &[u8]) -> String {
    match service {
        "cloudwatch" => path.rsplit('/').next().unwrap_or_default().to_owned(),
        "s3" => {
            let keys: Vec<&str> = query
                .split('&')
                .map(|kv| kv.split('=').next().unwrap_or_default())
                .collect();
            let sub = [
                ("publicAccessBlock", "PublicAccessBlock"),
                ("policyStatus", "BucketPolicyStatus"),
                ("acl", "BucketAcl"),
                ("encryption", "BucketEncryption"),
                ("versioning", "BucketVersioning"),
                ("logging", "BucketLogging"),
                ("tagging", "BucketTagging"),
                ("location", "BucketLocation"),
                ("policy", "BucketPolicy"),
                ("ownershipControls", "BucketOwnershipControls"),
                ("lifecycle", "BucketLifecycleConfiguration"),
                ("replication", "BucketReplication"),
                ("notification", "BucketNotificationConfiguration"),
                ("object-lock", "ObjectLockConfiguration"),
            ]
            .iter()
            .find(|(k, _)| keys.contains(k))
            .map(|(_, name)| *name);
            let verb = match *method {
                hyper::Method::GET => "Get",
                hyper::Method::PUT => "Put",
                hyper::Method::DELETE => "Delete",
                _ => "Head",
            };
            match (sub, path.trim_matches('/')) {
                (Some(name), _) => format!("{verb}{name}"),
                (None, "") => "ListBuckets".to_owned(),
                (None, p) if !p.contains('/') && verb == "Put" => "CreateBucket".to_owned(),
                (None, _) => format!("{verb}Object"),
            }
        }
        _ => String::from_utf8_lossy(body)
            .split('&')
            .find_map(|kv| kv.strip_prefix("Action="))
            .unwrap_or("Unknown")
            .to_owned(),
    }
}

fn xml(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut()
        .insert("content-type", "text/xml".parse().expect("static header"));
    r
}

fn cbor_error(status: StatusCode, code: &str, message: &str) -> Response<Full<Bytes>> {
    let mut body = Vec::new();
    let value = ciborium::Value::Map(vec![
        (
            ciborium::Value::Text("__type".into()),
            ciborium::Value::Text(format!("com.amazonaws.cloudwatch#{code}")),
        ),
        (
            ciborium::Value::Text("message".into()),
            ciborium::Value::Text(message.into()),
        ),
    ]);
    ciborium::into_writer(&value, &mut body).expect("CBOR into a Vec");
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert("content-type", "application/cbor".parse().expect("static header"));
    h.insert("smithy-protocol", "rpc-v2-cbor".parse().expect("static header"));
    h.insert(
        "x-amzn-query-error",
        format!("{code};Sender").parse().expect("ascii header"),
    );
    r
}

/// The service's own error for `fault`, in its own wire format.
fn fault_response(service: &str, fault: Fault) -> Response<Full<Bytes>> {
    // (HTTP status, code, message) per service, as each answers.
    let (status, code, msg) = match (service, fault) {
        (_, Fault::Drop) => unreachable!("a dropped request gets no answer"),
        ("ec2", Fault::Throttle) => (503, "RequestLimitExceeded", "Request limit exceeded."),
        ("ec2", Fault::AuthError) => (
            401,
            "AuthFailure",
            "AWS was not able to validate the provided access credentials",
        ),
        ("ec2", Fault::Denied) => (
            403,
            "UnauthorizedOperation",
            "You are not authorized to perform this operation.",
        ),
        ("s3", Fault::Throttle) => (503, "SlowDown", "Please reduce your request rate."),
        ("s3", Fault::AuthError) => (
            403,
            "InvalidAccessKeyId",
            "The AWS Access Key Id you provided does not exist in our records.",
        ),
        ("s3", Fault::Denied) => (403, "AccessDenied", "Access Denied"),
        ("cloudwatch", Fault::Throttle) => (400, "ThrottlingException", "Rate exceeded"),
        (_, Fault::Throttle) => (400, "Throttling", "Rate exceeded"),
        (_, Fault::AuthError) => (
            403,
            "InvalidClientTokenId",
            "The security token included in the request is invalid.",
        ),
        (_, Fault::Denied) => (403, "AccessDenied", "User is not authorized to perform this action"),
    };
    let status = StatusCode::from_u16(status).expect("a valid status");
    match service {
        "ec2" => xml(status, format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Errors><Error><Code>{code}</Code><Message>{msg}</Message></Error></Errors><RequestID>fault-proxy</RequestID></Response>")),
        "s3" => xml(status, format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>{msg}</Message><RequestId>fault-proxy</RequestId></Error>")),
        "cloudwatch" => cbor_error(status, code, msg),
        _ => xml(status, format!("<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{msg}</Message></Error><RequestId>fault-proxy</RequestId></ErrorResponse>")),
    }
}

/// The error of `fault` in the AWS JSON protocol (SQS, DynamoDB, Organizations): a `__type`
/// and a message, and for SQS the query-compatible code in `x-amzn-query-error`, as AWS sends.
fn json_fault_response(service: &str, fault: Fault) -> Response<Full<Bytes>> {
    let (status, code, query_code, msg) = match fault {
        Fault::Drop => unreachable!("a dropped request gets no answer"),
        Fault::Throttle => (400, "ThrottlingException", "ThrottlingException", "Rate exceeded"),
        Fault::AuthError => (
            400,
            "UnrecognizedClientException",
            "InvalidClientTokenId",
            "The security token included in the request is invalid.",
        ),
        Fault::Denied => (
            400,
            "AccessDeniedException",
            "AccessDenied",
            "User is not authorized to perform this action",
        ),
    };
    let body = serde_json::json!({ "__type": code, "message": msg }).to_string();
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = StatusCode::from_u16(status).expect("a valid status");
    let h = r.headers_mut();
    h.insert(
        "content-type",
        "application/x-amz-json-1.0".parse().expect("static header"),
    );
    if service == "sqs" {
        h.insert(
            "x-amzn-query-error",
            format!("{query_code};Sender").parse().expect("ascii header"),
        );
    }
    r
}

/// Finds the first rule that hits this request, consuming one of its uses.
fn take_fault(st: &State, req: &RequestKey<'_>) -> Option<Fault> {
    let mut rules = st.rules.lock().expect("rules lock");
    for rule in rules.iter_mut() {
        if !rule.matches(req) {
            continue;
        }
        if rule.skip > 0 {
            rule.skip -= 1;
            continue;
        }
        match &mut rule.times {
            Some(0) => continue,
            Some(n) => *n -= 1,
            None => {}
        }
        return Some(rule.fault);
    }
    None
}

#[derive(Debug)]
struct Dropped;
impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by fault injection")
    }
}
impl std::error::Error for Dropped {}

async fn handle(st: Arc<State>, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Dropped> {
    let started = Instant::now();
    let now = st.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    st.max_in_flight.fetch_max(now, Ordering::SeqCst);
    let result = forward(&st, req, started).await;
    st.in_flight.fetch_sub(1, Ordering::SeqCst);
    result
}

/// AWS's documented buckets, for naming the categories of requests while the mode is off.
fn documented() -> &'static AwsLike {
    static DOCUMENTED: std::sync::OnceLock<AwsLike> = std::sync::OnceLock::new();
    DOCUMENTED.get_or_init(AwsLike::default)
}

async fn forward(st: &State, req: Request<Incoming>, started: Instant) -> Result<Response<Full<Bytes>>, Dropped> {
    let (service, region) = credential_scope(&req);
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or_default().to_owned();
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(http_body_util::Collected::to_bytes)
        .unwrap_or_default();
    let service = if path.starts_with("/service/GraniteServiceVersion20100801/") {
        "cloudwatch".to_owned()
    } else {
        service
    };
    let target = parts.headers.get("x-amz-target").and_then(|v| v.to_str().ok());
    let op = match target {
        // JSON-protocol services (SQS, DynamoDB, Organizations) name it in `X-Amz-Target`.
        Some(target) => target.rsplit('.').next().unwrap_or_default().to_owned(),
        None => operation(&service, &parts.method, &path, &query, &body),
    };
    let json_protocol = target.is_some();
    let quotas = st.aws_like.lock().expect("aws-like lock").clone();
    let mut over_quota = false;
    let text = String::from_utf8_lossy(&body).into_owned();
    let category = quotas.as_ref().map_or_else(
        || documented().category(&service, &op, &text),
        |q| q.config().category(&service, &op, &text),
    );
    if let Some(quotas) = &quotas {
        tokio::time::sleep(quotas.latency(&service)).await;
        over_quota = !quotas.admit(&service, &region, &op, &text);
    }
    let fault = if over_quota {
        Some(Fault::Throttle)
    } else {
        take_fault(
            st,
            &RequestKey {
                service: &service,
                operation: &op,
                region: &region,
                path: &path,
                body: &text,
            },
        )
    };
    let states = if service == "ec2" {
        st.ec2_states.lock().expect("states lock").clone()
    } else {
        None
    };
    let refusal = match (&states, fault) {
        (Some(states), None) => match states.before(&op, &text) {
            Verdict::Forward => None,
            Verdict::Refuse(message) => Some(message),
            Verdict::ForwardIfStopped(id) => match moto_state(st, &parts.headers, &id).await {
                Some(state) if state != "stopped" => Some(format!(
                    "The instance '{id}' is not in the 'stopped' state (it is {state})."
                )),
                _ => None,
            },
        },
        _ => None,
    };
    let metric_request = (op == "GetMetricData")
        .then(|| crate::metric_request::parse(&body))
        .flatten()
        .map(Arc::new);
    let mut upstream = None;
    let record = |status: u16, upstream| Recorded {
        path: path.clone(),
        service: service.clone(),
        operation: op.clone(),
        region: region.clone(),
        started,
        finished: Instant::now(),
        status,
        fault,
        over_quota,
        category: category.clone(),
        metric_request: metric_request.clone(),
        upstream,
    };
    let response = match fault {
        Some(Fault::Drop) => {
            st.log.lock().expect("log lock").push(record(0, None));
            return Err(Dropped);
        }
        Some(f) if json_protocol => json_fault_response(&service, f),
        Some(f) => fault_response(&service, f),
        None if refusal.is_some() => xml(
            StatusCode::BAD_REQUEST,
            incorrect_state(refusal.as_deref().unwrap_or_default()),
        ),
        None => {
            let emulator = if service == "cloudwatch" {
                &st.cloudwatch
            } else {
                &st.moto
            };
            let uri = format!("{emulator}{}", parts.uri.path_and_query().map_or("/", |p| p.as_str()));
            let mut out = Request::builder().method(parts.method.clone()).uri(uri);
            for (k, v) in &parts.headers {
                out = out.header(k, v);
            }
            let Ok(out) = out.body(Full::new(body)) else {
                return Err(Dropped);
            };
            let sent = Instant::now();
            match st.client.request(out).await {
                Ok(resp) => {
                    let (mut p, b) = resp.into_parts();
                    let mut bytes = b
                        .collect()
                        .await
                        .map(http_body_util::Collected::to_bytes)
                        .unwrap_or_default();
                    upstream = Some((sent, Instant::now()));
                    if let Some(states) = states.filter(|_| p.status.is_success()) {
                        if let Some(shown) = states.after(&op, &text, &String::from_utf8_lossy(&bytes)) {
                            bytes = Bytes::from(shown);
                            p.headers.remove(hyper::header::CONTENT_LENGTH);
                        }
                    }
                    Response::from_parts(p, Full::new(bytes))
                }
                Err(_) => {
                    st.log
                        .lock()
                        .expect("log lock")
                        .push(record(0, Some((sent, Instant::now()))));
                    return Err(Dropped);
                }
            }
        }
    };
    st.log
        .lock()
        .expect("log lock")
        .push(record(response.status().as_u16(), upstream));
    Ok(response)
}

/// The state moto has for instance `id`, asked with the credentials of the request at hand
/// (moto keeps one estate per Region, named by the credential scope).
async fn moto_state(st: &State, headers: &hyper::HeaderMap, id: &str) -> Option<String> {
    let mut req = Request::post(format!("{}/", st.moto))
        .header("content-type", "application/x-www-form-urlencoded; charset=utf-8");
    for name in ["authorization", "x-amz-date", "x-amz-security-token"] {
        if let Some(v) = headers.get(name) {
            req = req.header(name, v);
        }
    }
    let body = format!("Action=DescribeInstances&Version=2016-11-15&InstanceId.1={id}");
    let resp = st
        .client
        .request(req.body(Full::new(Bytes::from(body))).ok()?)
        .await
        .ok()?;
    let bytes = resp.into_body().collect().await.ok()?.to_bytes();
    reported_state(&String::from_utf8_lossy(&bytes)).map(str::to_owned)
}

/// The wall time during which the emulators were working on at least one of `requests` (the
/// union of their upstream intervals): what the emulators, not AWS's quotas, cost a run.
#[must_use]
pub fn upstream_busy(requests: &[Recorded]) -> Duration {
    let mut spans: Vec<(Instant, Instant)> = requests.iter().filter_map(|r| r.upstream).collect();
    spans.sort_by_key(|s| s.0);
    let mut busy = Duration::ZERO;
    let mut current: Option<(Instant, Instant)> = None;
    for (start, end) in spans {
        current = match current {
            Some((s, e)) if start <= e => Some((s, e.max(end))),
            Some((s, e)) => {
                busy += e - s;
                Some((start, end))
            }
            None => Some((start, end)),
        };
    }
    busy + current.map_or(Duration::ZERO, |(s, e)| e - s)
}

/// Gaps between consecutive requests of one list, for asserting backoff delays.
#[must_use]
pub fn gaps(requests: &[Recorded]) -> Vec<Duration> {
    requests
        .windows(2)
        .map(|w| w[1].started.saturating_duration_since(w[0].finished))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sends `n` unsigned-but-scoped EC2 query requests at once; returns the statuses.
    async fn burst(url: &str, action: &str, n: usize) -> Vec<u16> {
        let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
        let sends = (0..n).map(|_| {
            let req = Request::post(url)
                .header(
                    "authorization",
                    "AWS4-HMAC-SHA256 Credential=testing/20261201/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=0",
                )
                .header("content-type", "application/x-www-form-urlencoded")
                .body(Full::new(Bytes::from(format!("Action={action}&Version=2016-11-15"))))
                .expect("a request");
            let client = client.clone();
            async move { client.request(req).await.map_or(0, |r| r.status().as_u16()) }
        });
        futures::future::join_all(sends).await
    }

    #[tokio::test]
    async fn the_aws_like_mode_throttles_past_the_bucket_with_ec2s_own_error() {
        // Upstream ports nobody listens on: an admitted request is dropped (status 0), a
        // throttled one answered by the proxy itself (503 RequestLimitExceeded).
        let proxy = FaultProxy::start("http://127.0.0.1:9", "http://127.0.0.1:9")
            .await
            .unwrap();
        proxy.set_aws_like(Some(AwsLike {
            latency: Duration::ZERO,
            ..AwsLike::default()
        }));
        let started = Instant::now();
        let statuses = burst(&proxy.url, "DescribeInstances", 80).await;
        let elapsed = started.elapsed().as_secs_f64();
        let throttled = statuses.iter().filter(|&&s| s == 503).count();
        let admitted = 80 - throttled;
        // 50 tokens, and 10 more per second while the burst lasted.
        assert!(
            admitted >= 50 && admitted as f64 <= 50.0 + 10.0 * elapsed + 1.0,
            "{admitted} admitted in {elapsed:.2}s"
        );
        let log = proxy.requests();
        assert_eq!(log.iter().filter(|r| r.over_quota).count(), throttled);
        assert!(log
            .iter()
            .filter(|r| r.over_quota)
            .all(|r| r.fault == Some(Fault::Throttle)));
        // Another action has its own bucket; switching the mode off stops throttling.
        assert!(burst(&proxy.url, "CreateTags", 10).await.iter().all(|&s| s != 503));
        proxy.set_aws_like(None);
        assert!(burst(&proxy.url, "DescribeInstances", 60)
            .await
            .iter()
            .all(|&s| s != 503));
    }

    #[tokio::test]
    async fn the_aws_like_mode_adds_its_latency() {
        let proxy = FaultProxy::start("http://127.0.0.1:9", "http://127.0.0.1:9")
            .await
            .unwrap();
        proxy.set_aws_like(Some(AwsLike {
            latency: Duration::from_millis(40),
            jitter: 0.0,
            ..AwsLike::default()
        }));
        let started = Instant::now();
        burst(&proxy.url, "DescribeRegions", 1).await;
        assert!(started.elapsed() >= Duration::from_millis(40));
    }
}
