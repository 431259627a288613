"""Scaling: tracker time per frame vs number of instances, propagation time vs resolution.

    python -m bench.scaling
    python -m bench.scaling --instances 5 10 20 50 100 --resolutions 360 540 720 1080

1. Instances (1280x720, ``vis.tracking.Tracker`` with the default ``TrackerConfig``, no
   flow): N disks (radius 12-24 px) drift 2 px/frame with 64-d appearance embeddings. Per
   frame: ``predict`` + ``update`` with N detections (a keyframe: mask IoU + embedding cost,
   Hungarian, lifecycle, smoothing), and ``update(None)`` (a propagated frame: Kalman only),
   averaged over 20 frames after 5 warm-up frames.
2. Resolution (synthetic scenes from ``vis_eval.synthetic``, 10 objects scaled with the
   frame): the flow of one frame pair (``FlowEstimator``) and the warp of every object's
   mask (``Propagator.warp_fn``, default ``ecc``) for each flow method (``dis_ultrafast``
   default, ``dis_fast``, ``dis_medium``, ``farneback``), median over 10 frame pairs.

One process, one core set; absolute times vary by machine, the ratios are the point.
Writes bench/results/scaling.{json,md,png}.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from bench.common import RESULTS, setup_logging, write_report
from vis_eval.synthetic import SceneConfig, render_sequence
from vis_eval.tables import markdown_table
from vis.ops.masks import BoxMask
from vis.propagation import PropagationConfig, Propagator
from vis.tracking.tracker import Tracker, TrackerConfig
from vis.schema import json_of
from vis.types import Detections, FrameResult

log = logging.getLogger("bench.scaling")

RES = {360: (640, 360), 540: (960, 540), 720: (1280, 720), 1080: (1920, 1080)}


def _scene_dets(n: int, frame: int, rng_state: dict, h: int = 720, w: int = 1280) -> Detections:
    pos, vel, rad, app = rng_state["pos"], rng_state["vel"], rng_state["rad"], rng_state["app"]
    noise = rng_state["rng"]
    centres = pos + vel * frame
    masks = np.zeros((n, h, w), bool)
    boxes = np.zeros((n, 4), np.float32)
    for i, ((cx, cy), r) in enumerate(zip(centres, rad)):
        m = np.zeros((h, w), np.uint8)
        cv2.circle(m, (int(round(cx)), int(round(cy))), int(r), 1, -1)
        masks[i] = m.astype(bool)
        ys, xs = np.nonzero(m)
        boxes[i] = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
    emb = app + noise.normal(0, 0.05, app.shape)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    return Detections(
        xyxy=boxes,
        masks=masks,
        scores=np.full(n, 0.9, np.float32),
        class_ids=np.ones(n, np.int64),
        embeddings=emb.astype(np.float32),
    )


def instances_study(
    counts: list[int], frames: int = 20, warmup: int = 5, height: int = 1080
) -> list[dict]:
    """Tracker and record-encoding time per frame vs instances, at a 16:9 ``height``."""
    w, h = RES[height]
    s = h / 720
    rows = []
    for n in counts:
        rng = np.random.default_rng(n)
        state = {
            "pos": np.stack(
                [rng.uniform(60 * s, w - 60 * s, n), rng.uniform(60 * s, h - 60 * s, n)], 1
            ),
            "vel": rng.normal(0, 1.4 * s, (n, 2)),
            "rad": rng.uniform(12 * s, 24 * s, n),
            "app": rng.normal(size=(n, 64)),
            "rng": rng,
        }
        dets = [_scene_dets(n, f, state, h, w) for f in range(warmup + frames)]
        tr = Tracker(TrackerConfig(), min_mask_area=20, smoothing=0.7)
        key, prop, assoc, enc = [], [], [], []
        for f, d in enumerate(dets):
            a0 = tr.association_s
            t0 = time.perf_counter()
            out = tr.update(d, frame_index=2 * f, image_size=(h, w))
            t1 = time.perf_counter()
            a1 = tr.association_s
            shown = tr.update(None, frame_index=2 * f + 1, image_size=(h, w))
            t2 = time.perf_counter()
            json_of(FrameResult("s", 2 * f + 1, 0.0, False, w, h, shown, ["bg", "obj"]))
            t3 = time.perf_counter()
            if f >= warmup:
                key.append(t1 - t0)
                prop.append(t2 - t1)
                assoc.append(a1 - a0)
                enc.append(t3 - t2)
        rows.append(
            {
                "instances": n,
                "keyframe_ms": 1000 * float(np.mean(key)),
                "association_ms": 1000 * float(np.mean(assoc)),
                "encode_ms": 1000 * float(np.mean(enc)),
                "resolution": f"{w}x{h}",
                "propagated_ms": 1000 * float(np.mean(prop)),
                "tracks_out": len(out),
            }
        )
        log.info("N=%d: keyframe update %.1f ms", n, rows[-1]["keyframe_ms"])
    return rows


def resolution_study(heights: list[int], methods: list[str], pairs: int = 10) -> list[dict]:
    rows = []
    for hgt in heights:
        w, h = RES[hgt]
        s = h / 360
        cfg = SceneConfig(
            width=w,
            height=h,
            n_frames=pairs + 1,
            seed=7,
            n_objects=10,
            spawn_rate=0.0,
            size_range=(14 * s, 40 * s),
            speed_range=(1 * s, 4 * s),
            bounce_fraction=1.0,
            max_objects=10,
        )
        frames = list(render_sequence(cfg))
        grays = [cv2.cvtColor(f.image, cv2.COLOR_BGR2GRAY) for f in frames]
        for method in methods:
            prop = Propagator(dataclasses.replace(PropagationConfig(), method=method))
            flow_t, warp_t = [], []
            for i in range(pairs):
                masks = [BoxMask.from_full(m) for m in frames[i].masks]
                t0 = time.perf_counter()
                warp = prop.warp_fn(grays[i], grays[i + 1])  # computes the flow
                t1 = time.perf_counter()
                for m in masks:
                    if m is not None:
                        warp(m)
                t2 = time.perf_counter()
                flow_t.append(t1 - t0)
                warp_t.append(t2 - t1)
            rows.append(
                {
                    "resolution": f"{w}x{h}",
                    "height": hgt,
                    "method": method,
                    "objects": len(frames[0].masks),
                    "flow_ms": 1000 * float(np.median(flow_t)),
                    "warp_ms": 1000 * float(np.median(warp_t)),
                    "total_ms": 1000 * float(np.median(np.add(flow_t, warp_t))),
                }
            )
            log.info(
                "%s %s: flow %.1f ms, warp %.1f ms",
                rows[-1]["resolution"],
                method,
                rows[-1]["flow_ms"],
                rows[-1]["warp_ms"],
            )
    return rows


def plot(inst: list[dict], res: list[dict], path: Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log.warning("matplotlib not installed: no plot")
        return None
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4), dpi=110)
    n = [r["instances"] for r in inst]
    a.plot(n, [r["keyframe_ms"] for r in inst], "o-", label="keyframe update (all)")
    a.plot(n, [r["propagated_ms"] for r in inst], "s--", label="propagated-frame tracker update")
    if "association_ms" in inst[0]:
        a.plot(n, [r["association_ms"] for r in inst], "^-", label="of a keyframe: association")
        a.plot(n, [r["encode_ms"] for r in inst], "d:", label="vis.frame/2 record encoding")
    a.set_xlabel("instances per frame")
    a.set_ylabel("ms per frame")
    a.set_title(f"Tracker and encoding, {inst[0]['resolution']}", fontsize=10)
    a.legend(fontsize=8)
    methods = list(dict.fromkeys(r["method"] for r in res))
    for method in methods:
        rr = [r for r in res if r["method"] == method]
        b.plot([r["height"] for r in rr], [r["flow_ms"] for r in rr], "o-", label=f"flow {method}")
    rr = [r for r in res if r["method"] == methods[0]]
    b.plot(
        [r["height"] for r in rr],
        [r["warp_ms"] for r in rr],
        "ks--",
        label=f"warp 10 masks (ecc, {methods[0]} init)",
    )
    b.set_yscale("log")
    b.set_xlabel("frame height (16:9)")
    b.set_ylabel("ms per frame (log)")
    b.set_xticks(sorted({r["height"] for r in res}))
    b.set_title("Propagation per frame vs resolution", fontsize=10)
    b.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.scaling",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--instances", type=int, nargs="+", default=[5, 10, 20, 50, 100])
    p.add_argument(
        "--instances-height", type=int, default=1080, choices=sorted(RES), help="frame height"
    )
    p.add_argument(
        "--resolutions", type=int, nargs="+", default=[360, 540, 720, 1080], choices=sorted(RES)
    )
    p.add_argument(
        "--methods", nargs="+", default=["dis_ultrafast", "dis_fast", "dis_medium", "farneback"]
    )
    p.add_argument("--name", default="scaling")
    a = p.parse_args(argv)
    setup_logging()
    cv2.setNumThreads(2)
    inst = instances_study(a.instances, height=a.instances_height)
    res = resolution_study(a.resolutions, a.methods)
    png = plot(inst, res, RESULTS / f"{a.name}.png")
    md = [
        f"Tracker and encoding time per frame vs instances ({inst[0]['resolution']}, 64-d "
        "embeddings; association = cost matrices + assignment, part of the keyframe update; "
        "encoding = the propagated frame's `vis.frame/2` record, RLE + JSON):",
        "",
        markdown_table(
            inst,
            [
                ("instances", "instances", "d"),
                ("keyframe_ms", "keyframe update ms", ".2f"),
                ("association_ms", "of which association ms", ".2f"),
                ("propagated_ms", "propagated-frame update ms", ".3f"),
                ("encode_ms", "record encoding ms", ".2f"),
            ],
        ),
        "",
        "Propagation per frame vs resolution (10 objects, warp = ecc):",
        "",
        markdown_table(
            res,
            [
                ("resolution", "resolution", "s"),
                ("method", "flow", "s"),
                ("flow_ms", "flow ms", ".1f"),
                ("warp_ms", "warp ms", ".1f"),
                ("total_ms", "total ms", ".1f"),
            ],
        ),
    ]
    write_report(
        a.name,
        {"instances": inst, "resolution": res, "plot": png.name if png else None},
        "\n".join(md),
    )
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
