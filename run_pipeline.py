"""Run the vis pipeline: decode -> keyframe Mask R-CNN -> propagate + track -> sinks.

    python run_pipeline.py --config configs/demo.yaml
    python run_pipeline.py --config configs/demo.yaml --source video.mp4 --output out/ \\
        --set keyframes.interval=5 --set detector.score_threshold=0.6

Stages run in three threads joined by bounded queues (reader -> processor -> writer); when
the processor is slower than decoding, the reader blocks (offline back-pressure: no frame
is dropped). Every result is handed to the sinks in frame order; the JSONL sink flushes
each line, so an interrupted run keeps every finished frame.

Exit codes: 0 done; 2 bad input, config or weights; 3 a sink could not deliver;
130 interrupted (SIGINT/SIGTERM) after flushing what was processed.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import queue
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import yaml

from vis.config import ConfigError, from_mapping, set_path, to_mapping
from vis.detection.factory import DetectorConfig
from vis.pipeline import KeyframeConfig, KeyframeSchedule, StageTimer, StreamProcessor
from vis.propagation import PropagationConfig
from vis.tracking.tracker import TrackerConfig

log = logging.getLogger("vis.run")

EXIT_OK, EXIT_INPUT, EXIT_SINK, EXIT_INTERRUPTED = 0, 2, 3, 130
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
class PipelineConfig:
    """The whole run. See docs/configuration.md for every key."""

    source: str | None = None
    stream_id: str | None = None
    output: str = "out"
    fps: float = 25.0  # timestamps for image folders
    queue_size: int = 8
    detector: DetectorConfig = DetectorConfig()
    keyframes: KeyframeConfig = KeyframeConfig()
    tracker: TrackerConfig = TrackerConfig()
    propagation: PropagationConfig = PropagationConfig()
    sinks: SinksConfig = SinksConfig()

    def __post_init__(self) -> None:
        if self.queue_size < 1:
            raise ConfigError(f"queue_size={self.queue_size!r} must be >= 1")
        if self.fps <= 0:
            raise ConfigError(f"fps={self.fps!r} must be > 0")


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
    for key, value in cli.items():
        if value is not None:
            data[key] = value
    return from_mapping(PipelineConfig, data)


# -- stages ------------------------------------------------------------------------------------
class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def _reader(source, out: queue.Queue, stop: threading.Event, timer: StageTimer) -> None:
    it = iter(source)
    try:
        while not stop.is_set():
            with timer("decode"):
                frame = next(it, None)
            if frame is None:
                break
            while not stop.is_set():
                try:
                    out.put(frame, timeout=0.2)
                    break
                except queue.Full:
                    continue
    except BaseException as exc:  # noqa: BLE001 - handed to the main thread
        out.put(_Failure(exc))
    finally:
        out.put(_SENTINEL)


def _writer(inq: queue.Queue, sinks: list, overlay, timer: StageTimer, errors: list,
            stop: threading.Event) -> None:
    failed = False
    while True:
        item = inq.get()
        if item is _SENTINEL:
            break
        if failed:
            continue  # drain so the processor never blocks
        image, result = item
        try:
            with timer("sink"):
                for s in sinks:
                    s.write(result)
                if overlay is not None:
                    overlay.write_frame(image, result)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)
            failed = True
            stop.set()


@dataclasses.dataclass
class RunSummary:
    stream_id: str
    source: str
    frames: int = 0
    keyframes: int = 0
    tracks: int = 0
    corrupt_frames: int = 0
    truncated: bool = False
    seconds: float = 0.0
    stage_seconds: dict[str, float] = dataclasses.field(default_factory=dict)
    sink_stats: dict[str, Any] = dataclasses.field(default_factory=dict)
    outputs: list[str] = dataclasses.field(default_factory=list)
    exit_code: int = 0
    error: str | None = None

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> dict:
        d = dataclasses.asdict(self)
        d["fps"] = round(self.fps, 3)
        return d

    def render(self) -> str:
        lines = [f"stream {self.stream_id} ({self.source})",
                 f"  frames {self.frames}  keyframes {self.keyframes}  tracks {self.tracks}  "
                 f"corrupt skipped {self.corrupt_frames}{'  TRUNCATED' if self.truncated else ''}",
                 f"  time {self.seconds:.1f} s  fps {self.fps:.2f}"]
        if self.stage_seconds:
            per = "  ".join(f"{k} {v / max(self.frames, 1) * 1000:.1f}"
                            for k, v in self.stage_seconds.items())
            lines.append(f"  ms/frame by stage: {per}")
        for k, v in self.sink_stats.items():
            lines.append(f"  sink {k}: {v}")
        for o in self.outputs:
            lines.append(f"  wrote {o}")
        return "\n".join(lines)


def run(cfg: PipelineConfig, *, progress: bool = True, stop: threading.Event | None = None,
        extra_sinks: list | None = None) -> RunSummary:
    """Run one source through the pipeline. Raises ``SourceError``/``WeightsError`` early."""
    from streams.sinks import JsonlSink, OverlayVideoSink, SinkError
    from streams.sources import open_source
    from vis.detection.factory import build_detector

    if not cfg.source:
        raise ConfigError("source is not set: pass --source PATH or set source: in the config")
    stop = stop or threading.Event()
    source = open_source(cfg.source, stream_id=cfg.stream_id, fps=cfg.fps)
    detector = build_detector(cfg.detector)
    processor = StreamProcessor(stream_id=source.stream_id, labels=detector.labels,
                                tracker=cfg.tracker, propagation=cfg.propagation)
    schedule = KeyframeSchedule(cfg.keyframes)
    out_dir = Path(cfg.output)
    sinks: list = list(extra_sinks or [])
    summary = RunSummary(stream_id=source.stream_id, source=str(cfg.source))
    if cfg.sinks.jsonl:
        jsonl = JsonlSink(out_dir)
        sinks.append(jsonl)
        summary.outputs.append(str(jsonl.path_for(source.stream_id)))
    if cfg.sinks.kafka is not None:
        sinks.append(_kafka_sink(cfg.sinks.kafka))
    overlay = OverlayVideoSink(out_dir, fps=source.fps) if cfg.sinks.overlay else None
    if overlay is not None:
        summary.outputs.append(str(overlay.path_for(source.stream_id)))

    timer = StageTimer()
    writer_timer = StageTimer()
    reader_timer = StageTimer()
    frames_q: queue.Queue = queue.Queue(maxsize=cfg.queue_size)
    results_q: queue.Queue = queue.Queue(maxsize=cfg.queue_size)
    sink_errors: list[BaseException] = []
    reader = threading.Thread(target=_reader, args=(source, frames_q, stop, reader_timer),
                              name="reader", daemon=True)
    writer = threading.Thread(target=_writer, args=(results_q, sinks, overlay, writer_timer,
                                                    sink_errors, stop), name="writer", daemon=True)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=source.declared_frames or None, unit="frame", desc=source.stream_id,
                   dynamic_ncols=True, file=sys.stderr)
    t0 = time.perf_counter()
    reader.start()
    writer.start()
    failure: BaseException | None = None
    try:
        _process(frames_q, results_q, detector, processor, schedule, cfg, timer, stop, bar)
    except BaseException as exc:  # noqa: BLE001 - re-raised after the sinks are flushed
        failure = exc
    finally:
        results_q.put(_SENTINEL)
        writer.join()
        stop.set()
        while reader.is_alive():  # unblock a reader waiting on a full queue
            try:
                frames_q.get_nowait()
            except queue.Empty:
                reader.join(0.05)
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
    summary.frames = processor.frames
    summary.keyframes = processor.keyframes
    summary.tracks = processor.tracker.total_started
    summary.corrupt_frames = source.stats["corrupt"]
    summary.truncated = bool(source.stats["truncated"])
    for t in (reader_timer, timer, processor.timer, writer_timer):
        for k, v in t.seconds.items():
            summary.stage_seconds[k] = summary.stage_seconds.get(k, 0.0) + v
    for s in sinks:
        if getattr(s, "stats", None):
            summary.sink_stats[type(s).__name__] = dict(s.stats)
    if sink_errors:
        exc = sink_errors[0]
        summary.exit_code = EXIT_SINK
        summary.error = str(exc) if isinstance(exc, SinkError) else f"sink failed: {exc!r}"
    elif failure is not None:
        raise failure
    elif source.stats["truncated"]:
        summary.exit_code = EXIT_INPUT
        summary.error = (f"video {cfg.source} is truncated: decoded {source.stats['frames']} of "
                         f"{source.declared_frames} declared frames (all decoded frames were "
                         "processed and written)")
    return summary


def _process(frames_q, results_q, detector, processor, schedule, cfg, timer, stop, bar) -> None:
    """Main loop: batch pending keyframes through the detector, process frames in order."""
    from collections import deque

    buffer: deque = deque()  # (frame, is_keyframe), in order
    dets: dict[int, Any] = {}
    eof = False
    batch = cfg.detector.batch_size
    lookahead = max(1, batch * cfg.keyframes.interval)

    def pull(block: bool) -> bool:
        nonlocal eof
        if eof:
            return False
        item = frames_q.get() if block else frames_q.get_nowait()
        if item is _SENTINEL:
            eof = True
            return False
        if isinstance(item, _Failure):
            raise item.exc
        buffer.append((item, schedule.is_keyframe(item)))
        return True

    while not stop.is_set():
        if not buffer and not pull(block=True):
            break
        frame, is_kf = buffer[0]
        if is_kf and frame.index not in dets:
            pending = sum(1 for f, k in buffer if k and f.index not in dets)
            while pending < batch and len(buffer) < lookahead and pull(block=True):
                pending += buffer[-1][1]
            todo = [f for f, k in buffer if k and f.index not in dets][:batch]
            with timer("detect"):
                for f, d in zip(todo, detector.detect_frames(todo)):
                    dets[f.index] = d
        buffer.popleft()
        result = processor.process(frame, dets.pop(frame.index, None) if is_kf else None)
        while True:
            try:
                results_q.put((frame.image, result), timeout=0.2)
                break
            except queue.Full:
                if stop.is_set():
                    return
        if bar is not None:
            bar.update(1)
            bar.set_postfix(tracks=len(result.detections), refresh=False)


def _kafka_sink(settings: dict):
    from streams.kafka_sink import KafkaSink, KafkaSinkConfig

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
    p.add_argument("--source", "-s", help="video file or folder of images (overrides source:)")
    p.add_argument("--stream-id", help="id of the stream in the results (default: file name)")
    p.add_argument("--output", "-o", help="output folder for JSONL and overlay video "
                   "(overrides output:)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, e.g. --set keyframes.interval=5 (repeatable; "
                        "VALUE is YAML)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--summary-json", metavar="FILE", help="also write the run summary as JSON")
    p.add_argument("--print-config", action="store_true", help="print the effective config and exit")
    p.add_argument("--log-level", default="WARNING", help="DEBUG, INFO, WARNING (default), ERROR")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=getattr(logging, str(args.log_level).upper(), logging.WARNING),
                        format="%(levelname)s %(name)s: %(message)s")
    _quiet_decoder_logs()
    from streams.sources import SourceError
    from vis.detection.models import WeightsError
    from vis.detection.precomputed import PrecomputedError

    try:
        cfg = load_config(args.config, args.overrides, source=args.source, output=args.output,
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
        summary = run(cfg, progress=not args.no_progress, stop=stop)
    except (ConfigError, SourceError, WeightsError, PrecomputedError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INPUT
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
