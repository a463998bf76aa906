"""Prometheus metrics, read from the store at scrape time and served by the worker.

Why from the store: cycles run in Celery pool processes (and on several hosts), so counters
kept in one process's memory would show a fraction of the truth and reset on restart. The
`sync_runs` and `directories` rows are the record every process writes, so each scrape
derives the metrics from them; any worker's endpoint shows the same numbers.

    dirsync_cycles_total{directory,status}                 runs recorded, by final status
    dirsync_cycle_duration_seconds{directory}              histogram of finished cycles
    dirsync_operations_total{directory,action,outcome}     from the runs' sync_events
    dirsync_last_success_timestamp_seconds{directory}      Unix time of the last success; 0 for a
                                                           directory that never succeeded
    dirsync_quarantined{directory}                         1 while quarantined (S3)
    dirsync_consecutive_failures{directory}
    dirsync_overdue_seconds{directory}                     how late a due cycle is (0: on time)
    dirsync_staged_plans{directory}                        open staged plans awaiting a decision
    dirsync_rejections_total{directory,reason}             records refused, by reason
    dirsync_idp_requests_total{directory,code}             IdP requests by HTTP status code
    dirsync_idp_retries_total{directory}                   requests retried
    dirsync_idp_rate_limit_waits_total{directory}          waits for a rate limit to reset
    dirsync_idp_rate_limit_wait_seconds_total{directory}   seconds spent in those waits
    dirsync_worker_heartbeat_age_seconds{worker}           since each worker last reported
    dirsync_beat_heartbeat_age_seconds                     since beat last reported (absent: never)

The IdP series come from keys of each run's `counts` ("idp:requests:<code>", "idp:retries",
"idp:rate_limit_waits", "idp:rate_limit_wait_seconds"); they appear once a connector
reports them through its cycle's counts, and are absent until then.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString as _untyped_go_string

from config.settings import Settings
from service.status import DirectoryFact, Facts

if TYPE_CHECKING:
    from store import Store

log = logging.getLogger("dirsync.worker.metrics")

DURATION_BUCKETS: tuple[float, ...] = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600)

def _go_string(value: float) -> str:
    """A bucket bound as Prometheus writes it ("1.0", "+Inf")."""
    text: str = _untyped_go_string(value)  # type: ignore[no-untyped-call]
    return text


def families(facts: Facts) -> list[Metric]:
    """The metric families for `facts` (pure: the collector and the tests both use it)."""
    cycles = CounterMetricFamily("dirsync_cycles", "Cycles recorded, by final status", labels=["directory", "status"])
    ops = CounterMetricFamily(
        "dirsync_operations", "Operations by action and outcome", labels=["directory", "action", "outcome"]
    )
    duration = HistogramMetricFamily(
        "dirsync_cycle_duration_seconds", "Duration of finished cycles", labels=["directory"]
    )
    last_success = GaugeMetricFamily(
        "dirsync_last_success_timestamp_seconds", "Unix time of the last successful cycle", labels=["directory"]
    )
    quarantined = GaugeMetricFamily("dirsync_quarantined", "1 while the directory is quarantined", labels=["directory"])
    failures = GaugeMetricFamily(
        "dirsync_consecutive_failures", "Failed cycles since the last success", labels=["directory"]
    )
    for (directory, status), n in sorted(facts.cycles.items()):
        cycles.add_metric([directory, status], n)
    for (directory, action, outcome), n in sorted(facts.operations.items()):
        ops.add_metric([directory, action, outcome], n)
    for directory, values in sorted(facts.durations.items()):
        buckets = [(_go_string(b), float(sum(1 for v in values if v <= b))) for b in DURATION_BUCKETS]
        buckets.append(("+Inf", float(len(values))))
        duration.add_metric([directory], buckets, sum_value=sum(values))
    overdue = GaugeMetricFamily(
        "dirsync_overdue_seconds", "How late the due cycle is (0: on time)", labels=["directory"]
    )
    staged = GaugeMetricFamily(
        "dirsync_staged_plans", "Open staged plans awaiting approve or reject", labels=["directory"]
    )
    for d in facts.directories:
        # 0 for a directory that never succeeded: the series exists, so `time() - x > N` fires.
        last_success.add_metric([d.name], d.last_success_at.timestamp() if d.last_success_at else 0.0)
        quarantined.add_metric([d.name], 1.0 if d.quarantined else 0.0)
        failures.add_metric([d.name], float(d.consecutive_failures))
        overdue.add_metric([d.name], d.overdue_seconds)
        staged.add_metric([d.name], float(d.staged_plans))
    return [cycles, ops, duration, last_success, quarantined, failures, overdue, staged,
            *_rejection_and_idp_families(facts), *_heartbeat_families(facts)]


def _rejection_and_idp_families(facts: Facts) -> list[Metric]:
    rejections = CounterMetricFamily("dirsync_rejections", "Records refused, by reason", labels=["directory", "reason"])
    for (directory, reason), n in sorted(facts.rejections.items()):
        rejections.add_metric([directory, reason], n)
    requests = CounterMetricFamily(
        "dirsync_idp_requests", "IdP requests by HTTP status code", labels=["directory", "code"]
    )
    retries = CounterMetricFamily("dirsync_idp_retries", "IdP requests retried", labels=["directory"])
    waits = CounterMetricFamily("dirsync_idp_rate_limit_waits", "Waits for an IdP rate limit", labels=["directory"])
    waited = CounterMetricFamily(
        "dirsync_idp_rate_limit_wait_seconds", "Seconds spent waiting for IdP rate limits", labels=["directory"]
    )
    simple = {"retries": retries, "rate_limit_waits": waits, "rate_limit_wait_seconds": waited}
    for (directory, key), n in sorted(facts.idp.items()):
        if key.startswith("requests:"):
            requests.add_metric([directory, key[len("requests:"):]], n)
        elif key in simple:
            simple[key].add_metric([directory], n)
    return [rejections, requests, retries, waits, waited]


def _heartbeat_families(facts: Facts) -> list[Metric]:
    workers = GaugeMetricFamily(
        "dirsync_worker_heartbeat_age_seconds", "Seconds since each worker last reported", labels=["worker"]
    )
    for worker, age in sorted(facts.worker_heartbeat_ages.items()):
        workers.add_metric([worker], age)
    out: list[Metric] = [workers]
    if facts.beat_heartbeat_age is not None:
        out.append(GaugeMetricFamily(
            "dirsync_beat_heartbeat_age_seconds", "Seconds since beat last reported", value=facts.beat_heartbeat_age
        ))
    return out


class StoreCollector(Collector):
    """Collects `families(read())` on every scrape; a failed read yields nothing and logs."""

    def __init__(self, read: Callable[[], Facts]) -> None:
        self._read = read

    def collect(self) -> Iterator[Metric]:
        try:
            facts = self._read()
        except Exception:  # a scrape must never take the worker down
            log.exception("metrics: could not read the store")
            return iter(())
        return iter(families(facts))


def registry_for(read: Callable[[], Facts]) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(read))
    return registry


def serve(settings: Settings, port: int, *, store: Callable[[], Store], addr: str = "0.0.0.0") -> bool:
    """Serve the metrics on `port` in a background thread; False (logged) if the port is taken."""
    from service.status import metrics_facts

    registry = registry_for(lambda: metrics_facts(settings, store()))
    try:
        start_http_server(port, addr=addr, registry=registry)
    except OSError as exc:  # a second worker on the same host: the first one serves
        log.warning("metrics: port %d not available (%s); not serving metrics here", port, exc.strerror)
        return False
    log.info("metrics served on port %d", port)
    return True


def exposition(facts: Facts) -> bytes:
    """The text exposition of `facts` (what a scrape returns)."""
    from prometheus_client import generate_latest

    return generate_latest(registry_for(lambda: facts))


__all__ = ["DirectoryFact", "Facts", "exposition", "families", "serve"]
