"""What the soak bench measures every window, and what it concludes from the series.

Contract: ``rss_bytes(pid)`` reads a process's resident set size from ``/proc`` (psutil is
not a dependency); ``StageWindows(timers).take()`` returns, per stage, the statistics of
the samples the pipeline's ``StageTimer``s recorded since the previous ``take()`` (the
timers keep their latest samples in a bounded deque and count every call, so the window is
the newest ``calls - calls_before`` samples); ``conclude(samples, ...)`` turns the sampled
series into the report's numbers (RSS growth after the warm-up, p99 latency early vs late).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Protocol

import numpy as np


def rss_bytes(pid: int | str = "self") -> int:
    """Resident set size of process ``pid`` (default: this one), in bytes; 0 if it is gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024  # the kernel reports kB
    except (OSError, ValueError):
        return 0
    return 0


class Timer(Protocol):
    """What ``StageWindows`` reads of a ``vis.pipeline.StageTimer``."""

    calls: Mapping[str, int]
    samples: Mapping[str, Sequence[float]]


@dataclasses.dataclass(frozen=True)
class WindowStats:
    """One stage over one window.

    Attributes:
        n: calls in the window.
        p50_ms, p99_ms, max_ms: of those calls (0 when none).
        partial: the timer had dropped some of the window's samples (more calls than it
            keeps); the statistics are over the newest ones it kept.
    """

    n: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    partial: bool = False


def window_stats(seconds: Sequence[float], n: int | None = None) -> WindowStats:
    """Percentiles of ``seconds`` in milliseconds; ``n`` calls if more than were kept."""
    calls = len(seconds) if n is None else n
    if not len(seconds):
        return WindowStats(calls, 0.0, 0.0, 0.0, calls > 0)
    ms = np.asarray(seconds, np.float64) * 1000.0
    p50, p99 = np.percentile(ms, [50, 99])
    return WindowStats(
        calls,
        round(float(p50), 2),
        round(float(p99), 2),
        round(float(ms.max()), 2),
        calls > len(ms),
    )


class StageWindows:
    """Per-window statistics of every stage of a set of ``StageTimer``s.

    Args:
        timers: the timers to read; a stage timed by several of them is pooled.
    """

    def __init__(self, timers: Sequence[Timer]) -> None:
        self.timers = list(timers)
        self._seen: dict[tuple[int, str], int] = {}

    def take(self) -> dict[str, WindowStats]:
        """Statistics of each stage's calls since the previous ``take()``."""
        pooled: dict[str, list[float]] = {}
        counts: dict[str, int] = {}
        for k, timer in enumerate(self.timers):
            for stage, calls in list(timer.calls.items()):
                new = calls - self._seen.get((k, stage), 0)
                self._seen[(k, stage)] = calls
                kept = _copy(timer.samples.get(stage, ()))
                take = min(new, len(kept))
                pooled.setdefault(stage, []).extend(kept[len(kept) - take :] if take else [])
                counts[stage] = counts.get(stage, 0) + new
        return {stage: window_stats(pooled[stage], counts[stage]) for stage in sorted(pooled)}


def _copy(samples: Sequence[float]) -> list[float]:
    """A list of a deque that another thread may append to (retried if it changed under us)."""
    for _ in range(5):
        try:
            return list(samples)
        except RuntimeError:  # "deque mutated during iteration"
            continue
    return []


def conclude(samples: list[dict], *, warmup_s: float = 60.0, span_s: float = 300.0) -> dict:
    """The report's numbers from the sampled series.

    Args:
        samples: one dict per window, in time order, with ``t_s`` (end of the window, seconds
            since the stream started), ``rss_mb`` (at that time), optionally ``rss_max_mb``
            (the largest RSS seen in the window) and ``stages`` (stage -> ``WindowStats`` as
            a dict).
        warmup_s: RSS growth is measured from the first sample at or after this time.
        span_s: length of the early and late spans compared; shortened to a third of the
            run when the run is shorter than three spans.

    Returns:
        ``rss``: MB at the warm-up sample and at the end and the growth between them in %;
        the peak (``rss_max_mb``, else ``rss_mb``) over the first span after the warm-up and
        over the last span and the growth between those (robust to an RSS that swings with
        large per-frame arrays); the least-squares slope of the window peaks in MB per minute
        after the warm-up. ``p99``: per stage, the
        median of the windows' p99 over the first and the last span of the run, and their
        ratio. ``span_s``: the span used.
    """
    if not samples:
        raise ValueError("no samples: the run ended before its first window")
    duration = samples[-1]["t_s"]
    span = min(span_s, duration / 3)
    after = [s for s in samples if s["t_s"] >= warmup_s] or samples[-1:]
    base, end = after[0]["rss_mb"], after[-1]["rss_mb"]
    t0 = after[0]["t_s"]
    early = [s for s in after if s["t_s"] <= t0 + span]
    late = [s for s in after if s["t_s"] > duration - span] or after[-1:]
    early_peak = max(s.get("rss_max_mb", s["rss_mb"]) for s in early)
    late_peak = max(s.get("rss_max_mb", s["rss_mb"]) for s in late)
    slope = 0.0
    if len(after) >= 3:
        t = np.array([s["t_s"] for s in after]) / 60.0
        peaks = [s.get("rss_max_mb", s["rss_mb"]) for s in after]
        slope = float(np.polyfit(t, peaks, 1)[0])
    first = [s for s in samples if s["t_s"] <= span]
    last = [s for s in samples if s["t_s"] > duration - span]
    p99: dict[str, dict] = {}
    for stage in sorted({k for s in samples for k in s["stages"]}):
        early, late = _median_p99(first, stage), _median_p99(last, stage)
        p99[stage] = {
            "first_ms": early,
            "last_ms": late,
            "last_over_first": round(late / early, 3) if early else None,
        }
    return {
        "duration_s": round(duration, 1),
        "span_s": round(span, 1),
        "rss": {
            "warmup_t_s": t0,
            "at_warmup_mb": round(base, 1),
            "end_mb": round(end, 1),
            "growth_pct": _pct(end, base),
            "early_peak_mb": round(early_peak, 1),
            "late_peak_mb": round(late_peak, 1),
            "peak_growth_pct": _pct(late_peak, early_peak),
            "slope_mb_per_min": round(slope, 3),
        },
        "p99": p99,
    }


def _pct(x: float, base: float) -> float | None:
    return round(100.0 * (x - base) / base, 2) if base else None


def _median_p99(samples: list[dict], stage: str) -> float:
    xs = [s["stages"][stage]["p99_ms"] for s in samples if s["stages"].get(stage, {}).get("n")]
    return round(float(np.median(xs)), 2) if xs else 0.0
