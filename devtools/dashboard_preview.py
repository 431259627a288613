"""Draw the Grafana dashboard's panels from a real, scraped run (no Grafana needed).

    python -m devtools.dashboard_preview [--out docs/operations_dashboard.png] [--jobs 3]

Contract: starts the embedded Kafka broker, a ``vis-pipeline worker`` serving ``/metrics``
(and submits ``--jobs`` short clips of the sample video to it) and the synthetic demo
(``configs/demo.yaml``: sample video -> demo model -> JSONL, overlay video and Kafka) with
``--metrics-port``; scrapes both ``/metrics`` endpoints every ``--every`` seconds over HTTP,
each on its own thread as Prometheus does (each target's samples get an ``instance`` label:
``run`` or ``worker``), and parses each scrape with ``prometheus_client``'s own parser. Once
the demo is 40 frames in, the broker is frozen for ``--pause-broker`` seconds (an outage;
nothing is lost). Then every panel's PromQL of ``docs/grafana/vis-pipeline.json`` is
evaluated every ``--every`` seconds with the small evaluator below, and the panels are drawn
in the dashboard's own layout into one PNG; each series' largest and last values, the
``/readyz`` reasons seen and the demo run's own summary are printed to compare.

The evaluator knows the PromQL the dashboard uses: selectors with label matchers and ranges;
``rate``, ``increase``, ``histogram_quantile``, ``time``; ``sum``/``min``/``max``/``avg``
``by``; arithmetic between vectors with identical labels and scalars. ``$__rate_interval``
stands for ``--window`` seconds; ``$stream`` matches every stream. Differences from
Prometheus: ``rate``/``increase`` do not extrapolate to the window's edges, and an instant
selector looks back 4 scrape intervals, not 5 minutes (a finished run's series vanish
promptly).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from devtools.broker import EmbeddedBroker, free_port
from devtools.workers import ROOT, WorkerProcess, worker_overrides, write_clips

DASHBOARD = ROOT / "docs" / "grafana" / "vis-pipeline.json"
JOBS_TOPIC = "dashboard.jobs"
Labels = tuple[tuple[str, str], ...]  # sorted (name, value) pairs
Vector = dict[Labels, float]


# -- the scraped series -----------------------------------------------------------------------
class Store:
    """Every scraped sample: ``series[(name, labels)] = [(t, value), ...]`` in time order."""

    def __init__(self, lookback_s: float) -> None:
        self.series: dict[tuple[str, Labels], list[tuple[float, float]]] = {}
        self.lookback_s = lookback_s
        self.times: list[float] = []  # when the panels are evaluated
        self.marks: list[tuple[float, float]] = []  # (start, end) of a broker outage
        self.lock = threading.Lock()
        self.epoch = time.time()  # the unix time of t = 0

    def add(self, t: float, instance: str, text: str) -> None:
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                labels = tuple(sorted({**s.labels, "instance": instance}.items()))
                self.series.setdefault((s.name, labels), []).append((t, float(s.value)))

    def select(self, name: str, match: Callable[[Labels], bool]) -> dict[Labels, list]:
        return {lab: pts for (n, lab), pts in self.series.items() if n == name and match(lab)}


# -- a small PromQL evaluator -----------------------------------------------------------------
_TOKEN = re.compile(
    r'\s*(?:(?P<num>\d+(?:\.\d+)?)|(?P<str>"[^"]*")|(?P<dur>\[[^\]]+\])'
    r"|(?P<id>[A-Za-z_:][A-Za-z0-9_:]*)|(?P<op>=~|!~|!=|[(){},=/*+-]))"
)
AGGREGATIONS = {"sum": sum, "min": min, "max": max, "avg": lambda v: sum(v) / len(v)}


@dataclasses.dataclass
class Node:
    """A parsed expression: ``kind`` is num, sel, call, agg or bin."""

    kind: str
    value: object = None
    args: list[Node] = dataclasses.field(default_factory=list)
    by: tuple[str, ...] = ()
    matchers: list[tuple[str, str, str]] = dataclasses.field(default_factory=list)
    range_s: float | None = None


def _duration(text: str, window_s: float) -> float:
    text = text.strip("[]").strip()
    if text == "$__rate_interval":
        return window_s
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)", text)
    if not m:
        raise ValueError(f"duration {text!r} is not supported")
    unit = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}[m[2]]
    return float(m[1]) * unit


class Parser:
    """Recursive descent over the PromQL subset of the module docstring."""

    def __init__(self, expr: str, window_s: float) -> None:
        self.window_s = window_s
        self.tokens: list[tuple[str, str]] = []
        pos = 0
        expr = expr.strip()
        while pos < len(expr):
            m = _TOKEN.match(expr, pos)
            if not m or m.end() == pos:
                raise ValueError(f"cannot parse {expr[pos:]!r}")
            kind = m.lastgroup or ""
            self.tokens.append((kind, m[kind]))
            pos = m.end()
        self.i = 0

    def peek(self) -> tuple[str, str]:
        return self.tokens[self.i] if self.i < len(self.tokens) else ("end", "")

    def take(self, text: str | None = None) -> str:
        kind, tok = self.peek()
        if text is not None and tok != text:
            raise ValueError(f"expected {text!r}, found {tok!r}")
        self.i += 1
        return tok

    def parse(self) -> Node:
        node = self.expr()
        if self.peek()[0] != "end":
            raise ValueError(f"unexpected {self.peek()[1]!r}")
        return node

    def expr(self) -> Node:
        node = self.term()
        while self.peek()[1] in ("+", "-"):
            node = Node("bin", self.take(), [node, self.term()])
        return node

    def term(self) -> Node:
        node = self.atom()
        while self.peek()[1] in ("*", "/"):
            node = Node("bin", self.take(), [node, self.atom()])
        return node

    def labels(self) -> tuple[str, ...]:
        self.take("(")
        names = []
        while self.peek()[1] != ")":
            names.append(self.take())
            if self.peek()[1] == ",":
                self.take()
        self.take(")")
        return tuple(names)

    def atom(self) -> Node:
        kind, tok = self.peek()
        if kind == "num":
            return Node("num", float(self.take()))
        if tok == "(":
            self.take()
            node = self.expr()
            self.take(")")
            return node
        if kind != "id":
            raise ValueError(f"unexpected {tok!r}")
        self.take()
        if tok in AGGREGATIONS:
            by: tuple[str, ...] = ()
            if self.peek()[1] == "by":
                self.take()
                by = self.labels()
            self.take("(")
            inner = self.expr()
            self.take(")")
            if self.peek()[1] == "by":
                self.take()
                by = self.labels()
            return Node("agg", tok, [inner], by=by)
        if self.peek()[1] == "(":
            self.take()
            args = [] if self.peek()[1] == ")" else [self.expr()]
            while self.peek()[1] == ",":
                self.take()
                args.append(self.expr())
            self.take(")")
            return Node("call", tok, args)
        node = Node("sel", tok)
        if self.peek()[1] == "{":
            self.take()
            while self.peek()[1] != "}":
                label, op, value = self.take(), self.take(), self.take()
                node.matchers.append((label, op, value.strip('"')))
                if self.peek()[1] == ",":
                    self.take()
            self.take("}")
        if self.peek()[0] == "dur":
            node.range_s = _duration(self.take(), self.window_s)
        return node


def _matcher(matchers: list[tuple[str, str, str]]) -> Callable[[Labels], bool]:
    def match(labels: Labels) -> bool:
        d = dict(labels)
        for label, op, want in matchers:
            have = d.get(label, "")
            ok = {
                "=": have == want,
                "!=": have != want,
                "=~": re.fullmatch(want, have) is not None,
                "!~": re.fullmatch(want, have) is None,
            }[op]
            if not ok:
                return False
        return True

    return match


def _delta(points: list[tuple[float, float]]) -> float:
    """A counter's increase over ``points``, across resets (a restarted process)."""
    total = 0.0
    for (_, a), (_, b) in zip(points, points[1:]):
        total += b - a if b >= a else b
    return total


def histogram_quantile(q: float, buckets: list[tuple[float, float]]) -> float:
    """Prometheus's ``histogram_quantile`` on one series' (upper bound, count) buckets."""
    buckets = sorted(buckets)
    if len(buckets) < 2 or not math.isinf(buckets[-1][0]) or buckets[-1][1] <= 0:
        return math.nan
    rank = q * buckets[-1][1]
    for i, (upper, count) in enumerate(buckets):
        if count >= rank:
            if math.isinf(upper):
                return buckets[-2][0]
            lower, below = (0.0, 0.0) if i == 0 else buckets[i - 1]
            if count == below:
                return upper
            return lower + (upper - lower) * (rank - below) / (count - below)
    return math.nan


def evaluate(node: Node, store: Store, t: float) -> Vector | float:
    """The value of ``node`` at time ``t``: a vector (labels -> value) or a scalar."""
    if node.kind == "num":
        return float(node.value)  # type: ignore[arg-type]
    if node.kind == "sel":
        raise ValueError(f"{node.value}: a range selector outside rate()/increase()")
    if node.kind == "call":
        fn = node.value
        if fn in ("rate", "increase"):
            sel = node.args[0]
            if sel.kind != "sel" or sel.range_s is None:
                raise ValueError(f"{fn}() needs a range selector")
            out: Vector = {}
            for labels, points in store.select(str(sel.value), _matcher(sel.matchers)).items():
                window = [(ts, v) for ts, v in points if t - sel.range_s < ts <= t]
                if len(window) < 2:
                    continue
                inc = _delta(window)
                out[labels] = inc / (window[-1][0] - window[0][0]) if fn == "rate" else inc
            return out
        if fn == "time":
            return store.epoch + t
        if fn == "histogram_quantile":
            q = evaluate(node.args[0], store, t)
            vec = evaluate(node.args[1], store, t)
            assert isinstance(q, float) and isinstance(vec, dict)
            groups: dict[Labels, list[tuple[float, float]]] = {}
            for labels, v in vec.items():
                d = dict(labels)
                le = float(d.pop("le"))
                groups.setdefault(tuple(sorted(d.items())), []).append((le, v))
            return {labels: histogram_quantile(q, b) for labels, b in groups.items()}
        raise ValueError(f"function {fn}() is not supported")
    if node.kind == "agg":
        inner = _instant(node.args[0], store, t)
        groups2: dict[Labels, list[float]] = {}
        for labels, v in inner.items():
            key = tuple((k, val) for k, val in labels if k in node.by)
            groups2.setdefault(key, []).append(v)
        agg = AGGREGATIONS[str(node.value)]
        return {labels: float(agg(vals)) for labels, vals in groups2.items()}
    if node.kind == "bin":
        left = _operand(node.args[0], store, t)
        right = _operand(node.args[1], store, t)
        op = {
            "+": lambda a, b: a + b,
            "-": lambda a, b: a - b,
            "*": lambda a, b: a * b,
            "/": lambda a, b: a / b if b else (math.nan if a == 0 else math.copysign(math.inf, a)),
        }[str(node.value)]
        if isinstance(left, float) and isinstance(right, float):
            return op(left, right)
        if isinstance(left, float):
            assert isinstance(right, dict)
            return {k: op(left, v) for k, v in right.items()}
        if isinstance(right, float):
            return {k: op(v, right) for k, v in left.items()}
        return {k: op(v, right[k]) for k, v in left.items() if k in right}
    raise ValueError(f"cannot evaluate {node.kind}")


def _operand(node: Node, store: Store, t: float) -> Vector | float:
    return _instant(node, store, t) if node.kind == "sel" else evaluate(node, store, t)


def _instant(node: Node, store: Store, t: float) -> Vector:
    """An instant selector (latest sample within the look-back) or any vector expression."""
    if node.kind != "sel":
        out = evaluate(node, store, t)
        if not isinstance(out, dict):
            raise ValueError("a scalar where a vector is needed")
        return out
    vec: Vector = {}
    for labels, points in store.select(str(node.value), _matcher(node.matchers)).items():
        recent = [v for ts, v in points if t - store.lookback_s < ts <= t]
        if recent:
            vec[labels] = recent[-1]
    return vec


def legend(fmt: str, labels: Labels) -> str:
    d = dict(labels)
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: d.get(m[1], ""), fmt).strip() or "value"


def panel_series(panel: dict, store: Store, window_s: float) -> dict[str, list]:
    """Every series of a panel: legend -> [(t, value)] at each scrape time."""
    out: dict[str, list] = {}
    for target in panel["targets"]:
        expr = target["expr"].replace('"$stream"', '".*"')
        node = Parser(expr, window_s).parse()
        for t in store.times:
            value = evaluate(node, store, t)
            vec = {(): value} if isinstance(value, float) else value
            for labels, v in vec.items():
                out.setdefault(legend(target.get("legendFormat", ""), labels), []).append((t, v))
    return out


# -- the run ----------------------------------------------------------------------------------
def fetch(port: int, path: str = "/metrics") -> str | None:
    """The body of ``path`` (also a 503's), or None when nothing answers."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
            return resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.read().decode()
    except OSError:
        return None


class Target(threading.Thread):
    """Scrapes one process every ``every`` seconds on its own thread, as Prometheus scrapes
    each target on its own (a slow answer from one does not delay the other); notes its
    unanswered scrapes, its slowest answer and why ``/readyz`` said not ready."""

    def __init__(self, instance: str, port: int, store: Store, start: float, every: float):
        super().__init__(name=f"scrape-{instance}", daemon=True)
        self.instance, self.port, self.store = instance, port, store
        self.start_at, self.every = start, every
        self.stop = threading.Event()
        self.last: str | None = None
        self.scrapes = self.failed = 0
        self.slowest_s = 0.0
        self.reasons: dict[str, float] = {}  # reason -> when first seen

    def run(self) -> None:
        while not self.stop.is_set():
            t = time.monotonic() - self.start_at
            self.scrape(t)
            self.stop.wait(max(0.0, self.every - (time.monotonic() - self.start_at - t)))

    def scrape(self, t: float) -> None:
        self.scrapes += 1
        text = fetch(self.port)
        self.slowest_s = max(self.slowest_s, time.monotonic() - self.start_at - t)
        if text is None:
            self.failed += 1
            return
        with self.store.lock:
            self.store.add(t, self.instance, text)
        self.last = text
        if 'vis_up{check="ready"} 0.0' in text:
            body = fetch(self.port, "/readyz")
            for reason in json.loads(body or "{}").get("reasons", []):
                key = re.sub(r"[0-9.]+ s\b", "N s", reason)  # one line per kind of reason
                self.reasons.setdefault(key, t)

    def report(self) -> list[str]:
        lines = [
            f"{self.instance}: {self.scrapes} scrapes, {self.failed} unanswered, "
            f"slowest answer {self.slowest_s:.2f} s"
        ]
        return lines + [f"  not ready from t={t:.1f} s: {r}" for r, t in self.reasons.items()]


def total(text: str | None, name: str) -> float:
    """The sum of one metric's samples in one scrape (0 when the target did not answer)."""
    if not text:
        return 0.0
    families = text_string_to_metric_families(text)
    return sum(s.value for f in families for s in f.samples if s.name == name)


def start_worker(bootstrap: str, port: int, sink_stall_s: float) -> WorkerProcess:
    """``vis-pipeline worker`` on the demo config, results to Kafka, ``/metrics`` on ``port``."""
    args = ["--bootstrap", bootstrap, "--jobs-topic", JOBS_TOPIC]
    args += ["-c", "configs/demo.yaml", "--metrics-port", str(port)]
    sets = [*worker_overrides(bootstrap, "dashboard.frames"), *service_sets(sink_stall_s)]
    worker = WorkerProcess("w0", [*args, *[x for s in sets for x in ("--set", s)]])
    began = time.monotonic()
    while fetch(port) is None:
        if time.monotonic() - began > 120 or worker.proc.poll() is not None:
            worker.stop()
            raise RuntimeError("the worker's /metrics never answered:\n" + worker_tail(worker))
        time.sleep(0.2)
    return worker


def service_sets(sink_stall_s: float) -> list[str]:
    return ["metrics.host=127.0.0.1", f"metrics.sink_stall_s={sink_stall_s:g}"]


def scrape_run(args: argparse.Namespace, work: Path, store: Store) -> list[str]:
    """Broker, worker (``args.jobs`` jobs) and the demo run, scraped until all are done.

    Returns:
        what the scrapes saw (unanswered scrapes, not-ready reasons) and the demo run's own
        end-of-run summary.
    """
    clips = write_clips(work / "clips", args.jobs, args.clip_frames, start_step=25)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    run_log = work / "run.log"
    with EmbeddedBroker() as broker, run_log.open("w") as log_file:
        bootstrap = broker.bootstrap_servers
        worker_port, run_port = free_port(), free_port()
        worker = start_worker(bootstrap, worker_port, args.sink_stall)
        run = None
        targets: list[Target] = []
        try:
            submit = [sys.executable, "-m", "vis_pipeline", "submit", "--bootstrap", bootstrap]
            submit += ["--jobs-topic", JOBS_TOPIC, *map(str, clips)]
            subprocess.run(submit, cwd=ROOT, env=env, check=True, capture_output=True)
            sets = [
                *service_sets(args.sink_stall),
                f"sinks.kafka={{bootstrap_servers: '{bootstrap}'}}",
            ]
            cmd = [sys.executable, "run_pipeline.py", "--config", "configs/demo.yaml"]
            cmd += ["-o", str(work / "demo"), "--restart", "--metrics-port", str(run_port)]
            cmd += [x for s in sets for x in ("--set", s)]
            start, store.epoch = time.monotonic(), time.time()
            run = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log_file, stderr=log_file)
            targets = [
                Target("run", run_port, store, start, args.every),
                Target("worker", worker_port, store, start, args.every),
            ]
            for target in targets:
                target.start()
            supervise(args, broker, run, targets, store, start)
        finally:
            broker.resume()
            for target in targets:
                target.stop.set()
                target.join(10)
            if run is not None and run.poll() is None:
                run.terminate()
                run.wait(30)
            worker.stop()
    log_text = run_log.read_text()
    if run.returncode:
        raise RuntimeError(f"the demo run failed (exit {run.returncode}): {log_text[-2000:]}")
    lines = [line.rsplit("\r", 1)[-1] for line in log_text.splitlines()]
    first = next((i for i, line in enumerate(lines) if line.startswith("stream ")), 0)
    return [
        *[line for target in targets for line in target.report()],
        "the demo run's own summary, to compare:",
        *lines[first : first + 8],
    ]


def supervise(
    args: argparse.Namespace,
    broker: EmbeddedBroker,
    run: subprocess.Popen,
    targets: list[Target],
    store: Store,
    start: float,
) -> None:
    """Freeze the broker for ``args.pause_broker`` s once the demo run is 40 frames in; return
    ``args.tail`` s after the run has ended and the worker has finished every job."""
    paused_at = resumed_at = done_at = None
    while True:
        time.sleep(args.every)
        t = time.monotonic() - start
        run_text, worker_text = targets[0].last, targets[1].last
        processed = total(run_text, "vis_stream_frames_processed_total")
        if args.pause_broker and paused_at is None and processed >= 40:
            broker.pause()  # an outage: every request unanswered, nothing lost
            paused_at = t
        if paused_at is not None and resumed_at is None and t - paused_at >= args.pause_broker:
            broker.resume()
            resumed_at = t
        jobs = total(worker_text, "vis_worker_jobs_finished_total")
        if done_at is None and run.poll() is not None and jobs >= args.jobs:
            done_at = t
        if done_at is not None and t - done_at >= args.tail:
            break
        if t > args.timeout:
            print("warning: timed out before every job finished", file=sys.stderr)
            break
    if paused_at is not None:
        store.marks.append((paused_at, resumed_at or t))
    store.times = [i * args.every for i in range(int(t / args.every) + 1)]


def worker_tail(worker: WorkerProcess) -> str:
    return "\n".join(worker.lines[-20:])


# -- the picture ------------------------------------------------------------------------------
def unit_scale(unit: str, top: float) -> tuple[float, str]:
    """(multiplier, axis label) for a Grafana unit and the largest value shown."""
    if unit == "s":
        return (1000.0, "ms") if top < 1 else (1.0, "s")
    if unit == "percentunit":
        return 100.0, "%"
    if unit.startswith("suffix:"):
        return 1.0, unit.split(":", 1)[1].strip()
    return 1.0, "" if unit in ("short", "none") else unit


def draw_timeseries(ax, series: dict[str, list], unit: str) -> list[str]:  # noqa: ANN001
    finite = [v for pts in series.values() for _, v in pts if math.isfinite(v)]
    scale, label = unit_scale(unit, max(finite, default=0.0))
    summary = []
    for name, pts in sorted(series.items()):
        ys = [v * scale if math.isfinite(v) else math.nan for _, v in pts]
        ax.plot([t for t, _ in pts], ys, label=name, lw=1.3)
        shown = [y for y in ys if math.isfinite(y)]
        if shown:
            summary.append(f"{name}: max {max(shown):.3g}, last {shown[-1]:.3g} {label}".rstrip())
    ax.set_ylabel(label)
    ax.set_ylim(bottom=0, top=None if any(finite) else 1)
    if series:
        ax.legend(fontsize=7, loc="upper left", ncol=2, framealpha=0.6)
    return summary


def draw_states(ax, series: dict[str, list], every: float) -> list[str]:  # noqa: ANN001
    """A state timeline: one band per series, green while 1, red while 0, blank when absent."""
    names = sorted(series)
    summary = []
    for row, name in enumerate(names):
        pts = series[name]
        for (t, v), nxt in zip(pts, [*pts[1:], (pts[-1][0] + every, 0.0)]):
            colour = "tab:green" if v >= 1 else "tab:red"
            ax.broken_barh([(t, min(nxt[0] - t, every * 1.5))], (row - 0.4, 0.8), color=colour)
        downs = sum(1 for (_, a), (_, b) in zip(pts, pts[1:]) if a >= 1 > b)
        summary.append(
            f"{name}: up {sum(v >= 1 for _, v in pts)}/{len(pts)} scrapes, {downs} falls"
        )
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.set_ylim(-0.6, len(names) - 0.4)
    return summary


def draw(dashboard: dict, store: Store, args: argparse.Namespace, caption: str) -> list[str]:
    """The panels in the dashboard's grid; returns one line per panel (what it shows)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = dashboard["panels"]
    bottom = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in panels)
    fig = plt.figure(figsize=(18, bottom * 0.42))
    grid = fig.add_gridspec(bottom, 24, left=0.04, right=0.99, top=0.97, bottom=0.02)
    lines = []
    for panel in panels:
        g = panel["gridPos"]
        if panel["type"] == "row":
            ax = fig.add_subplot(grid[g["y"], :])
            ax.axis("off")
            ax.text(0, 0.0, panel["title"], fontsize=14, fontweight="bold")
            continue
        rows = slice(g["y"] + 1, g["y"] + g["h"] - 1)
        ax = fig.add_subplot(grid[rows, g["x"] + 1 : g["x"] + g["w"] - 1])
        series = panel_series(panel, store, args.window)
        if panel["type"] == "state-timeline":
            summary = draw_states(ax, series, args.every)
        else:
            unit = panel["fieldConfig"]["defaults"].get("unit", "short")
            summary = draw_timeseries(ax, series, unit)
        for start, end in store.marks:
            ax.axvspan(start, end, color="0.85", zorder=0)
        if not series:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
        ax.set_title(panel["title"], fontsize=11, loc="left")
        ax.set_xlim(0, store.times[-1] if store.times else 1)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=8)
        ax.set_xlabel("seconds", fontsize=8)
        lines.append(f"{panel['title']}: " + ("; ".join(summary) or "no data"))
    fig.suptitle(caption, fontsize=12, x=0.04, y=0.995, ha="left")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=80)
    plt.close(fig)
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--dashboard", type=Path, default=DASHBOARD)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "operations_dashboard.png")
    ap.add_argument("--jobs", type=int, default=3, help="clips submitted to the worker (3)")
    ap.add_argument("--clip-frames", type=int, default=60, help="frames per clip (60)")
    ap.add_argument("--every", type=float, default=0.5, help="scrape interval, seconds (0.5)")
    ap.add_argument("--window", type=float, default=4.0, help="$__rate_interval, seconds (4)")
    ap.add_argument(
        "--pause-broker",
        type=float,
        default=8.0,
        help="freeze the broker this long once the demo run is 40 frames in (8; 0: no outage)",
    )
    ap.add_argument("--sink-stall", type=float, default=3.0, help="metrics.sink_stall_s (3)")
    ap.add_argument("--tail", type=float, default=3.0, help="seconds scraped after the end (3)")
    ap.add_argument("--timeout", type=float, default=600.0, help="give up after (600 s)")
    args = ap.parse_args(argv)
    try:
        dashboard = json.loads(args.dashboard.read_text())
    except (OSError, ValueError) as exc:
        print(f"error: --dashboard {args.dashboard}: {exc}", file=sys.stderr)
        return 2
    store = Store(lookback_s=4 * args.every)
    with tempfile.TemporaryDirectory(prefix="dashboard-preview-") as tmp:
        report = scrape_run(args, Path(tmp), store)
    outage = f"; grey: broker frozen {args.pause_broker:g} s" if store.marks else ""
    caption = (
        f"vis-pipeline dashboard, each panel's PromQL evaluated on /metrics scraped every "
        f"{args.every:g} s ($__rate_interval = {args.window:g} s) from two processes:\n"
        f"the synthetic demo (instance=run) "
        f"and a worker running {args.jobs} clips of {args.clip_frames} frames (instance=worker)"
        + outage
    )
    for line in draw(dashboard, store, args, caption):
        print(line)
    print("\n".join(report))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
