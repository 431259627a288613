"""vis: the vision library (types, detection, association, tracking, propagation).

Pure computation: it never imports ``streams`` (I/O). ``vis_pipeline`` wires the two; the
command line is ``vis-pipeline``. One stream, frame by frame::

    from vis import (
        DetectorConfig, Frame, KeyframeConfig, PropagationConfig, StreamProcessor,
        TrackerConfig, build_detector,
    )

    detector = build_detector(DetectorConfig(weights="demo", engine="torch"))
    processor = StreamProcessor(
        stream_id="cam1",
        labels=detector.labels,
        tracker=TrackerConfig(),
        propagation=PropagationConfig(),
        keyframes=KeyframeConfig(interval=5),
    )
    for index, image in enumerate(images):  # (H, W, 3) uint8 BGR
        frame = Frame(stream_id="cam1", index=index, timestamp_ms=index * 40.0, image=image)
        detections = detector.detect_frames([frame])[0] if processor.is_keyframe(frame) else None
        result = processor.process(frame, detections)  # a FrameResult
        for track_id, box in zip(result.detections.track_ids, result.detections.xyxy):
            ...

``FrameResult.detections`` is a ``Detections`` (boxes, box-local ``BoxMask`` masks, scores,
class ids, track ids); ``Detections.full_masks()`` pastes the masks into the frame. The
processor adds keyframe scheduling and optical-flow propagation to a ``Tracker``, whose whole
contract is ``Tracker(TrackerConfig()).update(detections, frame_index=i, ...) -> Detections``
(``vis.tracking.tracker``). Every config key is documented in docs/configuration.md.

The names below are imported on first use, so ``import vis`` stays light (no torch until
``build_detector`` or ``DetectorConfig`` is asked for).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

#: public name -> the module that defines it
_EXPORTS = {
    "Frame": "vis.types",
    "Detections": "vis.types",
    "FrameResult": "vis.types",
    "BoxMask": "vis.ops.masks",
    "DetectorConfig": "vis.detection.factory",
    "build_detector": "vis.detection.factory",
    "Detector": "vis.detection.base",
    "TrackerConfig": "vis.tracking.config",
    "Tracker": "vis.tracking.tracker",
    "PropagationConfig": "vis.propagation",
    "KeyframeConfig": "vis.keyframes",
    "StreamProcessor": "vis.pipeline",
    "ConfigError": "vis.config",
}

__all__ = [  # the keys of _EXPORTS
    "BoxMask",
    "ConfigError",
    "Detections",
    "Detector",
    "DetectorConfig",
    "Frame",
    "FrameResult",
    "KeyframeConfig",
    "PropagationConfig",
    "StreamProcessor",
    "Tracker",
    "TrackerConfig",
    "build_detector",
]

if TYPE_CHECKING:  # for type checkers and editors: the same names, imported eagerly
    from vis.config import ConfigError
    from vis.detection.base import Detector
    from vis.detection.factory import DetectorConfig, build_detector
    from vis.keyframes import KeyframeConfig
    from vis.ops.masks import BoxMask
    from vis.pipeline import StreamProcessor
    from vis.propagation import PropagationConfig
    from vis.tracking.config import TrackerConfig
    from vis.tracking.tracker import Tracker
    from vis.types import Detections, Frame, FrameResult


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'vis' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # found once; later look-ups do not come back here
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
