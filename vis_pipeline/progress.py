"""What a run shows while it works: progress bars on stderr and periodic status log lines.

Contract: ``ProgressBars`` keeps one overall bar (ETA from the declared frame counts of the
file inputs) and one bar per active stream; ``StatusReporter.maybe_report(streams)`` logs one
INFO line per stream to the ``vis.status`` logger every ``every_s`` seconds (0 = never).
"""

from __future__ import annotations

import logging
import sys
import time

from tqdm import tqdm

from vis_pipeline.stream_run import StreamRun

status = logging.getLogger("vis.status")  # the CLI always shows it at INFO


class ProgressBars:
    """tqdm bars: ``all`` plus one per active stream (closed when the stream finishes)."""

    def __init__(self, declared_frames: int) -> None:
        self.overall = tqdm(
            total=declared_frames or None,
            unit="frame",
            desc="all",
            dynamic_ncols=True,
            file=sys.stderr,
            position=0,
        )
        self.streams: dict[str, tqdm] = {}

    def add_stream(self, stream: StreamRun) -> None:
        self.streams[stream.stream_id] = tqdm(
            total=stream.source.declared_frames or None,
            initial=stream.resume_from + 1,
            unit="frame",
            desc=stream.stream_id[:24],
            dynamic_ncols=True,
            file=sys.stderr,
            leave=False,
            position=1 + len(self.streams),
        )

    def frame_done(self, stream: StreamRun) -> None:
        self.overall.update(1)
        self.streams[stream.stream_id].update(1)

    def stream_done(self, stream: StreamRun) -> None:
        bar = self.streams.pop(stream.stream_id, None)
        if bar is not None:
            bar.close()

    def close(self) -> None:
        for bar in self.streams.values():
            bar.close()
        self.streams.clear()
        self.overall.close()


class StatusReporter:
    """Logs a status line per active stream every ``every_s`` seconds (0 = never)."""

    def __init__(self, every_s: float) -> None:
        self.every_s = every_s
        self.last = time.monotonic()

    def maybe_report(self, streams: list[StreamRun]) -> None:
        if not self.every_s or time.monotonic() - self.last < self.every_s:
            return
        self.last = time.monotonic()
        for stream in streams:
            s = stream.summary()
            stages = " ".join(f"{k} {a:.0f}/{b:.0f}" for k, (a, b) in s["stage_ms_p50_p99"].items())
            elapsed = max(time.perf_counter() - stream.started_at, 1e-9)
            status.info(
                "%s: %d frames, %.1f fps, latency p50 %.0f / p99 %.0f ms, dropped %d, "
                "reconnects %d; ms p50/p99 %s",
                s["stream_id"],
                s["frames"],
                s["frames_this_run"] / elapsed,
                s["latency_ms_p50"],
                s["latency_ms_p99"],
                s["dropped_frames"],
                s["reconnects"],
                stages,
                extra={"stream_id": s["stream_id"], "event": "status"},
            )
