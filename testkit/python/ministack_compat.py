"""ministack, with CloudWatch alarm evaluation scoped the way CloudWatch scopes it.

ministack 1.5.33 evaluates an alarm against the points of *every* series with the alarm's
namespace and metric name, whatever their dimensions, and re-evaluates every alarm of the
Region on each PutMetricData. An alarm on one instance's CPU therefore fires when any other
instance is busy, and with a thousand alarms each PutMetricData gathers every CPU point of the
Region once per alarm: hours of work at 2,000 instances, and wrong states at any size.

ministack also drops points older than two weeks from every series on every request, which
makes each request cost as much as the whole store (CloudWatch keeps hourly points 455 days).

This wrapper changes three things and nothing else:

- an alarm is evaluated on the one series its namespace, metric name and dimensions name;
- PutMetricData re-evaluates only the alarms whose series it wrote to;
- old points are dropped at most once a minute per account and Region.

The rest (thresholds, periods, state transitions, history, actions) is ministack's own code.

Usage: python ministack_compat.py   (same environment variables as `ministack`)
"""

import sys
import time

from ministack.app import main
from ministack.core.responses import get_account_id, get_region
from ministack.services import cloudwatch as cw

_evaluate_on_every_series = cw._evaluate_alarm
_store_datum = cw._store_datum
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

if __name__ == "__main__":
    sys.exit(main())
