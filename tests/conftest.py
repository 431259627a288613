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


@pytest.fixture(scope="session")
def demo_detector():
    from vis.detection.detector import MaskRCNNDetector

    return MaskRCNNDetector.from_weights(weights="demo", score_threshold=0.5, max_detections=50)


@pytest.fixture
def small_video(tmp_path):
    """A 40-frame 320x192 synthetic video with its MOTS ground truth."""
    from tools.make_sample import write_scene
    from vis.data.synthetic import SceneConfig

    cfg = SceneConfig(width=320, height=192, n_frames=40, seed=11, n_objects=3,
                      size_range=(14.0, 26.0), spawn_rate=0.0)
    out = tmp_path / "small.mp4"
    gt = write_scene(cfg, out)
    return out, gt
