"""The Grafana dashboard (docs/grafana/vis-pipeline.json) asks only for metrics that exist.

Every PromQL expression is taken apart: its metric names must be declared in
``vis_pipeline.metrics.METRICS`` (a histogram as ``_bucket``/``_sum``/``_count``), the labels it
groups or filters by must be labels of those metrics (or ``le``/``instance``/``job``), counters
are read through ``rate``/``increase`` and gauges never are; every panel has a title, a unit and
the ``${DS_PROMETHEUS}`` datasource, and the panels do not overlap.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from vis_pipeline.metrics import METRICS

DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana" / "vis-pipeline.json"
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
#: labels Prometheus adds to every scraped sample, and a histogram bucket's bound
TARGET_LABELS = {"instance", "job"}
#: PromQL words that are not metric names
PROMQL_WORDS = {
    "sum", "min", "max", "avg", "count", "topk", "bottomk", "quantile", "stddev", "group",
    "rate", "irate", "increase", "delta", "deriv", "histogram_quantile", "time", "abs",
    "clamp_min", "clamp_max", "max_over_time", "min_over_time", "avg_over_time", "absent",
    "label_replace", "by", "without", "on", "ignoring", "group_left", "group_right", "bool",
    "and", "or", "unless", "offset", "vector", "scalar", "changes", "resets",
}  # fmt: skip
#: what an operator of a camera fleet needs on the dashboard
REQUIRED = {
    "vis_stream_frames_processed_total",
    "vis_stream_keyframes_total",
    "vis_stream_frames_dropped_total",
    "vis_stream_corrupt_frames_total",
    "vis_stream_reconnects_total",
    "vis_stream_latency_seconds",
    "vis_stream_stage_seconds",
    "vis_stream_tracks_active",
    "vis_detector_seconds_total",
    "vis_detector_calls_total",
    "vis_sink_records_sent_total",
    "vis_sink_records_failed_total",
    "vis_sink_records_pending",
    "vis_sink_blocked_seconds_total",
    "vis_worker_jobs_running",
    "vis_worker_jobs_finished_total",
    "vis_worker_last_checkpoint_age_seconds",
    "vis_up",
}


def declared(name: str) -> str | None:
    """The declared metric a scraped series name belongs to (None: not declared)."""
    if name in METRICS and METRICS[name].kind != "histogram":
        return name
    for suffix in HISTOGRAM_SUFFIXES:
        base = name.removesuffix(suffix)
        if base != name and base in METRICS and METRICS[base].kind == "histogram":
            return base
    return None


def parse_expr(expr: str) -> tuple[list[str], set[str]]:
    """(series names, label names grouped or filtered by) of one PromQL expression."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # label values and regexes
    text = re.sub(r"\[[^\]]*\]", "", text)  # range durations, $__rate_interval
    labels: set[str] = set()
    for group in re.findall(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)", text):
        labels |= {x.strip() for x in group.split(",") if x.strip()}
    text = re.sub(r"\b(?:by|without|on|ignoring)\s*\([^)]*\)", " ", text)
    for matchers in re.findall(r"\{([^}]*)\}", text):
        labels |= set(re.findall(r"([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)", matchers))
    text = re.sub(r"\{[^}]*\}", " ", text)
    words = re.findall(r"(?<![\w.$])[A-Za-z_:][\w:]*", text)
    return [w for w in words if w not in PROMQL_WORDS], labels


def problems(expr: str) -> list[str]:
    """What is wrong with one expression (empty: nothing)."""
    names, labels = parse_expr(expr)
    if not names:
        return [f"{expr!r}: no metric"]
    out = []
    allowed = set(TARGET_LABELS)
    for name in names:
        base = declared(name)
        if base is None:
            out.append(f"{name}: not in vis_pipeline.metrics.METRICS")
            continue
        spec = METRICS[base]
        allowed |= set(spec.labels) | ({"le"} if name.endswith("_bucket") else set())
        wrapped = len(re.findall(rf"\b(?:rate|irate|increase)\(\s*{name}\b", expr))
        uses = len(re.findall(rf"\b{name}\b", expr))
        if (spec.kind == "counter" or base != name) and wrapped < uses:
            out.append(f"{name}: a counter read without rate() or increase()")
        if spec.kind == "gauge" and wrapped:
            out.append(f"{name}: a gauge read through rate() or increase()")
    out += [f"{expr!r}: label {label!r} is no label of its metrics" for label in labels - allowed]
    return out


def panels() -> list[dict]:
    return [p for p in json.loads(DASHBOARD.read_text())["panels"] if p["type"] != "row"]


def test_every_expression_asks_for_declared_metrics_and_labels():
    exprs = [t["expr"] for p in panels() for t in p["targets"]]
    assert len(exprs) >= 14
    assert [msg for expr in exprs for msg in problems(expr)] == []


def test_every_required_metric_is_on_the_dashboard():
    shown = {declared(n) for p in panels() for t in p["targets"] for n in parse_expr(t["expr"])[0]}
    assert REQUIRED - shown == set()


@pytest.mark.parametrize(
    ("expr", "complaint"),
    [
        ("sum(rate(vis_stream_frames_total[5m]))", "not in vis_pipeline"),
        ("rate(vis_stream_latency_seconds[5m])", "not in vis_pipeline"),  # needs _bucket
        ("histogram_quantile(0.5, rate(vis_stream_keyframes_total_bucket[1m]))", "not in"),
        ("sum by (stream) (vis_sink_records_pending)", "label 'stream'"),
        ('vis_stream_tracks_active{camera="a"}', "label 'camera'"),
        ("vis_stream_keyframes_total", "without rate()"),
        ("rate(vis_stream_tracks_active[5m])", "a gauge read through"),
        ("time()", "no metric"),
    ],
)
def test_the_check_catches_a_wrong_expression(expr, complaint):
    assert any(complaint in msg for msg in problems(expr)), problems(expr)


def test_the_check_passes_histogram_quantile_and_division():
    expr = (
        "histogram_quantile(0.95, sum by (le, stage) (rate(vis_stream_stage_seconds_bucket"
        '{stream=~"$stream"}[$__rate_interval]))) / sum by (instance) '
        "(rate(vis_detector_calls_total[5m]))"
    )
    assert parse_expr(expr) == (
        ["vis_stream_stage_seconds_bucket", "vis_detector_calls_total"],
        {"le", "stage", "stream", "instance"},
    )


def test_every_panel_has_a_title_a_unit_and_the_datasource_variable():
    for panel in panels():
        assert panel.get("title"), panel["id"]
        assert panel["fieldConfig"]["defaults"].get("unit"), panel["title"]
        assert panel["datasource"] == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
        refs = [t["refId"] for t in panel["targets"]]
        assert refs and len(set(refs)) == len(refs), panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${DS_PROMETHEUS}", panel["title"]
            assert target.get("legendFormat"), panel["title"]


def test_the_variables_and_the_layout():
    dash = json.loads(DASHBOARD.read_text())
    assert 36 <= dash["schemaVersion"] <= 41
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert variables["DS_PROMETHEUS"]["type"] == "datasource"
    assert variables["DS_PROMETHEUS"]["query"] == "prometheus"
    stream = variables["stream"]
    assert stream["query"]["query"] == "label_values(vis_stream_frames_processed_total, stream)"
    assert "stream" in METRICS["vis_stream_frames_processed_total"].labels
    ids = [p["id"] for p in dash["panels"]]
    assert len(set(ids)) == len(ids)
    cells: set[tuple[int, int]] = set()
    for p in dash["panels"]:
        g = p["gridPos"]
        assert 0 <= g["x"] and g["x"] + g["w"] <= 24, p["title"]
        mine = {
            (x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])
        }
        assert not cells & mine, f"{p['title']} overlaps another panel"
        cells |= mine
