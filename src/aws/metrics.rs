//! CloudWatch series, fetched with batched `GetMetricData` (θ1's lookback, θ5's read-back).
//!
//! One call carries at most 500 queries and 100,800 datapoints, so a 14-day hourly lookback
//! (336 points) packs 300 series per call. Pages (`NextToken`) are followed and merged.

use aws_sdk_cloudwatch::operation::get_metric_data::GetMetricDataOutput;
use aws_sdk_cloudwatch::operation::list_metrics::ListMetricsOutput;
use std::collections::BTreeMap;
use std::ops::Range;

use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat, ScanBy};
use aws_smithy_types::DateTime as AwsTime;

use crate::aws::{AwsError, Layered};
use crate::world::MetricSeries;

type CloudWatch = Layered<aws_sdk_cloudwatch::Client>;

/// Most queries in one `GetMetricData` call.
pub const MAX_QUERIES_PER_CALL: usize = 500;
/// Most datapoints one `GetMetricData` call may return.
pub const MAX_DATAPOINTS_PER_CALL: u64 = 100_800;

/// One series to fetch.
#[derive(Debug, Clone)]
pub(crate) struct SeriesRequest {
    pub resource_id: String,
    pub namespace: &'static str,
    pub metric_name: String,
    pub dimensions: BTreeMap<String, String>,
    pub stat: &'static str,
    pub period_seconds: u32,
    /// Window start and end, Unix seconds.
    pub window: (i64, i64),
}

impl SeriesRequest {
    pub(crate) fn new(
        resource_id: &str,
        namespace: &'static str,
        metric: &str,
        dimension: &str,
        stat: &'static str,
    ) -> Self {
        Self {
            resource_id: resource_id.to_owned(),
            namespace,
            metric_name: metric.to_owned(),
            dimensions: BTreeMap::from([(dimension.to_owned(), resource_id.to_owned())]),
            stat,
            period_seconds: 3600,
            window: (0, 0),
        }
    }

    /// The most datapoints the series can return.
    pub(crate) fn max_points(&self) -> u64 {
        let span = u64::try_from(self.window.1 - self.window.0).unwrap_or(0);
        span.div_ceil(u64::from(self.period_seconds.max(1)))
    }
}

/// Splits `requests` into consecutive batches that each share one window and period (a
/// `GetMetricData` call has one time range) and respect both limits of a call. Sort requests by
/// window and period first, or each change of them starts a batch.
pub(crate) fn batches_of(requests: &[SeriesRequest]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < requests.len() {
        let key = |r: &SeriesRequest| (r.window, r.period_seconds);
        let run = requests[start..]
            .iter()
            .position(|r| key(r) != key(&requests[start]))
            .map_or(requests.len(), |n| start + n);
        let points = request_points(&requests[start..run]);
        out.extend(batches(&points).into_iter().map(|r| r.start + start..r.end + start));
        start = run;
    }
    out
}

/// Splits requests (which share one window) into consecutive batches that respect both limits of
/// a call. A request larger than a whole call still gets a batch of its own (CloudWatch pages it).
fn batches(points_per_request: &[u64]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut points = 0u64;
    for (i, &p) in points_per_request.iter().enumerate() {
        let full = i - start == MAX_QUERIES_PER_CALL || (points + p > MAX_DATAPOINTS_PER_CALL && i > start);
        if full {
            out.push(start..i);
            start = i;
            points = 0;
        }
        points += p;
    }
    if start < points_per_request.len() {
        out.push(start..points_per_request.len());
    }
    out
}

/// Fetches one batch of requests (same window, see [`batches_of`]) in as many pages as
/// CloudWatch needs.
pub(crate) async fn fetch_batch(cw: &CloudWatch, requests: &[SeriesRequest]) -> Result<Vec<MetricSeries>, AwsError> {
    let Some(first) = requests.first() else {
        return Ok(Vec::new());
    };
    let window = requests
        .iter()
        .fold(first.window, |(s, e), r| (s.min(r.window.0), e.max(r.window.1)));
    let queries: Vec<MetricDataQuery> = requests
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let metric = Metric::builder()
                .namespace(r.namespace)
                .metric_name(&r.metric_name)
                .set_dimensions(Some(
                    r.dimensions
                        .iter()
                        .map(|(n, v)| Dimension::builder().name(n).value(v).build())
                        .collect(),
                ))
                .build();
            MetricDataQuery::builder()
                .id(format!("q{i}"))
                .metric_stat(
                    MetricStat::builder()
                        .metric(metric)
                        .period(i32::try_from(r.period_seconds).unwrap_or(3600))
                        .stat(r.stat)
                        .build(),
                )
                .return_data(true)
                .build()
        })
        .collect();
    let mut points: Vec<Vec<(i64, f64)>> = vec![Vec::new(); requests.len()];
    let send = |token| {
        cw.client
            .get_metric_data()
            .set_metric_data_queries(Some(queries.clone()))
            .start_time(AwsTime::from_secs(window.0))
            .end_time(AwsTime::from_secs(window.1))
            .scan_by(ScanBy::TimestampAscending)
            .set_next_token(token)
            .send()
    };
    let each = |page: GetMetricDataOutput| {
        for result in page.metric_data_results() {
            let Some(index) = result
                .id()
                .and_then(|id| id.strip_prefix('q'))
                .and_then(|n| n.parse::<usize>().ok())
            else {
                continue;
            };
            if let Some(slot) = points.get_mut(index) {
                slot.extend(
                    result
                        .timestamps()
                        .iter()
                        .map(AwsTime::secs)
                        .zip(result.values().iter().copied()),
                );
            }
        }
    };
    cw.layer
        .pages("GetMetricData", send, GetMetricDataOutput::next_token, each)
        .await?;
    Ok(requests
        .iter()
        .zip(points)
        .filter(|(_, p)| !p.is_empty())
        .map(|(r, mut p)| {
            p.sort_by_key(|(t, _)| *t);
            p.dedup_by_key(|(t, _)| *t);
            let (timestamps, values) = p.into_iter().unzip();
            MetricSeries {
                resource_id: r.resource_id.clone(),
                region: cw.layer.region().to_owned(),
                namespace: r.namespace.to_owned(),
                metric_name: r.metric_name.clone(),
                dimensions: r.dimensions.clone(),
                stat: r.stat.to_owned(),
                period_seconds: r.period_seconds,
                timestamps,
                values,
            }
        })
        .collect())
}

/// Fetches `requests` in as few calls as the limits allow, one batch after another.
pub(crate) async fn fetch_all(cw: &CloudWatch, requests: &[SeriesRequest]) -> Result<Vec<MetricSeries>, AwsError> {
    let mut out = Vec::new();
    for range in batches_of(requests) {
        out.extend(fetch_batch(cw, &requests[range]).await?);
    }
    Ok(out)
}

/// Instance ids that the CloudWatch agent publishes memory for, with the full dimension set.
pub(crate) async fn agent_memory_metrics(cw: &CloudWatch) -> Result<Vec<BTreeMap<String, String>>, AwsError> {
    let mut out = Vec::new();
    let send = |token| {
        cw.client
            .list_metrics()
            .namespace("CWAgent")
            .metric_name("mem_used_percent")
            .set_next_token(token)
            .send()
    };
    let each = |page: ListMetricsOutput| {
        for m in page.metrics() {
            let dims: BTreeMap<String, String> = m
                .dimensions()
                .iter()
                .filter_map(|d| Some((d.name()?.to_owned(), d.value()?.to_owned())))
                .collect();
            if dims.contains_key("InstanceId") {
                out.push(dims);
            }
        }
    };
    cw.layer
        .pages("ListMetrics", send, ListMetricsOutput::next_token, each)
        .await?;
    Ok(out)
}

fn request_points(requests: &[SeriesRequest]) -> Vec<u64> {
    requests.iter().map(SeriesRequest::max_points).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fourteen_days_hourly_packs_300_series_per_call() {
        let b = batches(&vec![336; 1000]);
        assert_eq!(
            b.iter().map(ExactSizeIterator::len).collect::<Vec<_>>(),
            vec![300, 300, 300, 100]
        );
    }

    #[test]
    fn short_series_are_capped_at_500_queries() {
        let b = batches(&vec![3; 1200]);
        assert_eq!(
            b.iter().map(ExactSizeIterator::len).collect::<Vec<_>>(),
            vec![500, 500, 200]
        );
    }

    fn request(window: (i64, i64), period_seconds: u32) -> SeriesRequest {
        SeriesRequest {
            period_seconds,
            window,
            ..SeriesRequest::new("i-1", "AWS/EC2", "CPUUtilization", "InstanceId", "Average")
        }
    }

    #[test]
    fn a_batch_never_mixes_windows_or_periods() {
        // 301 hourly 14-day series, then 5 daily 3-day ones: the last hourly batch has room,
        // but the daily series must not take the hourly window (they would return 14 points).
        let hourly = (0, 336 * 3600);
        let daily = (336 * 3600 - 3 * 86_400, 336 * 3600);
        let mut requests = vec![request(hourly, 3600); 301];
        requests.extend(vec![request(daily, 86_400); 5]);
        let b = batches_of(&requests);
        assert_eq!(b, vec![0..300, 300..301, 301..306]);
        for range in b {
            let first = &requests[range.start];
            assert!(requests[range]
                .iter()
                .all(|r| r.window == first.window && r.period_seconds == first.period_seconds));
        }
    }

    #[test]
    fn an_oversized_series_gets_a_call_of_its_own_and_nothing_is_dropped() {
        let b = batches(&[200_000, 10, 10]);
        assert_eq!(b, vec![0..1, 1..3]);
        assert!(batches(&[]).is_empty());
    }
}
