"""Cost of a propagated frame, by stage, live and offline, before and after a change.

    PYTHONPATH=. python -m bench.frame_cost
    PYTHONPATH=. python -m bench.frame_cost --baseline 1942bf7 --cases 360:10 720:10 1080:50

A synthetic scene per case (resolution x tracks [x spread]): textured objects (sizes from 1/30
to 1/10 of the frame height) moving 1-6 px/frame over a textured background, anywhere in the
frame or (spread < 1) in its centred part: a group of people in a wide view. Keyframes every 10
frames get the objects' true masks as detections (no detector: its cost is not the point);
the propagated frames after the tracks are confirmed (frames 11-19 and 21-29) are timed by
stage, one thread, and the median per stage is reported:

* ``grey``: colour -> grey conversion (and whatever ``track`` does outside the stages below);
* ``flow``: the frame pair's optical flow (resizing included; ``resize`` / ``dis`` split it
  where the code reports it);
* ``warp``: moving every track's mask (the calls of ``Propagator.warp_fn``'s function);
* ``kalman``: the rest of ``Tracker.predict`` (each track's Kalman prediction);
* ``update``: the tracker's propagated-frame update;
* ``backward`` (offline): carrying the next keyframe's masks back and fusing them, per
  propagated frame (``FrameResult`` construction, a sink-side full-frame paste, excluded).

Decode and sinks are excluded. With ``--baseline REV`` each case runs first on that commit
(``git archive`` into a temporary folder, its own default settings) in a subprocess, then on
this code, case by case, so before and after share the machine's load. Writes
bench/results/frame_cost.{json,md}, with the load average (the machine is shared).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

log = logging.getLogger("bench.frame_cost")

RES = {360: (640, 360), 720: (1280, 720), 1080: (1920, 1080)}
DEFAULT_CASES = ["360:10", "720:10", "1080:10:0.3", "1080:50", "1080:100"]
INTERVAL = 10
FRAMES = 30  # keyframes 0, 10, 20, 30; frames 11-19 and 21-29 are timed
STAGES = ("grey", "flow", "warp", "kalman", "update", "backward")
PARTS = ("grey", "flow", "warp", "kalman", "update")  # per propagated frame; + backward


def _texture(rng: np.random.Generator, h: int, w: int, cell: int) -> np.ndarray:
    small = rng.integers(0, 255, (max(h // cell, 2), max(w // cell, 2)), np.uint8)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


class Scene:
    """``n`` textured ellipses moving (bouncing) over a textured background, starting in the
    centred ``spread`` fraction of the frame (1 = anywhere)."""

    def __init__(self, width: int, height: int, n: int, seed: int = 0, spread: float = 1.0) -> None:
        rng = np.random.default_rng(seed)
        self.size = (height, width)
        self.bg = cv2.merge([_texture(rng, height, width, 24)] * 3)
        self.r = rng.uniform(height / 60, height / 20, (n, 2))  # semi-axes
        lo, hi = 0.5 - 0.4 * spread, 0.5 + 0.4 * spread
        self.pos = np.stack([rng.uniform(lo, hi, n) * width, rng.uniform(lo, hi, n) * height], 1)
        speed, angle = rng.uniform(1, 6, n), rng.uniform(0, 2 * np.pi, n)
        self.vel = np.stack([speed * np.cos(angle), speed * np.sin(angle)], 1)
        self.tex = [
            cv2.merge([_texture(rng, int(2 * b + 4), int(2 * a + 4), 4)] * 3) for a, b in self.r
        ]

    def at(self, t: int) -> tuple[np.ndarray, list[tuple[int, int, np.ndarray]]]:
        """(BGR image, [(x0, y0, crop mask)] per object) at frame ``t``."""
        h, w = self.size
        img = self.bg.copy()
        masks = []
        for (a, b), p, v, tex in zip(self.r, self.pos, self.vel, self.tex):
            c = p + v * t
            lo, hi = np.array([a, b]), np.array([w - a, h - b])
            span = hi - lo
            c = lo + np.abs((c - lo + span) % (2 * span) - span)  # bounce off the borders
            th, tw = tex.shape[:2]
            x0, y0 = int(c[0]) - tw // 2, int(c[1]) - th // 2
            m = np.zeros((th, tw), np.uint8)
            cv2.ellipse(m, (tw // 2, th // 2), (int(a), int(b)), 0, 0, 360, 1, -1)
            cx0, cy0 = max(x0, 0), max(y0, 0)
            cx1, cy1 = min(x0 + tw, w), min(y0 + th, h)
            sub = m[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0].astype(bool)
            img[cy0:cy1, cx0:cx1][sub] = tex[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0][sub]
            masks.append((cx0, cy0, sub))
        return img, masks


def _detections(masks, size, emb):
    from vis.types import Detections

    h, w = size
    full = np.zeros((len(masks), h, w), bool)
    boxes = np.zeros((len(masks), 4), np.float32)
    for i, (x0, y0, m) in enumerate(masks):
        full[i, y0 : y0 + m.shape[0], x0 : x0 + m.shape[1]] = m
        boxes[i] = (x0, y0, x0 + m.shape[1], y0 + m.shape[0])
    n = len(masks)
    return Detections(
        xyxy=boxes,
        masks=full,
        scores=np.full(n, 0.9, np.float32),
        class_ids=np.ones(n, np.int64),
        embeddings=emb,
    )


def _flow_stats(proc) -> dict:
    return dict(getattr(proc.propagator.flow, "stats", {}))


def _timed_warps(proc, acc: list[float]) -> None:
    """Make ``proc``'s per-frame warp functions add their time to ``acc[0]``."""
    make = proc.propagator.warp_fn

    def warp_fn(*args, **kwargs):
        warp = make(*args, **kwargs)

        def timed(mask):
            t0 = time.perf_counter()
            out = warp(mask)
            acc[0] += time.perf_counter() - t0
            return out

        return timed

    proc.propagator.warp_fn = warp_fn


def measure(height: int, tracks: int, mode: str, spread: float = 1.0) -> dict:
    """Median ms per propagated frame by stage for one case, in this process's ``vis``."""
    from vis.offline import OfflineStreamProcessor
    from vis.pipeline import StreamProcessor
    from vis.propagation import PropagationConfig
    from vis.tracking.tracker import TrackerConfig
    from vis.types import Frame

    w, h = RES[height]
    scene = Scene(w, h, tracks, seed=tracks, spread=spread)
    rng = np.random.default_rng(1)
    emb = rng.normal(size=(tracks, 64)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    cls = OfflineStreamProcessor if mode == "offline" else StreamProcessor
    proc = cls(
        stream_id="s",
        labels=["bg", "obj"],
        tracker=TrackerConfig(),
        propagation=PropagationConfig(),
    )
    excluded, warped = [0.0], [0.0]
    result = proc.result

    def timed_result(*args, **kwargs):  # sink-side work: timed and left out
        t0 = time.perf_counter()
        out = result(*args, **kwargs)
        excluded[0] += time.perf_counter() - t0
        return out

    proc.result = timed_result
    _timed_warps(proc, warped)
    per_frame: dict[str, list[float]] = {k: [] for k in (*STAGES, "kalman", "resize", "dis")}
    backward = []
    flow_pixels = 0
    for t in range(FRAMES + 1):
        img, masks = scene.at(t)
        frame = Frame("s", t, t * 40.0, img)
        key = t % INTERVAL == 0
        dets = _detections(masks, (h, w), emb) if key else None
        before = dict(proc.timer.seconds)
        fs0, ex0, wa0 = _flow_stats(proc), excluded[0], warped[0]
        t0 = time.perf_counter()
        if mode == "offline":
            proc.emit(frame, dets)
        else:
            proc.track(frame, dets)
        wall = time.perf_counter() - t0
        if t <= INTERVAL:
            continue
        d = {k: proc.timer.seconds.get(k, 0.0) - before.get(k, 0.0) for k in proc.timer.seconds}
        if key:  # offline keyframe: its backward pass serves the INTERVAL - 1 frames it closes
            if mode == "offline":
                back = d.get("propagate_back", 0.0) - (excluded[0] - ex0)
                backward.append(back / (INTERVAL - 1))
            continue
        fs1 = _flow_stats(proc)
        stage = {
            "flow": d.get("flow", 0.0),
            "warp": warped[0] - wa0,
            "kalman": d.get("propagate", 0.0) - (warped[0] - wa0),
            "update": d.get("track", 0.0),
        }
        stage["grey"] = wall - d.get("flow", 0.0) - d.get("propagate", 0.0) - stage["update"]
        stage["resize"] = fs1["resize_s"] - fs0["resize_s"] if fs1 else float("nan")
        stage["dis"] = fs1["flow_s"] - fs0["flow_s"] if fs1 else float("nan")
        flow_pixels += fs1["pixels"] - fs0["pixels"] if fs1 else w * h
        for k, v in stage.items():
            per_frame[k].append(v)
    row = {k: 1000 * float(np.median(v)) for k, v in per_frame.items() if v}
    row["backward"] = 1000 * float(np.median(backward)) if backward else 0.0
    row["total"] = sum(row[k] for k in STAGES)
    # the machine is shared: the least each stage took is the cost without interference
    row["total_min"] = 1000 * (
        sum(min(per_frame[k]) for k in PARTS) + (min(backward) if backward else 0.0)
    )
    row["flow_pixels_share"] = flow_pixels / (len(per_frame["flow"]) * w * h)
    row["tracks_alive"] = len(proc.tracker.tracks)
    return {"resolution": f"{w}x{h}", "tracks": tracks, "spread": spread, "mode": mode, **row}


def run_cases(cases: list[str]) -> list[dict]:
    cv2.setNumThreads(1)
    rows = []
    for case in cases:
        height, tracks, *spread = case.split(":")
        for mode in ("live", "offline"):
            rows.append(
                measure(int(height), int(tracks), mode, float(spread[0]) if spread else 1.0)
            )
            log.info(
                "%s", {k: round(v, 2) if isinstance(v, float) else v for k, v in rows[-1].items()}
            )
    return rows


def baseline_rows(rev: str, cases: list[str], tmp: str) -> list[dict]:
    """The same cases on commit ``rev`` (its own defaults), in a subprocess."""
    root = Path(__file__).resolve().parents[1]
    if not (Path(tmp) / "vis").is_dir():
        archive = subprocess.run(
            ["git", "-C", str(root), "archive", rev], check=True, capture_output=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
    out = Path(tmp) / "rows.json"
    env = {**os.environ, "PYTHONPATH": tmp, "OMP_NUM_THREADS": "1"}
    code = f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); " + (
        "import frame_cost, json; "
        f"json.dump(frame_cost.run_cases({cases!r}), open({str(out)!r}, 'w'))"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=tmp)
    return json.loads(out.read_text())


def main(argv: list[str] | None = None) -> int:
    from bench.common import setup_logging, write_report
    from vis_eval.tables import markdown_table

    p = argparse.ArgumentParser(
        prog="python -m bench.frame_cost",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--cases",
        nargs="+",
        default=DEFAULT_CASES,
        help="HEIGHT:TRACKS[:SPREAD], e.g. 720:10 or 1080:10:0.3 (objects in the centred 30 %%)",
    )
    p.add_argument("--baseline", default=None, help="a commit to measure first, e.g. 1942bf7")
    p.add_argument("--name", default="frame_cost")
    a = p.parse_args(argv)
    for c in a.cases:
        h, n, *sp = c.split(":") + ([] if ":" in c else [""])
        ok = h.isdigit() and int(h) in RES and n.isdigit() and len(sp) <= 1
        if ok and sp:
            try:
                ok = 0 < float(sp[0]) <= 1
            except ValueError:
                ok = False
        if not ok:
            p.error(
                f"--cases {c!r}: expected HEIGHT:TRACKS[:SPREAD] with HEIGHT in {sorted(RES)} "
                "and SPREAD in (0, 1]"
            )
    setup_logging()
    load = [os.getloadavg()]
    rows = []
    with tempfile.TemporaryDirectory(prefix="frame_cost_") as tmp:
        for case in a.cases:  # before and after alternate, case by case, for the same load
            if a.baseline:
                rows += [{"code": a.baseline, **r} for r in baseline_rows(a.baseline, [case], tmp)]
            rows += [{"code": "this commit", **r} for r in run_cases([case])]
            load.append(os.getloadavg())
    cols = [
        ("code", "code", "s"),
        ("resolution", "resolution", "s"),
        ("tracks", "tracks", "d"),
        ("spread", "spread", ".1f"),
        ("mode", "mode", "s"),
        ("grey", "grey ms", ".2f"),
        ("flow", "flow ms", ".2f"),
        ("resize", "of which resize", ".2f"),
        ("dis", "of which DIS", ".2f"),
        ("warp", "warp ms", ".2f"),
        ("kalman", "Kalman predict ms", ".2f"),
        ("update", "tracker update ms", ".2f"),
        ("backward", "backward + fuse ms", ".2f"),
        ("total", "total ms", ".2f"),
        ("total_min", "total of stage minima ms", ".2f"),
        ("flow_pixels_share", "flow pixels / frame pixels", ".2f"),
    ]
    loads = ", ".join("/".join(f"{x:.1f}" for x in la) for la in load)
    md = (
        f"Per propagated frame, ms by stage, one thread (`python -m bench.frame_cost"
        f"{' --baseline ' + a.baseline if a.baseline else ''}`). Load average (1/5/15 min) "
        f"at the start and after each case: {loads} on 2 shared cores: absolute times are "
        "inflated by other work, compare rows of the same case. Medians over the timed frames; "
        "`total` = the sum of the stage medians (grey + flow + warp + Kalman + update, + backward "
        "offline); `total of stage minima` = the same sum of each stage's fastest frame, the "
        "cost with the least interference from other jobs.\n\n" + markdown_table(rows, cols)
    )
    write_report(a.name, {"rows": rows, "loadavg": load, "cases": a.cases}, md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
