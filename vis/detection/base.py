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
    """

    labels: list[str]

    @abc.abstractmethod
    def detect_frames(self, frames: Sequence[Frame]) -> list[Detections]:
        """One ``Detections`` per frame, in the order of ``frames``."""

    def close(self) -> None:  # noqa: B027 - optional hook, no-op by default
        """Release what the detector holds (files, devices)."""
