"""Shared fixtures: repo paths, small synthetic videos, the shipped demo detector."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SAMPLE_VIDEO = ROOT / "data" / "sample" / "sample.mp4"
SAMPLE_GT = ROOT / "data" / "sample" / "sample.gt.txt"


def disk_mask(h: int, w: int, cx: float, cy: float, r: float) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    return (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r


def mjpeg_copy_with_corrupt_frames(video: Path, out: Path, corrupt: set[int]) -> int:
    """Re-encode ``video`` as MJPEG AVI at ``out``, then overwrite the JPEG data of the frames
    in ``corrupt`` with seeded garbage (as a damaged disk or a bad transfer would). Returns
    the frame count."""
    import cv2

    cap = cv2.VideoCapture(str(video))
    w = None
    n = 0
    while True:
        ok, img = cap.read()
        if not ok:
            break
        if w is None:
            w = cv2.VideoWriter(
                str(out), cv2.VideoWriter_fourcc(*"MJPG"), 25, (img.shape[1], img.shape[0])
            )
        w.write(img)
        n += 1
    cap.release()
    w.release()
    data = bytearray(out.read_bytes())
    starts = [i for i in range(len(data) - 1) if data[i] == 0xFF and data[i + 1] == 0xD8]
    rng = np.random.default_rng(0)
    for k in corrupt:
        s = starts[k]
        data[s + 2 : s + 302] = rng.integers(0, 256, 300, dtype=np.uint8).tobytes()
    out.write_bytes(bytes(data))
    return n


@pytest.fixture(scope="session")
def demo_detector():
    from vis.detection.detector import MaskRCNNDetector

    return MaskRCNNDetector.from_weights(weights="demo", score_threshold=0.5, max_detections=50)


@pytest.fixture
def small_video(tmp_path):
    """A 40-frame 320x192 synthetic video with its MOTS ground truth."""
    from tools.make_sample import write_scene
    from vis_eval.synthetic import SceneConfig

    cfg = SceneConfig(
        width=320,
        height=192,
        n_frames=40,
        seed=11,
        n_objects=3,
        size_range=(14.0, 26.0),
        spawn_rate=0.0,
    )
    out = tmp_path / "small.mp4"
    gt = write_scene(cfg, out)
    return out, gt
