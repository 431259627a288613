"""Run the vis pipeline: decode -> keyframe Mask R-CNN -> propagate + track -> sinks.

    python run_pipeline.py --config configs/demo.yaml
    python run_pipeline.py --config configs/demo.yaml --source video.mp4 --output out/ \\
        --set keyframes.interval=5 --set detector.score_threshold=0.6
    python run_pipeline.py --config configs/batch.yaml --source 'videos/*.mp4'   # one output each
    python run_pipeline.py --config configs/live.yaml --source rtsp://cam1/s --source rtsp://cam2/s

Each stream has a reader thread feeding a bounded queue; one processing loop serves the
streams round-robin (so a busy stream cannot starve another), batches pending keyframes of
all streams into one detector call, and hands results in order to a writer thread. Files
apply back-pressure (the reader waits, nothing is dropped); live streams keep only their
newest ``live.buffer_frames`` frames (older ones are dropped and counted). Offline jobs
checkpoint each stream, so the same command after a crash (even SIGKILL) resumes after the
last written frame and finished videos are skipped.

Exit codes: 0 done; 2 bad input, config or weights (other inputs of a batch are still
processed); 3 a sink could not deliver; 130 interrupted (SIGINT/SIGTERM) after flushing.
"""

from __future__ import annotations

import argparse
import dataclasses
import glob
import json
import logging
import pickle
import queue
import signal
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

import yaml

from streams.live import LiveConfig
from streams.sinks import safe_name
from vis.config import ConfigError, from_mapping, set_path, to_mapping
from vis.detection.factory import DetectorConfig
from vis.pipeline import (
    STATE_FORMAT,
    KeyframeConfig,
    StageTimer,
    StreamProcessor,
)
from vis.propagation import PropagationConfig
from vis.tracking.tracker import TrackerConfig

log = logging.getLogger("vis.run")
status = logging.getLogger("vis.status")  # periodic per-stream status lines, always INFO

EXIT_OK, EXIT_INPUT, EXIT_SINK, EXIT_INTERRUPTED = 0, 2, 3, 130
VIDEO_SUFFIXES = {".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".ts", ".wmv", ".flv"}
_SENTINEL = object()


@dataclasses.dataclass(frozen=True)
class SinksConfig:
    """Attributes:
    jsonl: write ``<output>/<stream_id>.jsonl``.
    overlay: write ``<output>/<stream_id>.overlay.mp4``.
    kafka: Kafka sink settings (see docs/kafka.md); null = off.
    """

    jsonl: bool = True
    overlay: bool = True
    kafka: dict[str, Any] | None = None


@dataclasses.dataclass(frozen=True)
class SourceSpec:
    """One entry of ``sources:``: a URI (file, folder, glob, stream, camera) and its id."""

    uri: str
    stream_id: str | None = None


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
    """The whole run. See docs/configuration.md for every key."""

    source: str | None = None
    sources: list[str | SourceSpec] | None = None
    stream_id: str | None = None
    output: str = "out"
    fps: float = 25.0  # timestamps for image folders
    queue_size: int = 8
    parallel_streams: int = 1
    resume: bool = True
    checkpoint_every: int = 50
    detector: DetectorConfig = DetectorConfig()
    keyframes: KeyframeConfig = KeyframeConfig()
    tracker: TrackerConfig = TrackerConfig()
    propagation: PropagationConfig = PropagationConfig()
    live: LiveConfig = LiveConfig()
    sinks: SinksConfig = SinksConfig()

    def __post_init__(self) -> None:
        if self.queue_size < 1:
            raise ConfigError(f"queue_size={self.queue_size!r} must be >= 1")
        if self.fps <= 0:
            raise ConfigError(f"fps={self.fps!r} must be > 0")
        if self.parallel_streams < 1:
            raise ConfigError(f"parallel_streams={self.parallel_streams!r} must be >= 1")
        if self.checkpoint_every < 1:
            raise ConfigError(f"checkpoint_every={self.checkpoint_every!r} must be >= 1")


def load_config(path: str | Path | None, overrides: list[str] = (), **cli: Any) -> PipelineConfig:
    """Read YAML, apply ``--set key.path=value`` overrides and CLI options, validate."""
    data: dict = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file {p} not found: pass --config configs/demo.yaml or a "
                              "path to your YAML")
        try:
            data = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" line {mark.line + 1}" if mark else ""
            raise ConfigError(f"config file {p}{where} is not valid YAML: fix the syntax") from None
        if not isinstance(data, dict):
            raise ConfigError(f"config file {p} must hold a mapping of settings")
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set {item!r} must look like key.path=value")
        key, raw = item.split("=", 1)
        set_path(data, key.strip(), yaml.safe_load(raw) if raw.strip() else None)
    sources = cli.pop("sources", None)
    if sources:  # --source given on the command line replaces source/sources of the file
        data.pop("sources", None)
        data["source"] = sources[0] if len(sources) == 1 else None
        if len(sources) > 1:
            data["sources"] = list(sources)
    for key, value in cli.items():
        if value is not None:
            data[key] = value
    return from_mapping(PipelineConfig, data)


def expand_inputs(cfg: PipelineConfig) -> tuple[list[tuple[str, str | None]], list[str]]:
    """Config sources -> ([(uri, stream_id)], [errors]): folders of videos and globs expand
    to one stream per video; a folder of images is one stream."""
    from streams.live import is_live_uri
    from streams.sources import IMAGE_SUFFIXES

    items: list[tuple[str, str | None]] = []
    if cfg.source:
        items.append((cfg.source, cfg.stream_id))
    for s in cfg.sources or []:
        items.append((s, None) if isinstance(s, str) else (s.uri, s.stream_id))
    if not items:
        raise ConfigError("source is not set: pass --source PATH or set source: in the config")
    out, errors = [], []
    for uri, sid in items:
        p = Path(uri).expanduser()
        if is_live_uri(uri) or (p.is_file()) or (not p.exists() and not glob.has_magic(uri)):
            out.append((uri, sid))  # files (and missing paths: the source reports them)
        elif glob.has_magic(uri):
            matches = sorted(m for m in glob.glob(str(p)) if Path(m).is_file())
            if not matches:
                errors.append(f"no file matches {uri}: check the pattern (quote it in the shell)")
            out += [(m, None) for m in matches]
        elif p.is_dir():
            files = sorted(f for f in p.iterdir() if f.is_file())
            videos = [f for f in files if f.suffix.lower() in VIDEO_SUFFIXES]
            images = [f for f in files if f.suffix.lower() in IMAGE_SUFFIXES]
            if videos and not images:
                out += [(str(f), None) for f in videos]
            else:
                out.append((uri, sid))
    return _unique_ids(out), errors


def _unique_ids(items: list[tuple[str, str | None]]) -> list[tuple[str, str | None]]:
    from streams.live import _live_stream_id, is_live_uri
    from streams.sources import stream_id_for

    seen: dict[str, int] = {}
    out = []
    for uri, sid in items:
        base = sid or (_live_stream_id(uri) if is_live_uri(uri) else stream_id_for(uri))
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.append((uri, base if n == 0 else f"{base}-{n + 1}"))
    return out


# -- one stream ---------------------------------------------------------------------------------
class StreamRun:
    """A stream inside a run: its source and reader thread, queue, processor and counters."""

    def __init__(self, uri: str, stream_id: str, cfg: PipelineConfig, labels: list[str],
                 stop: threading.Event, activity: threading.Event, store, overlay: bool) -> None:
        from streams.checkpoint import cut_jsonl
        from streams.live import LiveSource, is_live_uri
        from streams.sources import open_source

        self.uri, self.cfg, self.stop, self.activity = uri, cfg, stop, activity
        self.live = is_live_uri(uri)
        self.skip = False
        self.resume_from = -1
        self.resume_blob: bytes | None = None
        jsonl = Path(cfg.output) / f"{safe_name(stream_id)}.jsonl"
        if store is not None and not self.live:
            if store.is_done(stream_id):
                self.skip = True
                log.info("%s: already complete in %s, skipped (--restart to redo)", stream_id,
                         cfg.output)
                return
            found = store.load(stream_id)
            if found is not None:
                self.resume_from, self.resume_blob = found
        if self.live:
            self.source = LiveSource(uri, stream_id=stream_id, config=cfg.live, stop=stop)
        else:
            self.source = open_source(uri, stream_id=stream_id, fps=cfg.fps)
        self.stream_id = self.source.stream_id
        if cfg.sinks.jsonl:  # a fresh start empties the file; a resume keeps what it resumes from
            kept = cut_jsonl(jsonl, self.resume_from)
            if self.resume_from >= 0:
                log.info("%s: resuming after frame %d (%d results kept)", self.stream_id,
                         self.resume_from, len(kept))
        self.processor = StreamProcessor(
            stream_id=self.stream_id, labels=labels, tracker=cfg.tracker,
            propagation=cfg.propagation, keyframes=cfg.keyframes,
            max_gap_ms=cfg.live.max_gap_ms if self.live else 0.0)
        if self.resume_blob is not None:
            self.processor.load_state_dict(pickle.loads(self.resume_blob))  # noqa: S301
        self.queue: queue.Queue = queue.Queue(cfg.live.buffer_frames if self.live else cfg.queue_size)
        self.replay_overlay = overlay
        self.buffer: deque = deque()  # (frame, is_keyframe, replay)
        self.dets: dict[int, Any] = {}
        self.reader_done = False
        self.failure: BaseException | None = None
        self.timer = StageTimer()
        self.latency = StageTimer()
        self.dropped = {"dropped": 0}
        self.t0 = time.perf_counter()
        self.seconds = 0.0
        self.bar = None
        self.thread = threading.Thread(target=self._read, name=f"reader-{self.stream_id}", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _read(self) -> None:
        from streams.live import put_latest

        it = iter(self.source)
        try:
            while not self.stop.is_set():
                with self.timer("decode"):
                    frame = next(it, None)
                if frame is None:
                    break
                frame.captured_at = frame.captured_at or time.monotonic()
                item = (frame, frame.index <= self.resume_from)
                if self.live:
                    put_latest(self.queue, item, self.dropped)
                else:
                    while not self.stop.is_set():
                        try:
                            self.queue.put(item, timeout=0.2)
                            break
                        except queue.Full:
                            continue
                self.activity.set()
        except BaseException as exc:  # noqa: BLE001 - reported by the processing loop
            self.failure = exc
        finally:
            self.reader_done = True
            self.activity.set()

    # -- processing-loop side ----------------------------------------------------------------
    def pull(self, block: bool) -> bool:
        """Move one frame from the queue to the buffer (schedule decided here, in order)."""
        while True:
            try:
                frame, replay = self.queue.get(timeout=0.1) if block else self.queue.get_nowait()
            except queue.Empty:
                if not block or self.reader_done or self.stop.is_set():
                    if self.reader_done and not self.queue.empty():
                        continue
                    return False
                continue
            is_kf = self.processor.is_keyframe(frame)
            self.buffer.append((frame, is_kf and not replay, replay))
            return True

    @property
    def finished(self) -> bool:
        return self.reader_done and self.queue.empty() and not self.buffer

    def pending_keyframes(self) -> list:
        return [f for f, k, _ in self.buffer if k and f.index not in self.dets]

    def head_ready(self) -> bool:
        frame, is_kf, _ = self.buffer[0]
        return not is_kf or frame.index in self.dets

    def summary(self) -> dict:
        p50, p99 = self.latency.percentiles_ms("end_to_end")
        stats = self.source.stats
        stages, pct = {}, {}
        for t in (self.timer, self.processor.timer):
            for k, v in t.seconds.items():
                stages[k] = stages.get(k, 0.0) + v
                pct[k] = [round(x, 2) for x in t.percentiles_ms(k)]
        return {
            "stream_id": self.stream_id, "source": self.uri, "live": self.live,
            "frames": self.processor.frames, "keyframes": self.processor.keyframes,
            "tracks": self.processor.tracker.total_started, "corrupt_frames": stats["corrupt"],
            "truncated": bool(stats["truncated"]), "dropped_frames": self.dropped["dropped"],
            "reconnects": stats.get("reconnects", 0), "resumed_after_frame": self.resume_from,
            "rtsp_transport": getattr(self.source, "transport", None),
            "seconds": round(self.seconds, 3),
            "fps": round(self.processor.frames / self.seconds, 3) if self.seconds > 0 else 0.0,
            "latency_ms_p50": round(p50, 1), "latency_ms_p99": round(p99, 1),
            "stage_seconds": {k: round(v, 4) for k, v in stages.items()},
            "stage_ms_p50_p99": pct,
        }


def _declared_frames(inputs: list[tuple[str, str | None]]) -> int:
    """Total declared frames of the file inputs (for the overall progress bar's ETA)."""
    import cv2

    from streams.live import is_live_uri

    total = 0
    for uri, _ in inputs:
        if is_live_uri(uri) or not Path(uri).is_file():
            continue
        cap = cv2.VideoCapture(uri, cv2.CAP_FFMPEG)
        total += int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0) if cap.isOpened() else 0
        cap.release()
    return total


# -- writer -------------------------------------------------------------------------------------
def _writer(inq: queue.Queue, sinks: list, overlay, store, timer: StageTimer, errors: list,
            stop: threading.Event, output: Path) -> None:
    from vis.schema import decode_record

    failed = False
    replay_files: dict[str, Any] = {}
    while True:
        item = inq.get()
        if item is _SENTINEL:
            break
        if failed:
            continue  # drain so the processor never blocks
        kind = item[0]
        try:
            with timer("sink"):
                if kind == "result":
                    _, image, result = item
                    for s in sinks:
                        s.write(result)
                    if overlay is not None:
                        overlay.write_frame(image, result)
                elif kind == "replay":  # resumed stream: redraw the overlay of kept results
                    _, image, stream_id = item
                    fh = replay_files.get(stream_id)
                    if fh is None:
                        fh = replay_files[stream_id] = open(output / f"{safe_name(stream_id)}.jsonl",
                                                            encoding="utf-8")
                    line = fh.readline()
                    if line and overlay is not None:
                        overlay.write_frame(image, decode_record(line))
                elif kind == "ckpt":
                    _, stream_id, frame_index, blob = item
                    store.save(stream_id, frame_index, blob)
                elif kind == "done":
                    _, stream_id, summary = item
                    for s in sinks:
                        if hasattr(s, "close_stream"):
                            s.close_stream(stream_id)
                    if overlay is not None:
                        overlay.close_stream(stream_id)
                    fh = replay_files.pop(stream_id, None)
                    if fh is not None:
                        fh.close()
                    if store is not None and summary is not None:
                        store.mark_done(stream_id, summary)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)
            failed = True
            stop.set()
    for fh in replay_files.values():
        fh.close()


# -- the run ------------------------------------------------------------------------------------
@dataclasses.dataclass
class RunSummary:
    streams: list[dict] = dataclasses.field(default_factory=list)
    failed_inputs: list[str] = dataclasses.field(default_factory=list)
    skipped_complete: list[str] = dataclasses.field(default_factory=list)
    seconds: float = 0.0
    sink_seconds: float = 0.0
    detector_calls: int = 0
    sink_stats: dict[str, Any] = dataclasses.field(default_factory=dict)
    outputs: list[str] = dataclasses.field(default_factory=list)
    exit_code: int = 0
    error: str | None = None

    @property
    def frames(self) -> int:
        return sum(s["frames"] for s in self.streams)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> dict:
        d = dataclasses.asdict(self)
        d["frames"] = self.frames
        d["keyframes"] = sum(s["keyframes"] for s in self.streams)
        d["fps"] = round(self.fps, 3)
        stages: dict[str, float] = {}
        for s in self.streams:
            for k, v in s["stage_seconds"].items():
                stages[k] = stages.get(k, 0.0) + v
        stages["sink"] = self.sink_seconds
        d["stage_seconds"] = stages
        return d

    def render(self) -> str:
        lines = []
        for s in self.streams:
            extra = ""
            if s["live"]:
                extra = f"  dropped {s['dropped_frames']}  reconnects {s['reconnects']}"
            if s["resumed_after_frame"] >= 0:
                extra += f"  resumed after frame {s['resumed_after_frame']}"
            lines.append(f"stream {s['stream_id']} ({s['source']})")
            lines.append(f"  frames {s['frames']}  keyframes {s['keyframes']}  tracks {s['tracks']}  "
                         f"corrupt skipped {s['corrupt_frames']}"
                         f"{'  TRUNCATED' if s['truncated'] else ''}{extra}")
            lines.append(f"  time {s['seconds']:.1f} s  fps {s['fps']:.2f}  latency p50 "
                         f"{s['latency_ms_p50']:.0f} ms  p99 {s['latency_ms_p99']:.0f} ms")
            if s["frames"]:
                per = "  ".join(f"{k} {v / s['frames'] * 1000:.1f}" for k, v in s["stage_seconds"].items())
                lines.append(f"  ms/frame by stage: {per}")
                pct = "  ".join(f"{k} {a:.1f}/{b:.1f}" for k, (a, b) in s["stage_ms_p50_p99"].items())
                lines.append(f"  ms per call p50/p99: {pct}")
        lines.append(f"total: {len(self.streams)} streams, {self.frames} frames in "
                     f"{self.seconds:.1f} s ({self.fps:.2f} fps); detector calls "
                     f"{self.detector_calls}; sinks {self.sink_seconds / max(self.frames, 1) * 1000:.1f} "
                     f"ms/frame; {len(self.skipped_complete)} already complete; "
                     f"{len(self.failed_inputs)} failed")
        for f in self.failed_inputs:
            lines.append(f"  failed: {f}")
        for k, v in self.sink_stats.items():
            lines.append(f"  sink {k}: {v}")
        for o in self.outputs:
            lines.append(f"  wrote {o}")
        return "\n".join(lines)


def run(cfg: PipelineConfig, *, progress: bool = True, stop: threading.Event | None = None,
        extra_sinks: list | None = None, restart: bool = False) -> RunSummary:
    """Run every source of ``cfg``. Raises ``ConfigError``/``WeightsError`` before any work;
    bad inputs are reported in the summary (exit code 2) while the others are processed."""
    from streams.checkpoint import CheckpointStore, ResumeError, config_hash
    from streams.sinks import JsonlSink, OverlayVideoSink, SinkError
    from streams.sources import SourceError
    from vis.detection.factory import build_detector

    stop = stop or threading.Event()
    inputs, errors = expand_inputs(cfg)
    detector = build_detector(cfg.detector)
    out_dir = Path(cfg.output)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = RunSummary(failed_inputs=list(errors))
    store = None
    if cfg.resume:
        keep = to_mapping(cfg)
        for k in ("source", "sources", "stream_id", "output", "resume", "queue_size",
                  "parallel_streams", "checkpoint_every", "live", "sinks"):
            keep.pop(k, None)  # settings that cannot change a stream's results
        keep["state_format"] = STATE_FORMAT  # checkpoints of another tracker version are refused
        store = CheckpointStore(out_dir, config_hash(keep))
        if restart:
            for _, sid in inputs:
                store.clear(sid)
    sinks: list = list(extra_sinks or [])
    if cfg.sinks.jsonl:
        sinks.append(JsonlSink(out_dir, resume=True))
    if cfg.sinks.kafka is not None:
        sinks.append(_kafka_sink(cfg.sinks.kafka))
    overlay = OverlayVideoSink(out_dir) if cfg.sinks.overlay else None

    writer_timer = StageTimer()
    results_q: queue.Queue = queue.Queue(maxsize=cfg.queue_size)
    sink_errors: list[BaseException] = []
    writer = threading.Thread(target=_writer, args=(results_q, sinks, overlay, store, writer_timer,
                                                    sink_errors, stop, out_dir),
                              name="writer", daemon=True)
    activity = threading.Event()
    pending = deque(inputs)
    active: list[StreamRun] = []
    done_runs: list[StreamRun] = []
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=_declared_frames(inputs) or None, unit="frame", desc="all",
                   dynamic_ncols=True, file=sys.stderr, position=0)
    t0 = time.perf_counter()
    writer.start()
    failure: BaseException | None = None

    def admit() -> None:
        while pending and sum(not r.live for r in active) < cfg.parallel_streams:
            uri, sid = pending.popleft()
            try:
                r = StreamRun(uri, sid, cfg, detector.labels, stop, activity, store,
                              overlay=overlay is not None)
            except (SourceError, ResumeError) as exc:
                summary.failed_inputs.append(str(exc))
                continue
            if r.skip:
                summary.skipped_complete.append(sid)
                continue
            if overlay is not None:
                overlay.set_fps(r.stream_id, r.source.fps)
            if bar is not None:
                from tqdm import tqdm

                r.bar = tqdm(total=r.source.declared_frames or None, initial=r.resume_from + 1,
                             unit="frame", desc=r.stream_id[:24], dynamic_ncols=True,
                             file=sys.stderr, leave=False, position=1 + len(active))
            r.start()
            active.append(r)
            if cfg.sinks.jsonl:
                summary.outputs.append(str(out_dir / f"{safe_name(r.stream_id)}.jsonl"))
            if overlay is not None:
                summary.outputs.append(str(overlay.path_for(r.stream_id)))

    counters = {"detector_calls": 0}
    try:
        admit()
        _loop(active, admit, done_runs, detector, cfg, results_q, store, stop, activity, bar,
              counters)
    except BaseException as exc:  # noqa: BLE001 - re-raised after the sinks are flushed
        failure = exc
    finally:
        if failure is not None:
            stop.set()
        for r in active:  # interrupted: record what was processed
            r.seconds = time.perf_counter() - r.t0
            results_q.put(("done", r.stream_id, None))
            done_runs.append(r)
        results_q.put(_SENTINEL)
        writer.join()
        stop.set()
        for r in done_runs:
            while r.thread.is_alive():  # unblock readers waiting on a full queue
                try:
                    r.queue.get_nowait()
                except queue.Empty:
                    r.thread.join(0.05)
        for s in sinks:
            try:
                s.close()
            except BaseException as exc:  # noqa: BLE001
                sink_errors.append(exc)
        if overlay is not None:
            overlay.close()
        if hasattr(detector, "close"):
            detector.close()
        if bar is not None:
            bar.close()
    summary.seconds = time.perf_counter() - t0
    summary.sink_seconds = writer_timer.seconds.get("sink", 0.0)
    summary.detector_calls = counters["detector_calls"]
    summary.streams = [r.summary() for r in done_runs]
    for r in done_runs:
        if r.failure is not None and not isinstance(r.failure, SourceError):
            failure = failure or r.failure
        elif r.failure is not None:
            summary.failed_inputs.append(str(r.failure))
    for s in sinks:
        if callable(getattr(s, "stats", None)):
            summary.sink_stats[type(s).__name__] = dict(s.stats())
    if sink_errors:
        exc = sink_errors[0]
        summary.exit_code = EXIT_SINK
        summary.error = str(exc) if isinstance(exc, SinkError) else f"sink failed: {exc!r}"
    elif failure is not None:
        raise failure
    else:
        truncated = [s for s in summary.streams if s["truncated"]]
        for s in truncated:
            summary.failed_inputs.append(
                f"video {s['source']} is truncated: decoded frames were processed and written")
        if summary.failed_inputs:
            summary.exit_code = EXIT_INPUT
            summary.error = (summary.failed_inputs[0] if len(summary.failed_inputs) == 1 else
                             f"{len(summary.failed_inputs)} inputs failed (see summary)")
    return summary


def _loop(active, admit, done_runs, detector, cfg, results_q, store, stop, activity, bar,
          counters) -> None:
    """Serve the streams round-robin until all are done or ``stop`` is set."""
    batch = cfg.detector.batch_size
    lookahead = max(1, batch * cfg.keyframes.interval)
    rr = 0
    last_report = time.monotonic()

    def emit(item) -> bool:
        while True:
            try:
                results_q.put(item, timeout=0.2)
                return True
            except queue.Full:
                if stop.is_set():
                    return False

    while not stop.is_set() and active:
        any_live = any(r.live for r in active)
        k = rr % len(active)
        order = active[k:] + active[:k]
        rr += 1
        for r in order:  # 1. frames in: files block (deterministic), live never blocks
            if not r.buffer:
                r.pull(block=not any_live)
        todo = []  # 2. keyframes at the heads, then look-ahead on files to fill the batch
        for r in order:
            if r.buffer and not r.head_ready():
                todo.append((r, r.buffer[0][0]))
        for r in order:
            if len(todo) >= batch or r.live or not todo:
                break
            if r.pending_keyframes():
                while (len(r.pending_keyframes()) < batch and len(r.buffer) < lookahead
                       and r.pull(block=True)):
                    pass
                todo += [(r, f) for f in r.pending_keyframes()[1:]]
        todo = todo[:batch]
        if todo:
            t = time.perf_counter()
            results = detector.detect_frames([f for _, f in todo])
            counters["detector_calls"] += 1
            dt = time.perf_counter() - t
            for (r, f), d in zip(todo, results):
                r.dets[f.index] = d
                r.timer.add("detect", dt / len(todo))
        progressed = bool(todo)
        for r in order:  # 3. one ready frame per stream
            if not r.buffer or not r.head_ready():
                continue
            frame, is_kf, replay = r.buffer.popleft()
            progressed = True
            if replay:
                if r.replay_overlay and not emit(("replay", frame.image, r.stream_id)):
                    return
                continue
            result = r.processor.process(frame, r.dets.pop(frame.index) if is_kf else None)
            if not emit(("result", frame.image, result)):
                return
            r.latency.add("end_to_end", time.monotonic() - frame.captured_at)
            if (store is not None and not r.live and not r.dets
                    and r.processor.frames % cfg.checkpoint_every == 0):
                emit(("ckpt", r.stream_id, frame.index, pickle.dumps(r.processor.state_dict())))
            if bar is not None:
                bar.update(1)
                r.bar.update(1)
        for r in list(active):  # 4. finished streams
            if r.finished or (r.failure is not None and not r.buffer):
                r.seconds = time.perf_counter() - r.t0
                if r.bar is not None:
                    r.bar.close()
                active.remove(r)
                done_runs.append(r)
                ok = r.failure is None and not r.source.stats["truncated"]
                emit(("done", r.stream_id, r.summary() if ok and store is not None and not r.live else None))
                admit()
        if cfg.live.report_every_s and time.monotonic() - last_report >= cfg.live.report_every_s:
            last_report = time.monotonic()
            for r in active:
                s = r.summary()
                stages = " ".join(f"{k} {a:.0f}/{b:.0f}" for k, (a, b) in s["stage_ms_p50_p99"].items())
                status.info("%s: %d frames, %.1f fps, latency p50 %.0f / p99 %.0f ms, dropped %d, "
                            "reconnects %d; ms p50/p99 %s", s["stream_id"], s["frames"],
                            s["frames"] / max(time.perf_counter() - r.t0, 1e-9), s["latency_ms_p50"],
                            s["latency_ms_p99"], s["dropped_frames"], s["reconnects"], stages)
        if not progressed:
            activity.wait(0.02)
            activity.clear()


def _kafka_sink(settings: dict):
    from streams.kafka import KafkaSink, KafkaSinkConfig

    return KafkaSink(from_mapping(KafkaSinkConfig, settings, "sinks.kafka"))


# -- CLI ---------------------------------------------------------------------------------------
def _quiet_decoder_logs() -> None:
    """FFmpeg/OpenCV print their own multi-line complaints; we report errors in one line."""
    import os

    import cv2

    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="run_pipeline.py", description=__doc__.split("\n\n")[0],
        epilog="Every config key is documented in docs/configuration.md. Exit codes: 0 ok, "
               "2 bad input/config/weights, 3 sink delivery failed, 130 interrupted.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", "-c", help="YAML config file (e.g. configs/demo.yaml)")
    p.add_argument("--source", "-s", action="append", metavar="URI",
                   help="video file, folder of images, folder of videos, glob ('videos/*.mp4'), "
                        "rtsp://, http://, udp:// stream or camera index; repeat for several "
                        "streams (overrides source:/sources:)")
    p.add_argument("--stream-id", help="id of the stream in the results (default: file name)")
    p.add_argument("--output", "-o", help="output folder for JSONL and overlay video "
                   "(overrides output:)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, e.g. --set keyframes.interval=5 (repeatable; "
                        "VALUE is YAML)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--restart", action="store_true",
                   help="ignore checkpoints and finished markers in --output: redo every input")
    p.add_argument("--summary-json", metavar="FILE", help="also write the run summary as JSON")
    p.add_argument("--print-config", action="store_true", help="print the effective config and exit")
    p.add_argument("--log-level", default="WARNING", help="DEBUG, INFO, WARNING (default), ERROR")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=getattr(logging, str(args.log_level).upper(), logging.WARNING),
                        format="%(levelname)s %(name)s: %(message)s")
    status.setLevel(logging.INFO)
    if logging.getLogger().level > logging.DEBUG:  # kafka-python logs each refused connection
        logging.getLogger("kafka").setLevel(logging.CRITICAL)
    _quiet_decoder_logs()
    from streams.sinks import SinkError
    from streams.sources import SourceError
    from vis.detection.models import WeightsError
    from vis.detection.precomputed import PrecomputedError

    try:
        cfg = load_config(args.config, args.overrides, sources=args.source, output=args.output,
                          stream_id=args.stream_id)
    except ConfigError as exc:
        print(f"error: invalid config: {exc}", file=sys.stderr)
        return EXIT_INPUT
    if args.print_config:
        print(yaml.safe_dump(to_mapping(cfg), sort_keys=False))
        return EXIT_OK

    stop = threading.Event()
    interrupted = {"signal": None}

    def on_signal(signum, _frame):
        interrupted["signal"] = signal.Signals(signum).name
        stop.set()

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        summary = run(cfg, progress=not args.no_progress, stop=stop, restart=args.restart)
    except (ConfigError, SourceError, WeightsError, PrecomputedError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except SinkError as exc:  # e.g. the Kafka broker is down at start
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_SINK
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    if interrupted["signal"] and summary.exit_code == 0:
        summary.exit_code = EXIT_INTERRUPTED
        summary.error = f"interrupted by {interrupted['signal']}: processed frames were written"
    print(summary.render())
    if args.summary_json:
        Path(args.summary_json).write_text(json.dumps(summary.to_json(), indent=2) + "\n")
    if summary.error:
        print(f"error: {summary.error}", file=sys.stderr)
    return summary.exit_code


if __name__ == "__main__":
    sys.exit(main())
