"""Prometheus metrics: one registry per service, served on its own port
(`CONTACTPOINT_<SERVICE>_METRICS_LISTEN`; off when empty), over HTTPS with the service's own
certificate when it serves TLS.

Every service gets the RPC metrics from the interceptor (requests by method and status code,
latency, in flight) and token verifications; a service adds its own with `counter`, `gauge` and
`histogram` (audit's tree size and batch sizes, records' review queue, the gateway's refusals)
and `watch_database` for its connection pool. Nothing here carries a child's data: labels are
method names, status codes and fixed words.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine
from sqlalchemy.pool import QueuePool

from contactpoint.platform.settings import ServiceSettings

# Seconds: from a cached read (a millisecond) to a slow stream batch.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """One service's metrics."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = self.counter(
            "contactpoint_rpc_requests", "RPCs answered, by method and gRPC status code", ("method", "code")
        )
        self.latency = self.histogram(
            "contactpoint_rpc_duration_seconds",
            "time to answer an RPC, by method",
            ("method",),
            LATENCY_BUCKETS,
        )
        self.in_flight = self.gauge("contactpoint_rpc_in_flight", "RPCs being answered now")
        self.token_verifications = self.counter(
            "contactpoint_token_verifications",
            "bearer tokens verified, by result (valid, refused)",
            ("result",),
        )
        self.tokens_valid = self.token_verifications.labels("valid")
        self.tokens_refused = self.token_verifications.labels("refused")
        # Bound children by method: a label lookup per RPC would cost more than the count itself.
        self._by_method: dict[str, tuple[Any, str, dict[grpc.StatusCode, Any]]] = {}

    def counter(self, name: str, doc: str, labels: Sequence[str] = ()) -> Counter:
        """A counter of this service (`_total` is added to its name)."""
        return Counter(name, doc, labels, registry=self.registry)

    def gauge(self, name: str, doc: str, labels: Sequence[str] = ()) -> Gauge:
        """A gauge of this service."""
        return Gauge(name, doc, labels, registry=self.registry)

    def histogram(
        self, name: str, doc: str, labels: Sequence[str] = (), buckets: Sequence[float] = LATENCY_BUCKETS
    ) -> Histogram:
        """A histogram of this service."""
        return Histogram(name, doc, labels, buckets=buckets, registry=self.registry)

    def gauge_of(self, name: str, doc: str, read: Callable[[], float]) -> None:
        """A gauge read when scraped (`read` runs in the scrape's thread: keep it cheap). When it
        fails (its database is down) the gauge is NaN and the other metrics are still served."""

        def safe() -> float:
            try:
                return float(read())
            except Exception:
                return math.nan

        self.gauge(name, doc).set_function(safe)

    def watch_database(self, *engines: Engine) -> None:
        """Connections of `engines`' pools: checked out now, and the pools' size."""
        self.registry.register(_PoolCollector(engines))

    def answered(self, method: str, code: grpc.StatusCode, seconds: float) -> None:
        """One RPC answered."""
        bound = self._by_method.get(method)
        if bound is None:
            name = method.rsplit("/", 1)[-1]
            bound = self._by_method[method] = (self.latency.labels(name), name, {})
        latency, name, codes = bound
        latency.observe(seconds)
        counter = codes.get(code)
        if counter is None:
            counter = codes[code] = self.requests.labels(name, code.name)
        counter.inc()


class _PoolCollector(Collector):
    def __init__(self, engines: Sequence[Engine]) -> None:
        # Each pool once (a read engine may be the write engine's pool with other options).
        self._pools = list(dict.fromkeys(engine.pool for engine in engines))

    def collect(self) -> Any:
        out = GaugeMetricFamily(
            "contactpoint_db_connections_checked_out", "database connections in use now", labels=("pool",)
        )
        size = GaugeMetricFamily("contactpoint_db_pool_size", "connections the pool keeps", labels=("pool",))
        for n, pool in enumerate(self._pools):
            out.add_metric([str(n)], float(pool.checkedout()) if isinstance(pool, QueuePool) else 0.0)
            size.add_metric([str(n)], float(pool.size()) if isinstance(pool, QueuePool) else 1.0)
        yield out
        yield size


@dataclass
class MetricsServer:
    """The metrics endpoint of one service, while it runs."""

    port: int
    _server: Any
    _thread: threading.Thread

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def serve_metrics(metrics: Metrics, settings: ServiceSettings) -> MetricsServer | None:
    """Serve `metrics` on `settings.metrics_listen` (None when it is empty): HTTPS with the
    service's certificate when it serves TLS, asking for a client certificate when it does."""
    if not settings.metrics_listen:
        return None
    host, _, port = settings.metrics_listen.rpartition(":")
    tls: dict[str, Any] = {}
    if settings.tls_cert_file is not None:
        tls = {"certfile": str(settings.tls_cert_file), "keyfile": str(settings.tls_key_file)}
        if settings.tls_client_ca_file is not None:
            tls |= {"client_cafile": str(settings.tls_client_ca_file), "client_auth_required": True}
    server, thread = start_http_server(int(port), addr=host or "0.0.0.0", registry=metrics.registry, **tls)  # noqa: S104
    return MetricsServer(server.server_address[1], server, thread)
