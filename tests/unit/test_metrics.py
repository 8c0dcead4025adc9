"""Counters and histograms in the Prometheus text format."""

from __future__ import annotations

import threading

from stratus.api.metrics import BUCKETS, Metrics


def test_counters_add_up_per_label_set_whatever_the_label_order() -> None:
    metrics = Metrics()
    metrics.inc("stratus_rpc_calls_total", {"topic": "compute", "method": "spawn"})
    metrics.inc("stratus_rpc_calls_total", {"method": "spawn", "topic": "compute"}, 2)
    metrics.inc("stratus_rpc_calls_total", {"topic": "compute", "method": "stop"})
    assert metrics.value("stratus_rpc_calls_total", {"topic": "compute", "method": "spawn"}) == 3
    assert metrics.value("stratus_rpc_calls_total", {"topic": "compute", "method": "stop"}) == 1


def test_a_counter_never_incremented_reads_zero() -> None:
    assert Metrics().value("stratus_nothing_total", {"a": "b"}) == 0


def test_counters_render_with_help_and_type() -> None:
    metrics = Metrics()
    metrics.describe("stratus_http_requests_total", "HTTP requests answered.")
    metrics.inc("stratus_http_requests_total", {"route": "/v2.1/servers", "status": "200"})
    text = metrics.render()
    assert "# HELP stratus_http_requests_total HTTP requests answered.\n" in text
    assert "# TYPE stratus_http_requests_total counter\n" in text
    assert 'stratus_http_requests_total{route="/v2.1/servers",status="200"} 1\n' in text


def test_label_values_are_escaped() -> None:
    metrics = Metrics()
    metrics.inc("x_total", {"path": 'a"b\\c'})
    assert 'x_total{path="a\\"b\\\\c"} 1' in metrics.render()


def test_histogram_buckets_are_cumulative_with_sum_and_count() -> None:
    metrics = Metrics()
    for seconds in (0.0005, 0.003, 0.003, 0.2, 100.0):
        metrics.observe("stratus_rpc_call_seconds", {"topic": "t"}, seconds)
    lines = metrics.render().splitlines()
    assert "# TYPE stratus_rpc_call_seconds histogram" in lines
    buckets = {line.split('le="')[1].split('"')[0]: int(line.rsplit(" ", 1)[1])
               for line in lines if line.startswith("stratus_rpc_call_seconds_bucket")}
    assert buckets["0.001"] == 1
    assert buckets["0.0025"] == 1
    assert buckets["0.005"] == 3
    assert buckets["0.25"] == 4
    assert buckets[f"{BUCKETS[-1]:g}"] == 4
    assert buckets["+Inf"] == 5
    assert 'stratus_rpc_call_seconds_count{topic="t"} 5' in lines
    assert 'stratus_rpc_call_seconds_sum{topic="t"} 100.206500' in lines


def test_an_empty_registry_renders_a_newline() -> None:
    assert Metrics().render() == "\n"


def test_counts_from_many_threads_are_not_lost() -> None:
    metrics = Metrics()

    def work() -> None:
        for _ in range(2000):
            metrics.inc("n_total", {})

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert metrics.value("n_total", {}) == 16000
