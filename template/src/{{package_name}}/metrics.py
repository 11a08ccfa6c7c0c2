"""The model server's Prometheus metrics (GET /metrics): one registry per app, no global state."""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)


class ServerMetrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self, capture=None) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("model_requests", "Prediction requests by route and status",
                                ["route", "status"], registry=self.registry)
        self.latency = Histogram("model_request_seconds", "Prediction request latency", ["route"],
                                 buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
                                 registry=self.registry)
        self.batch_size = Histogram("model_batch_rows", "Rows per predict call",
                                    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 1024, 10_000), registry=self.registry)
        self.rows = Counter("model_rows_predicted", "Rows predicted", registry=self.registry)
        self.in_flight = Gauge("model_requests_in_flight", "Requests being served", registry=self.registry)
        if capture is not None:  # read when scraped: the writer thread keeps the counts
            Gauge("model_capture_rows_written", "Captured rows written", registry=self.registry
                  ).set_function(lambda: capture.written)
            Gauge("model_capture_requests_dropped", "Requests not captured (queue full or write error)",
                  registry=self.registry).set_function(lambda: capture.dropped)

    def request(self, route: str, status: int, seconds: float, rows: int) -> None:
        self.requests.labels(route, str(status)).inc()
        self.latency.labels(route).observe(seconds)
        if rows:
            self.rows.inc(rows)

    def batch(self, rows: int) -> None:
        self.batch_size.observe(rows)

    def render(self) -> bytes:
        return generate_latest(self.registry)
