"""akri.metrics_registry: the exposition is judged by prometheus_client's own text parser (an
independent implementation), plus escaping, histogram maths, child removal and the process
series read from /proc. The HTTP side (akri.metrics_server) is tested over a real socket."""

from __future__ import annotations

import asyncio
import math
import os
import re
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from akri.metrics_registry import (
    CONTENT_TYPE,
    Counter,
    Family,
    Gauge,
    Histogram,
    Registry,
    format_value,
    with_process_metrics,
)
from akri.metrics_server import MetricsServer


def parse(registry: Registry) -> dict[str, object]:
    """Families by name, as prometheus_client's parser reads our text."""
    return {f.name: f for f in text_string_to_metric_families(registry.render().decode())}


def values(family: object) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for s in family.samples}  # type: ignore[attr-defined]


def test_counter_gauge_histogram_read_back_by_prometheus_parser() -> None:
    registry = Registry()
    requests = Counter("requests", "Requests served", ["code"], registry=registry)
    temperature = Gauge("temperature_celsius", "Current temperature", registry=registry)
    latency = Histogram("latency_seconds", "Latency", ["path"], registry=registry, buckets=(0.1, 1, 10))
    requests.labels("200").inc()
    requests.labels("200").inc(2.5)
    requests.labels("500").inc()
    temperature.set(21.5)
    temperature.dec(0.5)
    latency.labels("/a").observe(0.05)
    latency.labels("/a").observe(5)

    families = parse(registry)
    assert families["requests"].type == "counter"
    assert families["requests"].documentation == "Requests served"
    assert values(families["requests"]) == {("requests_total", (("code", "200"),)): 3.5,
                                             ("requests_total", (("code", "500"),)): 1.0}
    assert families["temperature_celsius"].type == "gauge"
    assert values(families["temperature_celsius"]) == {("temperature_celsius", ()): 21.0}
    assert families["latency_seconds"].type == "histogram"
    got = values(families["latency_seconds"])
    path = (("path", "/a"),)
    assert got[("latency_seconds_bucket", (("le", "0.1"), *path))] == 1
    assert got[("latency_seconds_bucket", (("le", "1.0"), *path))] == 1
    assert got[("latency_seconds_bucket", (("le", "10.0"), *path))] == 2
    assert got[("latency_seconds_bucket", (("le", "+Inf"), *path))] == 2
    assert got[("latency_seconds_count", path)] == 2
    assert got[("latency_seconds_sum", path)] == 5.05


def test_text_layout_help_type_total_and_no_created() -> None:
    registry = Registry()
    Counter("jobs_total", "Jobs done", registry=registry).inc()  # `_total` is not doubled
    text = registry.render().decode()
    assert text == ("# HELP jobs_total Jobs done\n"
                    "# TYPE jobs_total counter\n"
                    "jobs_total 1.0\n")
    assert "_created" not in text
    assert CONTENT_TYPE == "text/plain; version=0.0.4; charset=utf-8"


def test_labelled_metric_without_children_shows_only_its_header_and_unlabelled_shows_zero() -> None:
    registry = Registry()
    Counter("errors", "Errors", ["kind"], registry=registry)
    Gauge("up", "Up", registry=registry)
    families = parse(registry)
    assert families["errors"].samples == []
    assert values(families["up"]) == {("up", ()): 0.0}


# the parser reads HELP as whitespace-separated fields, so help text is taken without edge whitespace
@given(st.text(), st.text().map(str.strip))
def test_label_values_and_help_escape_round_trip(value: str, help_text: str) -> None:
    registry = Registry()
    Gauge("g", help_text, ["v"], registry=registry).labels(value).set(1)
    (family,) = text_string_to_metric_families(registry.render().decode())
    assert family.documentation == help_text
    assert family.samples[0].labels == {"v": value}


def test_escaping_is_exactly_backslash_quote_newline() -> None:
    registry = Registry()
    Gauge("g", 'help with \\ and\nnewline and "quotes"', ["v"], registry=registry).labels('a\\b"c\nd').set(1)
    lines = registry.render().decode().splitlines()
    assert lines[0] == '# HELP g help with \\\\ and\\nnewline and "quotes"'
    assert lines[2] == 'g{v="a\\\\b\\"c\\nd"} 1.0'


def test_histogram_buckets_are_cumulative_upper_inclusive() -> None:
    registry = Registry()
    h = Histogram("h", "H", registry=registry, buckets=(1, 2, 5))
    for v in (0.5, 1, 1.5, 2, 2.0001, 5, 7, -3):
        h.observe(v)
    got = {s.labels["le"]: s.value for s in parse(registry)["h"].samples if s.name == "h_bucket"}
    # le=1 holds -3, 0.5, 1 (bounds are inclusive); le=2 adds 1.5, 2; le=5 adds 2.0001, 5; +Inf adds 7
    assert got == {"1.0": 3, "2.0": 5, "5.0": 7, "+Inf": 8}
    samples = values(parse(registry)["h"])
    assert samples[("h_count", ())] == 8
    assert samples[("h_sum", ())] == pytest.approx(0.5 + 1 + 1.5 + 2 + 2.0001 + 5 + 7 - 3)


@given(st.lists(st.floats(allow_nan=False, allow_infinity=False, min_value=-1e6, max_value=1e6)))
def test_histogram_bucket_counts_match_a_direct_count(observations: list[float]) -> None:
    bounds = (0.25, 0.5, 1, 1.5, 2, 3, 5, 10, 60)
    registry = Registry()
    h = Histogram("h", "H", registry=registry, buckets=bounds)
    for v in observations:
        h.observe(v)
    got = {s.labels["le"]: s.value for s in parse(registry)["h"].samples if s.name == "h_bucket"}
    expected = {format_value(b): sum(1 for v in observations if v <= b) for b in bounds}
    expected["+Inf"] = len(observations)
    assert got == expected


def test_histogram_rejects_unsorted_buckets_and_le_label() -> None:
    with pytest.raises(ValueError, match="buckets"):
        Histogram("h", "H", buckets=(2, 1))
    with pytest.raises(ValueError, match="le"):
        Histogram("h", "H", ["le"])


def test_bad_names_and_label_counts_are_named_in_the_error() -> None:
    with pytest.raises(ValueError, match="metric name '1bad'"):
        Gauge("1bad", "x")
    with pytest.raises(ValueError, match="label name 'a-b'"):
        Gauge("g", "x", ["a-b"])
    g = Gauge("g", "x", ["a", "b"])
    with pytest.raises(ValueError, match="metric g: expected label values for \\['a', 'b'\\], got 1"):
        g.labels("only-one")
    with pytest.raises(ValueError, match="only goes up"):
        Counter("c", "x").inc(-1)


def test_removed_child_disappears_and_others_stay() -> None:
    registry = Registry()
    g = Gauge("slots", "Slots", ["instance"], registry=registry)
    g.labels("a").set(1)
    g.labels("b").set(2)
    g.remove("a")
    g.remove("never-there")  # not an error: the caller forgets what went away
    assert values(parse(registry)["slots"]) == {("slots", (("instance", "b"),)): 2.0}
    g.clear()
    assert parse(registry)["slots"].samples == []
    g.labels("a").set(3)  # a child created again starts from zero
    g.labels("a").inc()
    assert values(parse(registry)["slots"]) == {("slots", (("instance", "a"),)): 4.0}


def test_scrape_time_families_from_collectors() -> None:
    cache = {"x": 2}

    class CacheCollector:
        def collect(self) -> list[Family]:
            family = Family.gauge("cached", "From a cache", ["key"])
            for key, n in cache.items():
                family.add([key], n)
            return [family]

    registry = Registry()
    registry.register(CacheCollector())
    assert values(parse(registry)["cached"]) == {("cached", (("key", "x"),)): 2.0}
    cache.clear()
    assert parse(registry)["cached"].samples == []


def test_special_values() -> None:
    assert format_value(math.inf) == "+Inf"
    assert format_value(-math.inf) == "-Inf"
    assert format_value(math.nan) == "NaN"
    assert format_value(3) == "3.0"
    registry = Registry()
    Gauge("g", "x", registry=registry).set(math.nan)
    assert math.isnan(parse(registry)["g"].samples[0].value)


def vm_rss_bytes() -> int:
    with open("/proc/self/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+) kB", f.read()).group(1)) * 1024  # type: ignore[union-attr]


def test_process_metrics_are_plausible() -> None:
    registry = with_process_metrics()
    families = parse(registry)
    sample = {name: f.samples[0].value for name, f in families.items() if not f.samples[0].labels}
    rss = sample["process_resident_memory_bytes"]
    assert 0 < rss and 0.5 < rss / vm_rss_bytes() < 2
    assert sample["process_virtual_memory_bytes"] >= rss
    assert families["process_cpu_seconds"].type == "counter"
    assert families["process_cpu_seconds"].samples[0].name == "process_cpu_seconds_total"
    cpu = sample["process_cpu_seconds"]
    assert 0 < cpu <= sum(os.times()[:2]) + 0.05
    # the process started before now, and within the last day of this test run
    assert time.time() - 86400 < sample["process_start_time_seconds"] <= time.time()
    assert sample["process_open_fds"] == pytest.approx(len(os.listdir("/proc/self/fd")), abs=2)
    import resource

    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    assert sample["process_max_fds"] == (math.inf if soft == resource.RLIM_INFINITY else soft)
    assert families["python_info"].samples[0].labels["implementation"] == "CPython"


def test_process_metrics_follow_the_process_at_scrape_time() -> None:
    registry = with_process_metrics()
    before = parse(registry)["process_open_fds"].samples[0].value
    files = [open(os.devnull) for _ in range(5)]
    try:
        assert parse(registry)["process_open_fds"].samples[0].value == before + 5
    finally:
        for f in files:
            f.close()


def test_process_metrics_absent_without_proc(tmp_path) -> None:
    from akri.metrics_registry import ProcessCollector

    assert list(ProcessCollector(proc=str(tmp_path / "missing")).collect()) == []


async def http(port: int, request: bytes) -> tuple[str, dict[str, str], bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    raw = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    status, *headers = head.decode().split("\r\n")
    return status, dict(h.split(": ", 1) for h in headers), body


@pytest.mark.slow
async def test_metrics_server_serves_the_registry() -> None:
    registry = Registry()
    Counter("hits", "Hits", registry=registry).inc()
    server = MetricsServer(registry, "127.0.0.1", 0)
    await server.start()
    try:
        status, headers, body = await http(server.port, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        assert status == "HTTP/1.1 200 OK"
        assert headers["Content-Type"] == CONTENT_TYPE
        assert int(headers["Content-Length"]) == len(body)
        assert values(next(text_string_to_metric_families(body.decode()))) == {("hits_total", ()): 1.0}
        status, headers, body = await http(server.port, b"HEAD /metrics HTTP/1.1\r\n\r\n")
        assert status == "HTTP/1.1 200 OK" and body == b"" and int(headers["Content-Length"]) > 0
        assert (await http(server.port, b"GET /nope HTTP/1.1\r\n\r\n"))[0] == "HTTP/1.1 404 Not Found"
        status = (await http(server.port, b"POST /metrics HTTP/1.1\r\n\r\n"))[0]
        assert status == "HTTP/1.1 405 Method Not Allowed"
    finally:
        await server.stop()
