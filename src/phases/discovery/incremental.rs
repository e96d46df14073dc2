//! Incremental re-scan of metric series: ask CloudWatch only for what a previous capture does
//! not hold yet.
//!
//! A series the previous world holds is asked from its last datapoint on, that is from the end
//! of what it holds minus one period, so that the last period is read again for its late points;
//! the answer is merged into the held points by timestamp, the newer value winning, and what
//! falls out of the lookback is dropped. A series it does not hold (a resource that appeared since, or one that had no data)
//! gets its full window. The merged series equal a full scan's whenever CloudWatch's older
//! points did not change, which is what CloudWatch guarantees once a period is complete.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::aws::metrics::SeriesRequest;
use crate::world::{MetricSeries, WorldState};

/// A series' identity: Region, namespace, metric, dimensions, statistic and period.
type SeriesKey<'a> = (&'a str, &'a str, &'a str, &'a BTreeMap<String, String>, &'a str, u32);

fn key_of(s: &MetricSeries) -> SeriesKey<'_> {
    key_in(&s.region, s)
}

/// `s`'s identity as a series of `region`.
fn key_in<'a>(region: &'a str, s: &'a MetricSeries) -> SeriesKey<'a> {
    (
        region,
        &s.namespace,
        &s.metric_name,
        &s.dimensions,
        &s.stat,
        s.period_seconds,
    )
}

fn key_of_request<'a>(region: &'a str, r: &'a SeriesRequest) -> SeriesKey<'a> {
    (
        region,
        r.namespace,
        &r.metric_name,
        &r.dimensions,
        r.stat,
        r.period_seconds,
    )
}

/// Resources by (Region, id).
type Known<'a> = HashSet<(&'a str, &'a str), foldhash::fast::RandomState>;

/// What a previous capture holds: its series by identity, and the resources it read whole up
/// to the end of its window.
pub(crate) struct HeldSeries<'a> {
    by_key: HashMap<SeriesKey<'a>, &'a MetricSeries, foldhash::fast::RandomState>,
    /// The previous window's end, and every resource read whole by then.
    known: Option<(i64, Known<'a>)>,
}

impl<'a> HeldSeries<'a> {
    /// What `previous` holds that a capture whose window starts at `window_start` can build on:
    /// nothing when there is no previous world, or when its window started later.
    pub(crate) fn of(previous: Option<&'a WorldState>, window_start: i64) -> Self {
        let nothing = Self {
            by_key: HashMap::default(),
            known: None,
        };
        let Some(previous) = previous else { return nothing };
        let until = previous.scope.metrics_until.map(|t| t.timestamp());
        let previous_start = until.map(|u| u - i64::from(previous.scope.lookback_hours) * 3600);
        if previous_start.is_some_and(|s| s > window_start) {
            return nothing;
        }
        let coverage = previous.coverage();
        let inv = &previous.inventory;
        let resources = inv
            .instances
            .iter()
            .map(|r| (r.region.as_str(), r.id.as_str()))
            .chain(inv.volumes.iter().map(|r| (r.region.as_str(), r.id.as_str())))
            .chain(inv.db_instances.iter().map(|r| (r.region.as_str(), r.id.as_str())))
            .chain(inv.buckets.iter().map(|r| (r.region.as_str(), r.name.as_str())));
        Self {
            by_key: inv
                .metrics
                .iter()
                .filter(|s| !s.timestamps.is_empty())
                .map(|s| (key_of(s), s))
                .collect(),
            known: until.map(|u| {
                let whole = resources
                    .filter(|(region, id)| coverage.gap(region, id).is_none())
                    .collect();
                (u, whole)
            }),
        }
    }

    /// True when there is nothing to build on.
    pub(crate) fn is_empty(&self) -> bool {
        self.by_key.is_empty() && self.known.is_none()
    }

    fn get(&self, region: &str, r: &SeriesRequest) -> Option<&'a MetricSeries> {
        self.by_key.get(&key_of_request(region, r)).copied()
    }

    /// Narrows each request of `region` to what is not held yet: from the end of the previous
    /// window minus one period, or from the series' last held point (that period is read again,
    /// for late points). Returns each request's full window, for [`HeldSeries::merge`]. A
    /// request with nothing new to ask gets an empty window (start = end) and is not to be sent.
    pub(crate) fn narrow(&self, region: &str, requests: &mut [SeriesRequest]) -> Vec<(i64, i64)> {
        let full = requests.iter().map(|r| r.window).collect();
        for r in requests.iter_mut() {
            let last_held = self.get(region, r).and_then(|held| held.timestamps.last().copied());
            let window_end = self.known.as_ref().and_then(|(until, whole)| {
                whole
                    .contains(&(region, r.resource_id.as_str()))
                    .then(|| until - i64::from(r.period_seconds))
            });
            if let Some(from) = last_held.max(window_end) {
                r.window.0 = r.window.0.max(from).min(r.window.1);
            }
        }
        full
    }

    /// The series of `region`'s `requests` (narrowed, with their `full` windows from
    /// [`HeldSeries::narrow`]): what was `fetched` merged into the held points by timestamp, the
    /// fetched value winning, cut to the full window. A held point the answer lacks is kept, so
    /// nothing read before is lost; an empty result is no series, as in a full scan.
    pub(crate) fn merge(
        &self,
        region: &str,
        requests: &[SeriesRequest],
        full: &[(i64, i64)],
        fetched: Vec<MetricSeries>,
    ) -> Vec<MetricSeries> {
        let slot: HashMap<SeriesKey<'_>, usize, foldhash::fast::RandomState> = requests
            .iter()
            .enumerate()
            .map(|(i, r)| (key_of_request(region, r), i))
            .collect();
        let mut answered: Vec<Option<MetricSeries>> = std::iter::repeat_with(|| None).take(requests.len()).collect();
        for s in fetched {
            if let Some(&i) = slot.get(&key_in(region, &s)) {
                answered[i] = Some(s);
            }
        }
        let mut out = Vec::with_capacity(requests.len());
        for ((r, &(from, until)), new) in requests.iter().zip(full).zip(answered) {
            let held = self.get(region, r);
            let series = match (held, new) {
                (None, None) => continue,
                (None, Some(new)) => new,
                (Some(held), new) => {
                    let (timestamps, values) = merge_points(held, new.as_ref(), (from, until));
                    MetricSeries {
                        resource_id: held.resource_id.clone(),
                        region: held.region.clone(),
                        namespace: held.namespace.clone(),
                        metric_name: held.metric_name.clone(),
                        dimensions: held.dimensions.clone(),
                        stat: held.stat.clone(),
                        period_seconds: held.period_seconds,
                        timestamps,
                        values,
                    }
                }
            };
            if !series.timestamps.is_empty() {
                out.push(series);
            }
        }
        out
    }
}

/// The points of `held` and `new` (each sorted by time) within `[from, until)`, one per
/// timestamp, `new`'s where both have one.
fn merge_points(held: &MetricSeries, new: Option<&MetricSeries>, (from, until): (i64, i64)) -> (Vec<i64>, Vec<f64>) {
    let inside = |t: i64| (from..until).contains(&t);
    let held = held.timestamps.iter().copied().zip(held.values.iter().copied());
    let new: Vec<(i64, f64)> = new
        .map(|n| n.timestamps.iter().copied().zip(n.values.iter().copied()).collect())
        .unwrap_or_default();
    let mut merged: Vec<(i64, f64)> = Vec::with_capacity(held.len() + new.len());
    let mut new_iter = new.into_iter().filter(|(t, _)| inside(*t)).peekable();
    for (t, v) in held.filter(|(t, _)| inside(*t)) {
        while let Some(&(nt, nv)) = new_iter.peek() {
            if nt > t {
                break;
            }
            merged.push((nt, nv));
            new_iter.next();
        }
        if merged.last().is_none_or(|&(last, _)| last != t) {
            merged.push((t, v));
        }
    }
    merged.extend(new_iter);
    merged.into_iter().unzip()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::{Completeness, Ec2Instance, Inventory, ScanGap};

    const H: i64 = 3600;

    fn series(id: &str, region: &str, points: &[(i64, f64)]) -> MetricSeries {
        MetricSeries {
            resource_id: id.into(),
            region: region.into(),
            namespace: "AWS/EC2".into(),
            metric_name: "CPUUtilization".into(),
            dimensions: BTreeMap::from([("InstanceId".into(), id.into())]),
            stat: "Average".into(),
            period_seconds: 3600,
            timestamps: points.iter().map(|p| p.0).collect(),
            values: points.iter().map(|p| p.1).collect(),
        }
    }

    fn instance(id: &str) -> Ec2Instance {
        serde_json::from_value(serde_json::json!({
            "id": id, "arn": "", "region": "us-east-1", "availability_zone": null,
            "instance_type": "m5.large", "image_id": null, "state": "running", "stopped_since": null,
            "launch_time": null, "architecture": null, "platform": null, "vpc_id": null,
            "subnet_id": null, "public_ip": null, "security_group_ids": [], "volume_ids": [],
            "imds_v2_required": true, "tags": {}, "owner_agent": "a"
        }))
        .unwrap()
    }

    /// A capture of `instances` with `metrics`, whose 10-hour window ended at `until` hours.
    fn world(instances: &[&str], metrics: Vec<MetricSeries>, until: i64, gaps: Vec<ScanGap>) -> WorldState {
        let inventory = Inventory {
            instances: instances.iter().map(|id| instance(id)).collect(),
            metrics,
            ..Inventory::default()
        };
        super::super::capture_world(
            inventory,
            None,
            vec!["us-east-1".into()],
            (10, until * H),
            gaps,
            crate::catalog::PriceCatalog::built_in(),
        )
    }

    fn request(id: &str, window: (i64, i64)) -> SeriesRequest {
        SeriesRequest {
            window,
            ..SeriesRequest::new(id, "AWS/EC2", "CPUUtilization", "InstanceId", "Average")
        }
    }

    #[test]
    fn a_known_series_is_asked_from_the_last_period_of_the_previous_window() {
        let previous = world(
            &["i-1", "i-quiet"],
            vec![series(
                "i-1",
                "us-east-1",
                &[(10 * H, 1.0), (11 * H, 2.0), (12 * H, 3.0)],
            )],
            13,
            Vec::new(),
        );
        let held = HeldSeries::of(Some(&previous), 5 * H);
        let mut requests = vec![
            request("i-1", (5 * H, 15 * H)),
            // Known, but it had no datapoint: asked from the same hour, not whole.
            request("i-quiet", (5 * H, 15 * H)),
            // Appeared since: asked whole.
            request("i-new", (5 * H, 15 * H)),
        ];
        let full = held.narrow("us-east-1", &mut requests);
        assert_eq!(full, [(5 * H, 15 * H); 3]);
        let windows: Vec<_> = requests.iter().map(|r| r.window).collect();
        assert_eq!(windows, [(12 * H, 15 * H), (12 * H, 15 * H), (5 * H, 15 * H)]);
        // Another Region's instance of the same id is another resource: asked whole.
        let mut elsewhere = vec![request("i-1", (5 * H, 15 * H))];
        held.narrow("eu-west-1", &mut elsewhere);
        assert_eq!(elsewhere[0].window, (5 * H, 15 * H));
    }

    #[test]
    fn what_the_previous_capture_did_not_read_whole_or_a_longer_lookback_is_asked_whole() {
        let gap = ScanGap {
            region: "us-east-1".into(),
            service: "cloudwatch".into(),
            operation: "GetMetricData".into(),
            resources: vec!["i-2".into()],
            error: "timed out".into(),
        };
        let previous = world(&["i-1", "i-2"], Vec::new(), 13, vec![gap]);
        assert!(!previous.scope.completeness.is_complete());
        let mut requests = vec![request("i-1", (5 * H, 15 * H)), request("i-2", (5 * H, 15 * H))];
        HeldSeries::of(Some(&previous), 5 * H).narrow("us-east-1", &mut requests);
        assert_eq!(requests[0].window, (12 * H, 15 * H));
        assert_eq!(requests[1].window, (5 * H, 15 * H));
        // The previous window (10 hours up to 13 h) started at 3 h: a window from 1 h needs
        // hours it never asked for.
        let longer = HeldSeries::of(Some(&previous), H);
        assert!(longer.is_empty());
        let mut requests = vec![request("i-1", (H, 15 * H))];
        longer.narrow("us-east-1", &mut requests);
        assert_eq!(requests[0].window, (H, 15 * H));
        assert!(matches!(previous.scope.completeness, Completeness::Partial { .. }));
    }

    #[test]
    fn merging_keeps_the_window_lets_the_newer_value_win_and_loses_nothing_held() {
        let previous = world(
            &["i-1"],
            vec![series(
                "i-1",
                "us-east-1",
                &[(4 * H, 9.0), (10 * H, 1.0), (11 * H, 2.0), (12 * H, 3.0)],
            )],
            13,
            Vec::new(),
        );
        let held = HeldSeries::of(Some(&previous), 5 * H);
        // The window moved on: the point at 4 h falls out of it.
        let mut requests = vec![request("i-1", (5 * H, 15 * H))];
        let full = held.narrow("us-east-1", &mut requests);
        // A late point changed 12 h; 13 h and 14 h are new; 11 h is held, not asked again.
        let fetched = vec![series(
            "i-1",
            "us-east-1",
            &[(12 * H, 3.5), (13 * H, 4.0), (14 * H, 5.0)],
        )];
        let merged = held.merge("us-east-1", &requests, &full, fetched);
        assert_eq!(merged.len(), 1);
        assert_eq!(merged[0].timestamps, [10 * H, 11 * H, 12 * H, 13 * H, 14 * H]);
        assert_eq!(merged[0].values, [1.0, 2.0, 3.5, 4.0, 5.0]);
        // Nothing answered: what is held stays, cut to the window.
        let merged = held.merge("us-east-1", &requests, &full, Vec::new());
        assert_eq!(merged[0].timestamps, [10 * H, 11 * H, 12 * H]);
    }

    #[test]
    fn without_a_previous_capture_every_answer_is_taken_as_it_is() {
        let nothing = HeldSeries::of(None, 0);
        assert!(nothing.is_empty());
        let mut requests = vec![request("i-1", (5 * H, 15 * H))];
        let full = nothing.narrow("us-east-1", &mut requests);
        assert_eq!(requests[0].window, (5 * H, 15 * H));
        let fresh = series("i-1", "us-east-1", &[(11 * H, 7.0)]);
        let merged = nothing.merge("us-east-1", &requests, &full, vec![fresh.clone()]);
        assert_eq!(merged, [fresh]);
        assert!(nothing.merge("us-east-1", &requests, &full, Vec::new()).is_empty());
    }
}
