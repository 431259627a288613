"""Soak: a 1080p live camera with about 50 moving objects through the whole pipeline for
``--minutes``, sampled every ``--every-s`` seconds.

    PYTHONPATH=. OMP_NUM_THREADS=1 .venv/bin/python -m bench.soak              # 30 minutes
    PYTHONPATH=. OMP_NUM_THREADS=1 .venv/bin/python -m bench.soak --minutes 3  # a smoke run

The camera: a synthetic 1920x1080 scene (``vis_eval.synthetic``, 50 objects bouncing in
view) rendered once into a JPEG clip that ffmpeg serves as an HTTP MJPEG stream on loopback
at 25 fps, looping forward and back forever (``bench/soak_clip.py``). The pipeline reads it
as any camera: ``vis_pipeline.run`` with ``configs/live.yaml`` (live mode, the newest
``live.buffer_frames`` frames kept, older ones dropped and counted). The detector is
``detector.type: precomputed`` over the scene's ground truth (every object, each keyframe),
so the soak measures tracking, propagation, encoding and the sinks, not a CNN. Sinks: JSONL
(truncated every window after its size is counted and its last line validated, so the disk
does not fill) and ``KafkaSink`` to the embedded tansu broker (``devtools/broker.py``; it
keeps every record in its own memory, so its RSS is sampled apart; ``--no-kafka`` leaves
it out).

Every window: this process's RSS (at the window's end, and its smallest and largest of the
per-second reads in the window), per-stage latency p50/p99/max over the window (every stage
the pipeline's ``StageTimer``s record, plus ``end_to_end``: frame decoded -> result handed to
the writer), frames read / processed / dropped, live tracks, and the largest depth seen of
each queue (reader -> loop, loop -> writer) against its bound. A thread of the bench takes
the samples on time from the pipeline's own counters (``StageTimer``s keep their latest
samples and count every call: ``bench/soak_metrics.py``); the queue depths are noted every
turn of the processing loop, where the bench's sampler stands in for the live status
reporter and passes each call on to it (``observed_run``; no product code changes).

Writes bench/results/soak.json, bench/results/soak.md and docs/soak.png (``--out`` and
``--plot`` move them). A run shorter than 30 minutes is labelled a smoke run.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from tqdm import tqdm

from bench.common import RESULTS, ROOT, TMP, setup_logging, write_report
from bench.soak_clip import LABELS, ClipSpec, LoopedDetector, ensure_clip
from bench.soak_metrics import StageWindows, conclude, rss_bytes
from bench.soak_report import markdown, plot
from vis.config import ConfigError
from vis.detection.factory import build_detector
from vis_pipeline import load_config, run, runner

log = logging.getLogger("bench.soak")

FULL_MINUTES = 30.0
MB = 1024 * 1024
SUMMARY_KEYS = ("exit_code", "error", "frames", "seconds", "streams", "sink_stats")


class Sampler:
    """Takes a sample every ``every_s`` seconds on a thread of its own (``start``/``close``);
    the processing loop calls ``maybe_report`` every turn, where the largest queue depths
    of the window are kept.

    Args:
        every_s: window length.
        pids: other processes whose RSS is sampled too (``{"server": pid, ...}``).
    """

    def __init__(self, every_s: float, pids: dict[str, int]) -> None:
        self.every_s = every_s
        self.pids = pids
        self.samples: list[dict] = []
        self.started = time.monotonic()
        self.product_status = None  # the loop's own status reporter, still called
        self.writer = None
        self.stream = None
        self._windows: StageWindows | None = None
        self._depth = {"reader": 0, "buffer": 0, "writer": 0}
        self._rss = (float("inf"), 0.0)  # smallest and largest RSS (MB) of the window
        self._last = {"t": self.started, "in": 0, "out": 0, "dropped": 0}
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="soak-sampler", daemon=True)

    def attach(self, status, writer) -> None:
        self.product_status, self.writer = status, writer

    def start(self) -> None:
        self.started = self._last["t"] = time.monotonic()
        self._thread.start()

    def close(self) -> None:
        self._done.set()
        self._thread.join()

    # the StatusReporter interface, called by Scheduler.run every turn
    def maybe_report(self, streams: list) -> None:
        if self.product_status is not None:
            self.product_status.maybe_report(streams)
        if len(streams) != 1:
            return
        stream = self.stream = streams[0]
        depth = self._depth
        depth["reader"] = max(depth["reader"], stream.queue.qsize())
        depth["buffer"] = max(depth["buffer"], len(stream.buffer))
        depth["writer"] = max(depth["writer"], self.writer.queue.qsize())

    def _loop(self) -> None:
        """RSS every second (its smallest and largest of the window are kept: it swings with
        per-frame arrays), a whole sample at the end of every window."""
        tick = min(1.0, self.every_s)
        k, due = 1, self.started + self.every_s
        while not self._done.wait(max(0.0, self.started + k * tick - time.monotonic())):
            k += 1
            rss = rss_bytes() / MB
            self._rss = (min(self._rss[0], rss), max(self._rss[1], rss))
            if time.monotonic() >= due - 1e-3:
                due += self.every_s
                if self.stream is not None:
                    self._sample(self.stream, time.monotonic())

    def _sample(self, stream, now: float) -> None:
        if self._windows is None:
            timers = [stream.timer, stream.processor.timer, stream.latency, self.writer.timer]
            self._windows = StageWindows(timers)
        frames_in = stream.source.stats["frames"]
        frames_out = stream.processor.frames
        dropped = stream.dropped["dropped"]
        last = self._last
        span = now - last["t"]
        depth, self._depth = self._depth, {k: 0 for k in self._depth}
        rss = rss_bytes() / MB
        low, high = min(self._rss[0], rss), max(self._rss[1], rss)
        self._rss = (float("inf"), 0.0)
        tracker = getattr(stream.processor, "tracker", None)
        self.samples.append(
            {
                "t_s": round(now - self.started, 2),
                "span_s": round(span, 2),
                "rss_mb": round(rss, 1),
                "rss_min_mb": round(low, 1),
                "rss_max_mb": round(high, 1),
                "other_rss_mb": {k: round(rss_bytes(p) / MB, 1) for k, p in self.pids.items()},
                "frames_in": frames_in,
                "frames_out": frames_out,
                "dropped": dropped,
                "keyframes": stream.processor.keyframes,
                "fps_in": round((frames_in - last["in"]) / span, 2),
                "fps_out": round((frames_out - last["out"]) / span, 2),
                "dropped_per_s": round((dropped - last["dropped"]) / span, 2),
                "tracks": len(tracker.tracks) if hasattr(tracker, "tracks") else None,
                "queue_max": depth,
                "queue_bound": {
                    "reader": stream.queue.maxsize,
                    "buffer": None,
                    "writer": self.writer.queue.maxsize,
                },
                "stages": {k: dataclasses.asdict(v) for k, v in self._windows.take().items()},
            }
        )
        self._last = {"t": now, "in": frames_in, "out": frames_out, "dropped": dropped}


@contextlib.contextmanager
def observed_run(sampler: Sampler, wrap) -> Iterator[None]:
    """While open, ``vis_pipeline.run`` builds its processing loop with the sampler in the
    place of the status reporter and its detector passed through ``wrap``."""
    original = runner.Scheduler

    class ObservedScheduler(original):  # type: ignore[misc, valid-type]
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self.detector = wrap(self.detector)
            sampler.attach(self.status, self.writer)
            self.status = sampler

    runner.Scheduler = ObservedScheduler
    try:
        yield
    finally:
        runner.Scheduler = original


def serve(clip: Path, fps: float, port: int) -> subprocess.Popen:
    """ffmpeg serving ``clip`` (concatenated JPEGs) as HTTP MJPEG, paced, looped forever."""
    import imageio_ffmpeg

    url = f"http://127.0.0.1:{port}/soak.mjpg"
    args = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "fatal", "-re"]
    args += ["-stream_loop", "-1", "-f", "mjpeg", "-framerate", f"{fps:g}", "-i", str(clip)]
    args += ["-c:v", "copy", "-f", "mpjpeg", "-listen", "1", url]
    return subprocess.Popen(args)


class JsonlRotation:
    """Counts and validates what the JSONL sink wrote, then truncates the file (the sink
    appends, so its next line starts the file again)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.bytes = 0
        self.checked = 0
        self.bad: list[str] = []

    def rotate(self) -> None:
        from vis.schema import SchemaError, validate_record

        for path in self.folder.glob("*.jsonl"):
            data = path.read_bytes()
            lines = data.split(b"\n")
            complete = [ln for ln in lines[:-1] if ln.strip()]
            if complete:
                try:
                    validate_record(json.loads(complete[-1]))
                    self.checked += 1
                except (ValueError, SchemaError) as exc:
                    self.bad.append(f"{path.name}: {exc}")
            self.bytes += len(data)
            with open(path, "r+b") as fh:
                fh.truncate(0)


def soak_config(clip: Path, url: str, out: Path, kafka: str | None, extra: list[str]):
    """``configs/live.yaml`` on the camera ``url``, the clip's ground truth as detections,
    JSONL into ``out`` and, with ``kafka`` (bootstrap servers), ``KafkaSink``; then ``extra``."""
    overrides = [
        "mode=live",
        "resume=false",
        "detector.type=precomputed",
        f"detector.path={clip / 'detections.jsonl'}",
        f"detector.labels=[{','.join(LABELS)}]",
        "detector.embedder=histogram",
        "sinks.jsonl=true",
        "sinks.overlay=false",
        "live.report_every_s=0",
    ]
    if kafka is not None:
        overrides.append(f"sinks.kafka={{bootstrap_servers: '{kafka}', topic: vis.soak}}")
    overrides += extra
    cfg = load_config(ROOT / "configs" / "live.yaml", overrides, sources=[url], output=str(out))
    return cfg, overrides


def run_soak(a: argparse.Namespace) -> dict:
    """The whole soak: clip, camera, broker, pipeline, samples; returns the payload."""
    from devtools.broker import EmbeddedBroker, free_port

    spec = ClipSpec(width=a.width, height=a.height, objects=a.objects, frames=a.clip_frames)
    clip = ensure_clip(spec, a.clip_cache)
    port = free_port()
    out = Path(tempfile.mkdtemp(prefix="vis-soak-"))
    stop, box = threading.Event(), {}
    looped: list[LoopedDetector] = []
    server = serve(clip / "clip.mjpeg", spec.fps, port)
    broker = None
    try:
        broker = EmbeddedBroker().start() if a.kafka else None
        url = f"http://127.0.0.1:{port}/soak.mjpg"
        kafka = broker.bootstrap_servers if broker is not None else None
        cfg, overrides = soak_config(clip, url, out, kafka, a.set)
        pids = {"server": server.pid} | ({"broker": broker.pid} if broker else {})
        sampler = Sampler(a.every_s, pids)

        def wrap(first):
            looped.append(LoopedDetector(lambda: build_detector(cfg.detector), spec.period, first))
            return looped[0]

        def pipeline() -> None:
            try:
                box["summary"] = run(cfg, progress=False, stop=stop)
            except BaseException as exc:  # noqa: BLE001 - reported by the main thread
                box["error"] = exc

        rotation = JsonlRotation(out)
        with observed_run(sampler, wrap):
            thread = threading.Thread(target=pipeline, name="soak-run")
            thread.start()
            sampler.start()
            try:
                _wait(a.minutes * 60.0, a.every_s, sampler, rotation, thread)
            finally:
                sampler.close()
                stop.set()
                thread.join(120)
        rotation.rotate()
    finally:
        stop.set()
        server.kill()
        server.wait()
        if broker is not None:
            broker.close()
        for d in looped:
            d.close()
        shutil.rmtree(out, ignore_errors=True)
    if "error" in box:
        raise RuntimeError(f"the pipeline failed: {box['error']!r}") from box["error"]
    if "summary" not in box:
        raise RuntimeError("the pipeline did not finish within 120 s of the stop")
    summary = box["summary"].to_json()
    if not sampler.samples:
        raise RuntimeError(f"no sample taken: the run ended early ({summary.get('error')})")
    detector = looped[0] if looped else None
    return {
        "run": "full" if a.minutes >= FULL_MINUTES else "smoke",
        "minutes": a.minutes,
        "every_s": a.every_s,
        "clip": json.loads((clip / "done.json").read_text()),
        "overrides": overrides,
        "kafka": bool(a.kafka),
        "detector_frames": detector.frames if detector else 0,
        "misaligned_frames": detector.misaligned if detector else None,
        "jsonl": {
            "bytes": rotation.bytes,
            "lines_validated": rotation.checked,
            "bad": rotation.bad,
        },
        "summary": {k: summary.get(k) for k in SUMMARY_KEYS},
        "conclusions": conclude(sampler.samples),
        "samples": sampler.samples,
    }


def _wait(seconds: float, every_s: float, sampler: Sampler, rotation, thread) -> None:
    """Until ``seconds`` have passed (or the run ended): progress, JSONL rotation."""
    bar = tqdm(total=int(seconds), unit="s", desc="soak", dynamic_ncols=True, file=sys.stderr)
    start = time.monotonic()
    next_rotation = start + every_s
    while thread.is_alive() and time.monotonic() - start < seconds:
        time.sleep(1.0)
        bar.n = min(int(time.monotonic() - start), int(seconds))
        if sampler.samples:
            s = sampler.samples[-1]
            bar.set_postfix(rss_mb=s["rss_mb"], fps=s["fps_out"], dropped=s["dropped"])
        bar.refresh()
        if time.monotonic() >= next_rotation:
            rotation.rotate()
            next_rotation += every_s
    bar.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--minutes", type=float, default=FULL_MINUTES, help="length of the run")
    ap.add_argument("--every-s", type=float, default=10.0, help="sampling window, seconds")
    ap.add_argument("--width", type=int, default=1920, help="camera frame width")
    ap.add_argument("--height", type=int, default=1080, help="camera frame height")
    ap.add_argument("--objects", type=int, default=50, help="objects in the scene")
    ap.add_argument(
        "--clip-frames", type=int, default=125, help="rendered frames (loop: twice that, -2)"
    )
    ap.add_argument(
        "--clip-cache", type=Path, default=TMP / "soak", help="where rendered clips are kept"
    )
    ap.add_argument(
        "--no-kafka",
        dest="kafka",
        action="store_false",
        help="JSONL only (default: also KafkaSink to an embedded tansu broker)",
    )
    ap.add_argument("--set", action="append", default=[], help="extra config override k=v")
    ap.add_argument("--out", type=Path, default=RESULTS, help="folder of soak.json / soak.md")
    ap.add_argument("--plot", type=Path, default=ROOT / "docs" / "soak.png", help="the PNG")
    a = ap.parse_args(argv)
    if a.minutes <= 0 or a.every_s <= 0 or a.minutes * 60 < 3 * a.every_s:
        ap.error(f"--minutes {a.minutes} must cover at least 3 windows of --every-s {a.every_s}")
    if not 2 <= a.clip_frames <= 2000 or a.objects < 1 or min(a.width, a.height) < 200:
        ap.error(
            "--clip-frames must be in [2, 2000], --objects >= 1 and the frame at least 200x200 "
            f"(got {a.clip_frames}, {a.objects}, {a.width}x{a.height})"
        )
    setup_logging()
    try:
        payload = run_soak(a)
    except ConfigError as exc:  # a bad --set
        print(f"bench.soak: {exc}", file=sys.stderr)
        return 2
    md = markdown(payload)
    if a.out == RESULTS:
        write_report("soak", payload, md)
    else:
        a.out.mkdir(parents=True, exist_ok=True)
        (a.out / "soak.json").write_text(json.dumps(payload, indent=1) + "\n")
        (a.out / "soak.md").write_text(md)
    plot(payload, a.plot)
    c = payload["conclusions"]
    print(md)
    print(
        f"soak ({payload['run']}, {a.minutes:g} min): RSS {c['rss']['at_warmup_mb']} -> "
        f"{c['rss']['end_mb']} MB ({c['rss']['growth_pct']:+.2f} %), "
        f"{payload['summary']['frames']} frames, misaligned {payload['misaligned_frames']}; "
        f"wrote {a.out / 'soak.md'} and {a.plot}"
    )
    return 0 if payload["summary"]["exit_code"] in (0, None) else 1


if __name__ == "__main__":
    sys.exit(main())
