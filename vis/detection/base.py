"""The interface every detector implements; the runner calls these and nothing else.

Contract: ``detect_frames(frames)`` takes a batch of ``Frame``s (keyframes, in stream order
per stream) and returns one ``Detections`` per frame, with embeddings; ``labels`` names each
class index (index 0 = background); ``close()`` releases files or devices (idempotent).
"""

from __future__ import annotations

import abc
from collections.abc import Sequence

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
