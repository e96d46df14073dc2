//! Small conversions from SDK shapes to the world model.

use chrono::{DateTime, NaiveDateTime, Utc};

use crate::assessment::secrets;
use crate::world::Tags;

pub(super) fn time(t: Option<&aws_smithy_types::DateTime>) -> Option<DateTime<Utc>> {
    t.and_then(|t| DateTime::from_timestamp(t.secs(), t.subsec_nanos()))
}

/// The tags, with the value of each that looks like a credential replaced by `[redacted]`
/// (see [`crate::assessment::secrets::is_secret_tag`]): a world state never holds one.
pub(super) fn tags<'a>(pairs: impl IntoIterator<Item = (Option<&'a str>, Option<&'a str>)>) -> Tags {
    pairs
        .into_iter()
        .filter_map(|(k, v)| {
            let (key, value) = (k?, v.unwrap_or_default());
            let value = if secrets::is_secret_tag(key, value) {
                secrets::REDACTED
            } else {
                value
            };
            Some((key.to_owned(), value.to_owned()))
        })
        .collect()
}

/// Parses the time out of EC2's state-transition reason, for example
/// `User initiated (2024-01-15 10:30:00 GMT)`.
pub(super) fn stopped_since(reason: Option<&str>) -> Option<DateTime<Utc>> {
    let reason = reason?;
    let start = reason.find('(')? + 1;
    let end = reason[start..].find(" GMT)")? + start;
    NaiveDateTime::parse_from_str(&reason[start..end], "%Y-%m-%d %H:%M:%S")
        .ok()
        .map(|t| t.and_utc())
}

pub(super) use crate::world::partition;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_stop_time_from_the_transition_reason() {
        let t = stopped_since(Some("User initiated (2024-01-15 10:30:00 GMT)")).unwrap();
        assert_eq!(t.to_rfc3339(), "2024-01-15T10:30:00+00:00");
        assert_eq!(stopped_since(Some("")), None);
        assert_eq!(stopped_since(None), None);
    }
}
