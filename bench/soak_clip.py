"""The soak bench's camera: a looped synthetic 1080p clip with its ground truth as detections.

Contract: ``ensure_clip(ClipSpec(...), folder)`` renders (once, cached by the spec) a scene of
``vis_eval.synthetic`` into ``clip.mjpeg`` (concatenated JPEG frames, served as-is by ffmpeg)
and ``detections.jsonl`` (one ``vis.frame/1`` record per served frame: the ground-truth
masks, ``track_id`` -1, for ``detector.type: precomputed``). The clip plays forward then
backward (frames 0..L-1, L-2..1), so it loops forever without a jump: objects reverse,
nothing teleports. Every frame carries its position in the loop as a row of black/white
blocks in the top-left corner (``read_stamp``), which ``LoopedDetector`` checks against the
frame index it is given: a served frame and its detections can never drift apart unseen.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np

from vis.detection.base import Detector
from vis.types import Detections, Frame

log = logging.getLogger("bench.soak")

STAMP_BITS = 12
_BLOCK, _STEP, _TOP = 12, 14, 4  # block side, pitch and top edge of the stamp, pixels
LABELS = ["disk", "box", "star"]  # the synthetic classes 1..3
RENDER_VERSION = 1  # part of the cache key: bump it when ``_render`` changes what it writes


@dataclasses.dataclass(frozen=True)
class ClipSpec:
    """The scene looped by the soak bench.

    Attributes:
        width, height: frame size.
        frames: rendered frames L; the loop is 2L-2 frames long (forward, then back).
        objects: objects in the scene (all bounce off the borders, so all stay in view).
        seed: the scene's seed.
        fps: frame rate the clip is served at.
        jpeg_quality: JPEG quality of the served frames.
    """

    width: int = 1920
    height: int = 1080
    frames: int = 125
    objects: int = 50
    seed: int = 15
    fps: float = 25.0
    jpeg_quality: int = 90

    @property
    def period(self) -> int:
        """Frames in one loop (forward then back, the end frames once each)."""
        return max(2 * self.frames - 2, 1)

    def digest(self) -> str:
        key = {**dataclasses.asdict(self), "render_version": RENDER_VERSION}
        return hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:10]


def loop_order(frames: int) -> list[int]:
    """Rendered frame shown at each position of the loop: 0..L-1 then L-2..1."""
    return list(range(frames)) + list(range(frames - 2, 0, -1))


def stamp(image: np.ndarray, value: int) -> None:
    """Write ``value`` (< 2**STAMP_BITS) into ``image``'s top-left corner, in place."""
    for bit in range(STAMP_BITS):
        x = _TOP + bit * _STEP
        level = 255 if (value >> bit) & 1 else 0
        image[_TOP : _TOP + _BLOCK, x : x + _BLOCK] = level


def read_stamp(image: np.ndarray) -> int:
    """The value ``stamp`` wrote (robust to JPEG: each block's centre is averaged)."""
    value = 0
    for bit in range(STAMP_BITS):
        x = _TOP + bit * _STEP
        centre = image[_TOP + 3 : _TOP + _BLOCK - 3, x + 3 : x + _BLOCK - 3]
        if centre.mean() > 127:
            value |= 1 << bit
    return value


def ensure_clip(spec: ClipSpec, folder: Path) -> Path:
    """``folder/<digest>/`` holding ``clip.mjpeg`` and ``detections.jsonl`` for ``spec``.

    Renders in a child process when missing (about 2 s per 1080p frame here), so the memory
    the renderer used never shows in the soak's own RSS.
    """
    import multiprocessing

    out = folder / spec.digest()
    if (out / "done.json").is_file():
        return out
    if spec.period >= 2**STAMP_BITS:
        raise ValueError(f"clip frames={spec.frames}: the loop must be < {2**STAMP_BITS // 2}")
    log.warning(
        "rendering the %dx%d clip (%d frames) into %s", spec.width, spec.height, spec.frames, out
    )
    proc = multiprocessing.get_context("spawn").Process(target=_render, args=(spec, out))
    proc.start()
    proc.join()
    if proc.exitcode != 0 or not (out / "done.json").is_file():
        raise RuntimeError(f"rendering the soak clip into {out} failed (exit {proc.exitcode})")
    return out


def _render(spec: ClipSpec, out: Path) -> None:
    from pycocotools import mask as mask_utils
    from tqdm import tqdm

    from vis_eval.sequences import Instance, TrackSequence, jsonl_records, write_jsonl
    from vis_eval.synthetic import SceneConfig, render_sequence

    k = spec.height / 1080  # object sizes and speeds are set for 1080p
    scene = SceneConfig(
        width=spec.width,
        height=spec.height,
        n_frames=spec.frames,
        seed=spec.seed,
        n_objects=spec.objects,
        spawn_rate=0.0,
        max_objects=spec.objects,
        size_range=(30.0 * k, 70.0 * k),
        speed_range=(2.0 * k, 6.0 * k),
        bounce_fraction=1.0,
        noise_sigma=3.0,
        blur_prob=0.0,
    )
    out.mkdir(parents=True, exist_ok=True)
    images: list[np.ndarray] = []
    instances: list[list[Instance]] = []
    for f in tqdm(render_sequence(scene), total=spec.frames, desc="render", unit="frame"):
        rles = mask_utils.encode(np.asfortranarray(f.masks.transpose(1, 2, 0).astype(np.uint8)))
        instances.append(
            [Instance(-1, int(c), 0.9, r) for c, r in zip(f.class_ids, rles, strict=True)]
        )
        images.append(f.image)  # stamped per loop position below
    order = loop_order(spec.frames)
    with open(out / "clip.mjpeg", "wb") as fh:
        for position, k in enumerate(order):
            image = images[k].copy()
            stamp(image, position)
            ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, spec.jpeg_quality])
            if not ok:
                raise RuntimeError("JPEG encoding failed")
            fh.write(buf.tobytes())
    seq = TrackSequence(
        frames={p: instances[k] for p, k in enumerate(order)}, size=(spec.height, spec.width)
    )
    labels = dict(enumerate(LABELS, start=1))
    records = jsonl_records(
        seq, stream_id="soak", n_frames=spec.period, fps=spec.fps, labels=labels
    )
    write_jsonl(out / "detections.jsonl", records)
    counts = [len(i) for i in instances]
    (out / "done.json").write_text(
        json.dumps(
            {
                "spec": dataclasses.asdict(spec),
                "instances_per_frame": {
                    "min": min(counts),
                    "max": max(counts),
                    "mean": round(float(np.mean(counts)), 1),
                },
            }
        )
    )


class LoopedDetector(Detector):
    """A detector over one loop of frames, served for a stream that repeats the loop forever:
    frame ``i`` gets the loop's frame ``i % period`` (the inner detector is rebuilt at each
    wrap, as it reads forward only). Counts frames whose stamp disagrees (``misaligned``).

    Args:
        build: makes the inner detector (``detector.type: precomputed`` over one loop).
        period: frames in the loop.
    """

    def __init__(self, build: Callable[[], Detector], period: int, first: Detector) -> None:
        self.build = build
        self.period = period
        self.inner = first
        self.labels = first.labels
        self.last = -1
        self.frames = 0
        self.misaligned = 0

    def detect_frames(self, frames: Sequence[Frame]) -> list[Detections]:
        out = []
        for frame in frames:
            position = frame.index % self.period
            if position <= self.last:
                self.inner.close()
                self.inner = self.build()
            self.last = position
            self.frames += 1
            if read_stamp(frame.image) != position:
                self.misaligned += 1
            looped = dataclasses.replace(frame, index=position)
            out.extend(self.inner.detect_frames([looped]))
        return out

    def close(self) -> None:
        self.inner.close()
