"""Run peer box trackers on precomputed detections. Runs in the peers venv, not ours:

    bench/.venv-peers/bin/python bench/peers_runner.py --dets DIR --videos bench/data \\
        --out DIR [--trackers boxmot_bytetrack boxmot_ocsort boxmot_botsort rf_bytetrack norfair]

Reads ``<dets>/<seq>.jsonl`` (``vis.frame/1`` detections: boxes, scores, classes; masks are
not read here) and, for trackers that look at the image (BoT-SORT's camera-motion
compensation), the frames of ``<videos>/<seq>.mp4``. Writes
``<out>/<tracker>/<seq>.tracks.jsonl``, one line per frame:
``{"frame": f, "tracks": [[id, x1, y1, x2, y2, score, class, det_index], ...]}`` where
``det_index`` is the index of the input detection the box came from (-1 if the library does
not say; the caller then matches by box IoU), and ``<out>/<tracker>/timing.json`` (seconds
spent inside the trackers' update calls only: no decoding, no file I/O).

Parameters are each library's defaults except: the time a lost track is kept is 60 frames
for every tracker (the old tracker's ``max_age``; ours now keeps them ``tracker.max_lost_s``
seconds), and norfair starts a track on its first
detection (``initialization_delay=0``) with IoU distance (``1 - IoU <= 0.7``). norfair has
no score threshold of its own: it gets the detections scoring >= 0.5 (our tracker's
``tracker.high_score``); the ByteTrack family and OC-SORT get every detection and
apply their own high/low thresholds.
Standalone on purpose: it imports only numpy, cv2 and the peer libraries.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

MAX_LOST = 60
ALL = ("boxmot_bytetrack", "boxmot_ocsort", "boxmot_botsort", "rf_bytetrack", "norfair")
NEEDS_FRAMES = {"boxmot_botsort"}
NORFAIR_MIN_SCORE = 0.5


def read_dets(path: Path) -> list[tuple[int, np.ndarray]]:
    """[(frame, (N, 6) x1 y1 x2 y2 score class)] per record."""
    out = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            rec = json.loads(line)
            inst = rec["instances"]
            arr = np.array(
                [[*i["bbox"], i["score"], i["class_id"]] for i in inst], np.float32
            ).reshape(-1, 6)
            out.append((rec["frame_index"], arr))
    return out


def frames_of(video: Path):
    import cv2

    cap = cv2.VideoCapture(str(video))
    try:
        while True:
            ok, img = cap.read()
            if not ok:
                return
            yield img
    finally:
        cap.release()


class BoxmotRunner:
    def __init__(self, name: str, size: tuple[int, int]) -> None:
        import boxmot

        if name == "boxmot_bytetrack":
            self.t = boxmot.ByteTrack(track_buffer=MAX_LOST, frame_rate=30)
        elif name == "boxmot_ocsort":
            self.t = boxmot.OcSort(max_age=MAX_LOST)
        else:  # BoT-SORT without a re-identification model (no weights to download)
            self.t = boxmot.BotSort(
                reid_weights=None,
                use_embeddings=False,
                track_buffer=MAX_LOST,
                frame_rate=30,
                device="cpu",
            )
        self.blank = np.zeros((*size, 3), np.uint8)

    def update(self, dets: np.ndarray, img: np.ndarray | None) -> list[list[float]]:
        out = self.t.update(dets, img if img is not None else self.blank)
        out = np.asarray(out).reshape(-1, out.shape[1] if np.ndim(out) == 2 else 8)
        # boxmot rows: x1 y1 x2 y2 id conf cls det_ind
        return [
            [int(r[4]), *map(float, r[:4]), float(r[5]), int(r[6]), int(r[7]) if len(r) > 7 else -1]
            for r in out
        ]


class RoboflowRunner:
    """Roboflow's ByteTrack: ``supervision`` 0.31 no longer ships ``sv.ByteTrack``; it moved
    to Roboflow's ``trackers`` package (``ByteTrackTracker``), which supervision now imports."""

    def __init__(self, name: str, size: tuple[int, int]) -> None:
        import supervision as sv
        from trackers import ByteTrackTracker

        self.sv = sv
        self.t = ByteTrackTracker(lost_track_buffer=MAX_LOST, frame_rate=30.0)

    def update(self, dets: np.ndarray, img: np.ndarray | None) -> list[list[float]]:
        sv = self.sv
        d = sv.Detections(
            xyxy=dets[:, :4].astype(np.float32),
            confidence=dets[:, 4],
            class_id=dets[:, 5].astype(int),
            data={"det_index": np.arange(len(dets))},
        )
        r = self.t.update(d)
        if len(r) == 0:
            return []
        idx = r.data.get("det_index", np.full(len(r), -1))
        return [
            [int(t), *map(float, b), float(c), int(k), int(i)]
            for t, b, c, k, i in zip(r.tracker_id, r.xyxy, r.confidence, r.class_id, idx)
            if t >= 0
        ]


class NorfairRunner:
    def __init__(self, name: str, size: tuple[int, int]) -> None:
        import norfair

        self.nf = norfair
        self.t = norfair.Tracker(
            distance_function="iou",
            distance_threshold=0.7,
            hit_counter_max=MAX_LOST,
            initialization_delay=0,
        )

    def update(self, dets: np.ndarray, img: np.ndarray | None) -> list[list[float]]:
        nf = self.nf
        ds = [
            nf.Detection(
                points=d[:4].reshape(2, 2).astype(np.float64),
                scores=np.array([d[4], d[4]]),
                data=k,
                label=None,
            )
            for k, d in enumerate(dets)
            if d[4] >= NORFAIR_MIN_SCORE
        ]
        objs = self.t.update(ds)
        current = {id(d): d.data for d in ds}
        out = []
        for o in objs:
            b = o.estimate.reshape(-1)
            k = current.get(id(o.last_detection), -1)  # -1: not seen this frame (predicted)
            score = float(dets[k, 4]) if k >= 0 else 0.0
            cls = int(dets[k, 5]) if k >= 0 else -1
            out.append([int(o.id), *map(float, b[:4]), score, cls, k])
        return out


def make(name: str, size: tuple[int, int]):
    if name.startswith("boxmot_"):
        return BoxmotRunner(name, size)
    if name == "rf_bytetrack":
        return RoboflowRunner(name, size)
    if name == "norfair":
        return NorfairRunner(name, size)
    raise SystemExit(f"unknown tracker {name!r}: choose from {', '.join(ALL)}")


def run_one(name: str, dets_path: Path, video: Path, out_path: Path) -> tuple[float, int]:
    records = read_dets(dets_path)
    first = json.loads(dets_path.open().readline())
    tracker = make(name, (first["height"], first["width"]))
    images = frames_of(video) if name in NEEDS_FRAMES else None
    seconds = 0.0
    with open(out_path, "w", encoding="utf-8") as fh:
        for f, dets in records:
            img = next(images, None) if images is not None else None
            t0 = time.perf_counter()
            rows = tracker.update(dets, img)
            seconds += time.perf_counter() - t0
            fh.write(json.dumps({"frame": f, "tracks": rows}) + "\n")
    return seconds, len(records)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--dets", type=Path, required=True)
    p.add_argument("--videos", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--trackers", nargs="+", default=list(ALL))
    p.add_argument("--sequences", nargs="+")
    a = p.parse_args(argv)
    seqs = a.sequences or sorted(x.stem for x in a.dets.glob("*.jsonl"))
    versions = {}
    for mod in ("boxmot", "trackers", "supervision", "norfair", "numpy"):
        try:
            from importlib.metadata import version

            versions[mod] = version(mod)
        except Exception:  # noqa: BLE001
            versions[mod] = None
    for name in a.trackers:
        d = a.out / name
        d.mkdir(parents=True, exist_ok=True)
        total, frames, per_seq = 0.0, 0, {}
        for seq in seqs:
            s, n = run_one(
                name, a.dets / f"{seq}.jsonl", a.videos / f"{seq}.mp4", d / f"{seq}.tracks.jsonl"
            )
            total += s
            frames += n
            per_seq[seq] = {"seconds": round(s, 4), "frames": n}
        (d / "timing.json").write_text(
            json.dumps(
                {
                    "tracker": name,
                    "seconds": round(total, 4),
                    "frames": frames,
                    "ms_per_frame": round(1000 * total / max(frames, 1), 3),
                    "sequences": per_seq,
                    "versions": versions,
                },
                indent=1,
            )
            + "\n"
        )
        print(
            f"{name}: {frames} frames, {1000 * total / max(frames, 1):.2f} ms/frame",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
