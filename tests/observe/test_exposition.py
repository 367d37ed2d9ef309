"""The cached text exposition writes exactly what prometheus_client's encoder writes."""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    Summary,
    generate_latest,
)
from prometheus_client.parser import text_string_to_metric_families

from headway.observe.exposition import TextExposition
from headway.observe.metrics import HttpMetrics, HubRegistry


def _same(exposition: TextExposition, registry: CollectorRegistry) -> bytes:
    ours, theirs = exposition.render(), generate_latest(registry)
    assert ours.decode() == theirs.decode()
    return ours


def test_every_kind_of_series_byte_for_byte_as_values_change() -> None:
    registry = CollectorRegistry()
    counter = Counter("a", 'doc \\ with "quotes"\nand a newline', ["x", "b"], registry=registry)
    gauge = Gauge("g", "gauge", ["q"], registry=registry)
    hist = Histogram("h", "hist", ["m"], registry=registry)
    negative = Histogram("hn", "negative bounds", buckets=(-1, 0, 1), registry=registry)
    summary = Summary("s", "summary", registry=registry)
    info = Info("i", "info", registry=registry)
    plain = Counter("u", "unlabelled", registry=registry)
    computed = Gauge("gf", "computed", registry=registry)
    computed.set_function(lambda: 3.5)
    Counter("empty", "no series yet", ["z"], registry=registry)
    exposition = TextExposition(registry)
    _same(exposition, registry)

    counter.labels('q"uo\\te\nnl', "ü ∑ x").inc(1e22)
    counter.labels("1", "2").inc(0.1)
    gauge.labels("a b").set(float("nan"))
    gauge.labels("c").set(-float("inf"))
    gauge.labels("d").set(1234567.0)
    hist.labels("GET").observe(0.3)
    negative.observe(-3)
    summary.observe(2)
    info.info({"version": "1"})
    plain.inc()
    _same(exposition, registry)
    for k in range(4):
        hist.labels("GET").observe(k)
        counter.labels("1", "2").inc(k)
        gauge.labels("c").set(k * 1e-9)
        _same(exposition, registry)

    counter.remove("1", "2")
    _same(exposition, registry)
    counter.labels("1", "2").inc()  # a new series under an old label set
    gauge.clear()
    body = _same(exposition, registry)
    names = {f.name for f in text_string_to_metric_families(body.decode())}
    assert {"a", "h", "hn", "s", "u", "gf"} <= names


def test_http_metrics_scrape_matches_the_encoder() -> None:
    registry = HubRegistry()
    http = HttpMetrics(registry)
    for i in range(20):
        http.observe("GET", f"/r{i}/{{item}}", 200, 0.001 * i, 10 * i)
    first, content_type = registry.expose()
    assert content_type.startswith("text/plain")
    assert first == generate_latest(registry)
    http.observe("GET", "/r3/{item}", 500, 2.0, 5)  # one series changes, one is new
    second, _ = registry.expose()
    assert second == generate_latest(registry)
    assert second != first
    assert 'http_requests_total{method="GET",route="/r3/{item}",status="500"} 1.0' in (
        second.decode()
    )


def test_openmetrics_scrape_matches_the_encoder() -> None:
    from prometheus_client.exposition import choose_encoder
    from prometheus_client.openmetrics.parser import (
        text_string_to_metric_families as parse_openmetrics,
    )

    registry = HubRegistry()
    http = HttpMetrics(registry)
    other = Histogram("jobs_seconds", "Job time.", ["queue"], registry=registry)
    other.labels("q").observe(0.2, {"trace_id": "abc"})  # an exemplar: the encoder's
    for accept in (
        "application/openmetrics-text",
        "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.3",
    ):
        for i in range(5):
            http.observe("GET", f'/r{i}/"{{item}}"', 200 + i, 0.01 * i, i)
            body, content_type = registry.expose(accept)
            encoder, expected_type = choose_encoder(accept)
            assert content_type == expected_type
            assert body.decode() == encoder(registry).decode()
    assert body.endswith(b"# EOF\n")
    names = {f.name for f in parse_openmetrics(body.decode())}
    assert {"http_requests", "http_request_duration_seconds", "jobs_seconds"} <= names
