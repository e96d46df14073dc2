"""ministack, with CloudWatch alarm evaluation scoped the way CloudWatch scopes it.

ministack 1.5.33 evaluates an alarm against the points of *every* series with the alarm's
namespace and metric name, whatever their dimensions, and re-evaluates every alarm of the
Region on each PutMetricData. An alarm on one instance's CPU therefore fires when any other
instance is busy, and with a thousand alarms each PutMetricData gathers every CPU point of the
Region once per alarm: hours of work at 2,000 instances, and wrong states at any size.

ministack also drops points older than two weeks from every series on every request, which
makes each request cost as much as the whole store (CloudWatch keeps hourly points 455 days).

GetMetricData walks every stored series, of every account and Region, once per query: a call
of 300 queries against 10,000 instances' 30,000 series makes 9 million steps before it reads
a point, so the emulator, not CloudWatch's quota, bounds a lookback.

This wrapper changes five things and nothing else:

- an alarm is evaluated on the one series its namespace, metric name and dimensions name;
- PutMetricData re-evaluates only the alarms whose series it wrote to;
- old points are dropped at most once a minute per account and Region;
- GetMetricData looks up the series its queries name instead of walking the store (a call
  with a query that names no dimensions, or in the Query protocol, still walks it);
- the CBOR encoding of a timestamp, which ministack formats as text and parses back with
  strptime for every datapoint returned (most of a large answer's time), is remembered per text.

The rest (thresholds, periods, state transitions, history, actions, statistics, encodings)
is ministack's own code. ListMetrics still walks the whole store once per call.

Usage: python ministack_compat.py   (same environment variables as `ministack`)
"""

import functools
import sys
import time

from ministack.app import main
from ministack.core.responses import get_account_id, get_region
from ministack.services import cloudwatch as cw

_evaluate_on_every_series = cw._evaluate_alarm
_get_metric_data_from_every_series = cw._get_metric_data
_store_datum = cw._store_datum
_cbor_timestamp = cw._cbor_timestamp
# A CBORTag is never changed once built, so one per timestamp text can be shared by answers.
_cbor_timestamp_of_text = functools.lru_cache(maxsize=1 << 16)(_cbor_timestamp)
_evict_old_metrics = cw._evict_old_metrics
EVICTION_INTERVAL_SECONDS = 60
# (account, Region) -> when its old points were last dropped.
_evicted_at = {}
# (account, Region) -> series keys written since their alarms were last evaluated.
_written = {}


def _alarm_series_key(alarm):
    dims = cw._dims_from_list(alarm.get("Dimensions") or [])
    return (alarm.get("Namespace"), alarm.get("MetricName"), cw._dims_key(dims))


def _evaluate_alarm(alarm):
    """ministack's evaluation, shown only the alarm's own series."""
    key = _alarm_series_key(alarm)
    points = cw._metrics.get(key)
    store = cw._metrics
    cw._metrics = {key: points} if points else {}
    try:
        _evaluate_on_every_series(alarm)
    finally:
        cw._metrics = store


def _asked_series(cbor_data):
    """The series keys of a CBOR or JSON GetMetricData call, read as ministack reads them, or
    None if a query names no dimensions (ministack then merges every series of the metric)."""
    keys = set()
    for q in cbor_data.get("MetricDataQueries", []):
        if q.get("Expression"):
            continue  # ministack answers it without the store
        metric = q.get("MetricStat", {}).get("Metric", {})
        dims = cw._dims_from_list(metric.get("Dimensions") or [])
        if not dims:
            return None
        keys.add((metric.get("Namespace", ""), metric.get("MetricName", ""), cw._dims_key(dims)))
    return keys


def _get_metric_data(params, cbor_data, is_cbor, is_json=False):
    """ministack's GetMetricData, shown only the series its queries name.

    Each query still walks the asked series (at most 500 per call), not the store. The Query
    protocol, which neither the Rust SDK nor boto3 speaks to CloudWatch, keeps the walk.
    """
    try:
        keys = _asked_series(cbor_data) if is_cbor or is_json else None
    except (AttributeError, TypeError):  # malformed: let ministack answer as it would
        keys = None
    if keys is None:
        return _get_metric_data_from_every_series(params, cbor_data, is_cbor, is_json)
    # Safe to swap the module's store: ministack's handle_request never awaits, and the app
    # awaits it on the event loop thread (worker threads schedule handlers onto that loop),
    # so no other request runs until it is restored. Only record_metric, which Lambda and
    # load balancers call on worker threads, could write meanwhile (into the swapped dict,
    # and be lost); the test kit sends ministack nothing but CloudWatch.
    store = cw._metrics
    cw._metrics = {k: pts for k in keys if (pts := store.get(k)) is not None}
    try:
        return _get_metric_data_from_every_series(params, cbor_data, is_cbor, is_json)
    finally:
        cw._metrics = store


def _cbor_timestamp_remembered(value):
    if isinstance(value, str):
        return _cbor_timestamp_of_text(value)
    return _cbor_timestamp(value)


def _store_datum_noting_series(namespace, name, dims, *rest):
    _store_datum(namespace, name, dims, *rest)
    scope = (get_account_id(), get_region())
    _written.setdefault(scope, set()).add((namespace, name, cw._dims_key(dims)))


def _evaluate_alarms_on_written_series():
    written = _written.pop((get_account_id(), get_region()), set())
    for alarm in list(cw._alarms.values()):
        if _alarm_series_key(alarm) in written:
            try:
                _evaluate_alarm(alarm)
            except Exception:  # ministack's own loop logs and goes on, too
                cw.logger.debug("alarm eval error", exc_info=True)


def _evict_old_metrics_now_and_then():
    scope = (get_account_id(), get_region())
    now = time.monotonic()
    if now - _evicted_at.get(scope, float("-inf")) >= EVICTION_INTERVAL_SECONDS:
        _evicted_at[scope] = now
        _evict_old_metrics()


cw._evaluate_alarm = _evaluate_alarm
cw._evict_old_metrics = _evict_old_metrics_now_and_then
cw._store_datum = _store_datum_noting_series
cw._evaluate_all_alarms = _evaluate_alarms_on_written_series
cw._get_metric_data = _get_metric_data
cw._cbor_timestamp = _cbor_timestamp_remembered

if __name__ == "__main__":
    sys.exit(main())
