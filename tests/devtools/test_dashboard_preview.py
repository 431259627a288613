"""The dashboard preview's PromQL evaluator agrees with Prometheus on hand-made scrapes."""

from __future__ import annotations

import json
import math

import pytest

from devtools.dashboard_preview import DASHBOARD, Parser, Store, evaluate, histogram_quantile


def store_of(*scrapes: tuple[float, str, str]) -> Store:
    """A store holding (time, instance, exposition text) scrapes."""
    store = Store(lookback_s=2.0)
    for t, instance, text in scrapes:
        store.add(t, instance, text)
    store.times = sorted({t for t, _, _ in scrapes})
    return store


def at(expr: str, store: Store, t: float, window_s: float = 2.0):
    return evaluate(Parser(expr, window_s).parse(), store, t)


COUNTER = '# TYPE f_total counter\nf_total{{stream="{s}"}} {v}\n'


def test_every_dashboard_expression_parses():
    dash = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    assert exprs
    for expr in exprs:
        Parser(expr.replace('"$stream"', '".*"'), 2.0).parse()


def test_rate_sums_across_a_counter_reset_and_aggregates_by_label():
    store = store_of(
        (0.0, "run", COUNTER.format(s="a", v=10) + 'f_total{stream="b"} 0\n'),
        (1.0, "run", COUNTER.format(s="a", v=20) + 'f_total{stream="b"} 5\n'),
        (2.0, "run", COUNTER.format(s="a", v=4) + 'f_total{stream="b"} 5\n'),  # a restarted
    )
    got = at("sum by (stream) (rate(f_total[3s]))", store, 2.0)
    assert got == {(("stream", "a"),): (10 + 4) / 2.0, (("stream", "b"),): 5 / 2.0}
    assert at("sum(increase(f_total[3s]))", store, 2.0) == {(): 19.0}
    assert at("sum(rate(f_total[3s])) / 2", store, 2.0) == {(): 4.75}


def test_a_single_sample_has_no_rate_and_an_old_gauge_is_gone():
    text = "# TYPE g gauge\ng 3\n" + COUNTER.format(s="a", v=1)
    store = store_of((0.0, "run", text))
    assert at("rate(f_total[2s])", store, 0.0) == {}
    assert at("max by (instance) (g)", store, 1.0) == {(("instance", "run"),): 3.0}
    assert at("max(g)", store, 5.0) == {}  # past the look-back: the process is gone


@pytest.mark.parametrize(
    ("q", "buckets", "want"),
    [
        (0.5, [(1.0, 0.0), (2.5, 10.0), (math.inf, 10.0)], 1.75),  # interpolated in (1, 2.5]
        (0.5, [(0.1, 4.0), (0.2, 8.0), (math.inf, 8.0)], 0.1),
        (0.95, [(0.1, 5.0), (math.inf, 10.0)], 0.1),  # in +Inf: the highest finite bound
        (0.5, [(0.1, 0.0), (math.inf, 0.0)], math.nan),  # nothing observed
    ],
)
def test_histogram_quantile_as_prometheus(q, buckets, want):
    got = histogram_quantile(q, buckets)
    assert (math.isnan(got) and math.isnan(want)) or got == pytest.approx(want)


def test_histogram_quantile_of_a_rate_by_label():
    def hist(n_fast: int, n_slow: int) -> str:
        return (
            "# TYPE lat_seconds histogram\n"
            f'lat_seconds_bucket{{stream="a",le="0.1"}} {n_fast}\n'
            f'lat_seconds_bucket{{stream="a",le="1.0"}} {n_fast + n_slow}\n'
            f'lat_seconds_bucket{{stream="a",le="+Inf"}} {n_fast + n_slow}\n'
            f'lat_seconds_count{{stream="a"}} {n_fast + n_slow}\n'
            f'lat_seconds_sum{{stream="a"}} 1.0\n'
        )

    store = store_of((0.0, "run", hist(0, 0)), (1.0, "run", hist(10, 10)))
    expr = "histogram_quantile(0.75, sum by (le, stream) (rate(lat_seconds_bucket[2s])))"
    got = at(expr, store, 1.0)
    assert got == {(("stream", "a"),): pytest.approx(0.1 + 0.9 * 0.5)}


def test_time_minus_a_timestamp_gauge():
    store = store_of((0.0, "run", "# TYPE ts gauge\nts 100\n"))
    store.epoch = 130.0
    assert at("time() - max(ts)", store, 1.0) == {(): 31.0}


def test_unsupported_promql_is_refused():
    with pytest.raises(ValueError):
        Parser("rate(f_total[5x])", 2.0).parse()
    with pytest.raises(ValueError):
        at("predict_linear(f_total[5m], 60)", store_of((0.0, "run", "")), 0.0)
