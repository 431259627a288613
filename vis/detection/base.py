"""The interface every detector implements; the runner calls these and nothing else.

Contract: ``detect_frames(frames)`` takes a batch of ``Frame``s (keyframes, in stream order
per stream) and returns one ``Detections`` per frame, with embeddings; ``labels`` names each
class index (index 0 = background); ``close()`` releases files or devices (idempotent).
``WrappedDetector`` is the base of a detector that runs another one (Soft-NMS, test-time
augmentation, tiles).
"""

from __future__ import annotations

import abc
from collections.abc import Sequence

import numpy as np

from vis.types import Detections, Frame


class Detector(abc.ABC):
    """Detections (boxes, masks, scores, class ids, embeddings) for batches of frames.

    Attributes:
        labels: label per class index (index 0 = background).
        engine: what runs the network (``torch``, ``onnxruntime``, ``openvino``, or
            ``precomputed`` when detections are read from a file).
        precision: the precision the network really runs at: ``f32``, ``bf16``, ``f16``
            (CUDA half), or ``int8+f32`` / ``int8+bf16`` (quantised convolutions, the rest in
            float).
    """

    labels: list[str]
    engine: str = "none"
    precision: str = "n/a"
    #: input records the detector skipped as over a limit or malformed (a reader of
    #: precomputed detections); the run's summary reports it
    malformed: int = 0

    @abc.abstractmethod
    def detect_frames(self, frames: Sequence[Frame]) -> list[Detections]:
        """One ``Detections`` per frame, in the order of ``frames``."""

    def close(self) -> None:  # noqa: B027 - optional hook, no-op by default
        """Release what the detector holds (files, devices)."""


class WrappedDetector(Detector):
    """A detector that runs ``inner`` (any engine's detector, or another wrapper) and changes
    what it finds; the wrapped detector's other attributes (``dim``, ``batch_size``...) stay
    visible through it.

    Args:
        inner: the detector run.
    """

    def __init__(self, inner: Detector) -> None:
        self.inner = inner
        self.labels = inner.labels
        self.engine = inner.engine
        self.precision = inner.precision

    @property
    def malformed(self) -> int:  # type: ignore[override]
        return self.inner.malformed

    def __getattr__(self, name: str):
        if name == "inner":  # not set yet: no recursion
            raise AttributeError(name)
        return getattr(self.inner, name)

    def detect(self, images: Sequence[np.ndarray]) -> list[Detections]:
        """One ``Detections`` per (H, W, 3) uint8 BGR image, in order."""
        return self.detect_frames([Frame("images", i, 0.0, im) for i, im in enumerate(images)])

    def close(self) -> None:
        self.inner.close()
