"""A scripted run for the export tests: 64x48 frames 0-9 with frame 5 lost (corrupt), three
tracks of two classes, overlapping masks, a track that leaves and comes back, one that leaves
for good, and one frame in which a track is given the other class."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.conftest import disk_mask
from vis.schema import dumps_record
from vis.types import Detections, FrameResult

H, W = 48, 64
FRAMES = [0, 1, 2, 3, 4, 6, 7, 8, 9]
LABELS = ["__background__", "person", "car"]


@dataclasses.dataclass
class Story:
    jsonl: Path
    video: Path
    records: dict[int, FrameResult]  # frame index -> what was written


def _frame(f: int) -> FrameResult:
    objs = [(1, 1, 0.6, disk_mask(H, W, 14 + f, 20, 9))]  # person, the whole run
    if f <= 3 or f >= 7:  # car: gone at 4 and 6 (5 is lost), back at 7
        objs.append((2, 1 if f == 8 else 2, 0.9, disk_mask(H, W, 26 + f, 22, 8)))
    if 2 <= f <= 4:  # a second person, gone for good after frame 4
        objs.append((5, 1, 0.4, disk_mask(H, W, 52, 10 + f, 5)))
    masks = np.stack([m for *_, m in objs])
    ys = [np.nonzero(m) for m in masks]
    xyxy = np.array([[x.min(), y.min(), x.max() + 1, y.max() + 1] for y, x in ys], np.float32)
    dets = Detections(
        xyxy=xyxy,
        masks=masks,
        scores=np.array([s for _, _, s, _ in objs], np.float32),
        class_ids=np.array([c for _, c, _, _ in objs], np.int64),
        track_ids=np.array([t for t, *_ in objs], np.int64),
    )
    return FrameResult("cam 1", f, f * 40.0, f % 3 == 0, W, H, dets, LABELS)


def picture(result: FrameResult) -> np.ndarray:
    """The frame the records describe: the objects painted on a grey background (BGR)."""
    img = np.full((H, W, 3), 90, np.uint8)
    colours = {1: (40, 40, 220), 2: (220, 120, 30)}
    for m, c in zip(result.detections.full_masks(), result.detections.class_ids):
        img[m] = colours[int(c)]
    return img


@pytest.fixture
def story(tmp_path: Path) -> Story:
    records = {f: _frame(f) for f in FRAMES}
    jsonl = tmp_path / "run" / "cam_1.jsonl"
    jsonl.parent.mkdir()
    jsonl.write_text("".join(dumps_record(records[f]) + "\n" for f in FRAMES))
    video = tmp_path / "cam_1.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 25, (W, H))
    for f in range(10):
        writer.write(picture(records.get(f, records[4])))
    writer.release()
    return Story(jsonl, video, records)
