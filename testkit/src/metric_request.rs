//! What a `GetMetricData` request asked for, read from its Smithy RPC v2 CBOR body, so that
//! tests can assert at the proxy which time range each series was asked over.

use std::collections::BTreeMap;

use ciborium::Value;

/// One `GetMetricData` request: its time range and the series of its queries.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricDataRequest {
    /// `StartTime`, Unix seconds.
    pub start: i64,
    /// `EndTime`, Unix seconds.
    pub end: i64,
    /// One entry per `MetricStat` query, in order.
    pub queries: Vec<QueriedSeries>,
}

/// The series one query names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct QueriedSeries {
    /// For example `AWS/EC2`.
    pub namespace: String,
    /// For example `CPUUtilization`.
    pub metric_name: String,
    /// Dimension name → value.
    pub dimensions: BTreeMap<String, String>,
}

fn field<'a>(map: &'a Value, name: &str) -> Option<&'a Value> {
    map.as_map()?
        .iter()
        .find(|(k, _)| k.as_text() == Some(name))
        .map(|(_, v)| v)
}

fn text(v: Option<&Value>) -> String {
    v.and_then(Value::as_text).unwrap_or_default().to_owned()
}

/// Epoch seconds of a CBOR timestamp (tag 1 over an integer or a float).
fn seconds(v: &Value) -> Option<i64> {
    let v = match v {
        Value::Tag(1, inner) => inner,
        other => other,
    };
    match v {
        Value::Integer(i) => i64::try_from(i128::from(*i)).ok(),
        #[allow(clippy::cast_possible_truncation)]
        Value::Float(f) => Some(f.floor() as i64),
        _ => None,
    }
}

/// Reads a `GetMetricData` body; `None` when it is not one.
#[must_use]
pub fn parse(body: &[u8]) -> Option<MetricDataRequest> {
    let root: Value = ciborium::from_reader(body).ok()?;
    let start = seconds(field(&root, "StartTime")?)?;
    let end = seconds(field(&root, "EndTime")?)?;
    let queries = field(&root, "MetricDataQueries")?
        .as_array()?
        .iter()
        .filter_map(|q| {
            let metric = field(field(q, "MetricStat")?, "Metric")?;
            let dimensions = field(metric, "Dimensions")
                .and_then(Value::as_array)
                .map(|dims| {
                    dims.iter()
                        .map(|d| (text(field(d, "Name")), text(field(d, "Value"))))
                        .collect()
                })
                .unwrap_or_default();
            Some(QueriedSeries {
                namespace: text(field(metric, "Namespace")),
                metric_name: text(field(metric, "MetricName")),
                dimensions,
            })
        })
        .collect();
    Some(MetricDataRequest { start, end, queries })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(entries: Vec<(&str, Value)>) -> Value {
        Value::Map(entries.into_iter().map(|(k, v)| (Value::Text(k.into()), v)).collect())
    }

    #[test]
    fn reads_the_range_and_the_series_of_each_query() {
        let dims = Value::Array(vec![map(vec![
            ("Name", Value::Text("InstanceId".into())),
            ("Value", Value::Text("i-1".into())),
        ])]);
        let query = map(vec![
            ("Id", Value::Text("q0".into())),
            (
                "MetricStat",
                map(vec![
                    (
                        "Metric",
                        map(vec![
                            ("Namespace", Value::Text("AWS/EC2".into())),
                            ("MetricName", Value::Text("CPUUtilization".into())),
                            ("Dimensions", dims),
                        ]),
                    ),
                    ("Period", Value::Integer(3600.into())),
                ]),
            ),
        ]);
        let body = map(vec![
            ("StartTime", Value::Tag(1, Box::new(Value::Float(7200.0)))),
            ("EndTime", Value::Tag(1, Box::new(Value::Integer(10_800.into())))),
            ("MetricDataQueries", Value::Array(vec![query])),
        ]);
        let mut bytes = Vec::new();
        ciborium::into_writer(&body, &mut bytes).unwrap();
        let parsed = parse(&bytes).expect("a GetMetricData body");
        assert_eq!((parsed.start, parsed.end), (7200, 10_800));
        assert_eq!(parsed.queries.len(), 1);
        assert_eq!(parsed.queries[0].metric_name, "CPUUtilization");
        assert_eq!(parsed.queries[0].dimensions["InstanceId"], "i-1");
        assert!(parse(b"not cbor").is_none());
    }
}
