"""The run summary: what was processed, how fast, what failed, and the exit code.

Contract: ``RunSummary`` collects per-stream summaries (the dicts of
``StreamRun.summary``, with ``written_frames`` and ``unwritten_frames``: results that
reached every sink and those that did not) and run-wide counters (``sink_stats``: each
sink's own count of what it delivered and what failed); ``render()`` is the text the CLI
prints and ``to_json()`` the ``--summary-json`` document. ``frames`` are a stream's results
in its output, those of the runs a resumed stream continues included; ``frames_this_run``
and the time, fps and ms per frame are this run's own work.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from vis.detection.precision import feature_text

EXIT_OK, EXIT_INPUT, EXIT_SINK, EXIT_INTERRUPTED = 0, 2, 3, 130


@dataclasses.dataclass
class RunSummary:
    streams: list[dict] = dataclasses.field(default_factory=list)
    failed_inputs: list[str] = dataclasses.field(default_factory=list)
    skipped_complete: list[str] = dataclasses.field(default_factory=list)
    seconds: float = 0.0
    sink_seconds: float = 0.0
    detector_calls: int = 0
    #: detection records the detector skipped (a precomputed file's malformed records)
    detections_skipped: int = 0
    sink_stats: dict[str, Any] = dataclasses.field(default_factory=dict)
    outputs: list[str] = dataclasses.field(default_factory=list)
    #: outputs that could not be written (one line each: the file, why, the fix)
    failed_outputs: list[str] = dataclasses.field(default_factory=list)
    # what ran the network and at which precision (asked and reported by the engine), and
    # the CPU's features that decide what a lower precision costs and gains
    detector: dict[str, str] = dataclasses.field(default_factory=dict)
    cpu: dict[str, Any] = dataclasses.field(default_factory=dict)
    exit_code: int = EXIT_OK
    error: str | None = None

    @property
    def frames(self) -> int:
        return sum(s["frames"] for s in self.streams)

    @property
    def frames_this_run(self) -> int:
        """Frames processed by this run (a resumed stream's earlier frames left out)."""
        return sum(s.get("frames_this_run", s["frames"]) for s in self.streams)

    @property
    def unwritten(self) -> int:
        """Results processed but not delivered to every sink (a sink failed)."""
        return sum(s.get("unwritten_frames", 0) for s in self.streams)

    @property
    def fps(self) -> float:
        return self.frames_this_run / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> dict:
        d = dataclasses.asdict(self)
        d["frames"] = self.frames
        d["frames_this_run"] = self.frames_this_run
        d["written_frames"] = sum(s.get("written_frames", 0) for s in self.streams)
        d["unwritten_frames"] = self.unwritten
        d["keyframes"] = sum(s["keyframes"] for s in self.streams)
        d["fps"] = round(self.fps, 3)
        stages: dict[str, float] = {}
        for stream in self.streams:
            for stage, seconds in stream["stage_seconds"].items():
                stages[stage] = stages.get(stage, 0.0) + seconds
        stages["sink"] = self.sink_seconds
        d["stage_seconds"] = stages
        return d

    def render(self) -> str:
        lines = []
        for stream in self.streams:
            lines += _render_stream(stream)
        this_run = self.frames_this_run
        resumed = f" ({this_run} this run)" if this_run != self.frames else ""
        lines.append(
            f"total: {len(self.streams)} streams, {self.frames} frames{resumed} in "
            f"{self.seconds:.1f} s ({self.fps:.2f} fps); detector calls "
            f"{self.detector_calls}; sinks {self.sink_seconds / max(this_run, 1) * 1000:.1f} "
            f"ms/frame; {len(self.skipped_complete)} already complete; "
            f"{len(self.failed_inputs)} failed"
            + (f"; {len(self.failed_outputs)} output(s) NOT written" if self.failed_outputs else "")
            + (f"; {self.unwritten} frames NOT written (a sink failed)" if self.unwritten else "")
            + (
                f"; {self.detections_skipped} detection records skipped (malformed or over a "
                "limit, each logged)"
                if self.detections_skipped
                else ""
            )
        )
        if self.detector:
            lines.append(precision_line(self.detector, self.cpu))
        for failure in self.failed_inputs:
            lines.append(f"  failed: {failure}")
        for name, stats in self.sink_stats.items():
            counts = ", ".join(f"{key} {value}" for key, value in stats.items())
            lines.append(f"  sink {name}: {counts}")
        for output in self.outputs:
            lines.append(f"  wrote {output}")
        for failure in self.failed_outputs:
            lines.append(f"  NOT written: {failure}")
        return "\n".join(lines)


def precision_line(detector: dict[str, str], cpu: dict[str, Any]) -> str:
    """``detector: openvino at f32 (asked f32) on <CPU> (AVX2 AVX-512 ...)``."""
    features = feature_text(cpu.get("features", []), cpu.get("isa_cap"))
    return (
        f"  detector: {detector['engine']} at {detector['precision']} (asked "
        f"{detector['requested']}) on {cpu.get('model', 'unknown CPU')} ({features})"
    )


def _render_stream(s: dict) -> list[str]:
    extra = ""
    if s["live"]:
        extra = f"  dropped {s['dropped_frames']}  reconnects {s['reconnects']}"
    this_run = s.get("frames_this_run", s["frames"])
    if s["resumed_after_frame"] >= 0:
        extra += f"  resumed after frame {s['resumed_after_frame']}"
    if s.get("score_scale", 1.0) != 1.0:  # a detector less sure than tracker.score_reference
        extra += f"  scores read x{s['score_scale']:.2f}"
    reasons = s.get("keyframe_reasons") or {}
    if set(reasons) - {"start", "interval"}:  # a schedule that chose: why it spent its calls
        extra += "  keyframe reasons " + ", ".join(f"{k} {v}" for k, v in sorted(reasons.items()))
    repair = s.get("repair") or {}
    if repair.get("interactions"):  # identities decided again with both ends of a crossing
        extra += (
            f"  interactions {repair['interactions']} (exchanges undone "
            f"{repair.get('exchanges_undone', 0)}, swaps undone {repair.get('swaps_undone', 0)})"
        )
    if repair.get("tracks_joined"):  # tracks lost and found again under a new id, rejoined
        extra += f"  tracks rejoined {repair['tracks_joined'] - repair.get('joins_undone', 0)}"
    if repair.get("budget_window"):  # repair.max_held_mb held fewer frames than the window
        extra += f"  repair window {repair['budget_window']} frames (repair.max_held_mb)"
    lines = [
        f"stream {s['stream_id']} ({s['source']})",
        f"  frames {s['frames']}{f' ({this_run} this run)' if this_run != s['frames'] else ''}"
        f"  keyframes {s['keyframes']}  tracks {s['tracks']}  "
        f"corrupt skipped {s['corrupt_frames']}"
        f"{'  TRUNCATED' if s['truncated'] else ''}{extra}",
        *(
            [f"  written {s.get('written_frames', 0)}  NOT written {s['unwritten_frames']}"]
            if s.get("unwritten_frames")
            else []
        ),
        f"  time {s['seconds']:.1f} s  fps {s['fps']:.2f}  latency p50 "
        f"{s['latency_ms_p50']:.0f} ms  p99 {s['latency_ms_p99']:.0f} ms",
    ]
    if this_run:
        per = "  ".join(f"{k} {v / this_run * 1000:.1f}" for k, v in s["stage_seconds"].items())
        lines.append(f"  ms/frame by stage: {per}")
        pct = "  ".join(f"{k} {a:.1f}/{b:.1f}" for k, (a, b) in s["stage_ms_p50_p99"].items())
        lines.append(f"  ms per call p50/p99: {pct}")
    return lines
