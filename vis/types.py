"""The types that cross every stage boundary: ``Frame``, ``Detections`` and ``FrameResult``.

Contract: every stage takes and returns these; arrays are numpy, N (instances) first, and
lengths are validated once in ``Detections.__post_init__``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from vis.ops.masks import BoxMask


@dataclasses.dataclass
class Frame:
    """One decoded frame.

    Attributes:
        stream_id: the source's id.
        index: 0-based frame index within the stream (gaps mean dropped/corrupt frames).
        timestamp_ms: presentation time in milliseconds.
        image: (H, W, 3) uint8 BGR.
        captured_at: ``time.monotonic()`` when the frame was decoded (latency accounting).
    """

    stream_id: str
    index: int
    timestamp_ms: float
    image: np.ndarray
    captured_at: float = 0.0

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])


@dataclasses.dataclass
class Detections:
    """A set of N instances in one frame.

    Attributes:
        xyxy: (N, 4) float32 boxes, pixels, x1 y1 x2 y2.
        masks: (N, H, W) bool full-frame masks.
        scores: (N,) float32.
        class_ids: (N,) int64, the detector's label index (0 = background, never present).
        embeddings: (N, D) float32 L2-normalised appearance embeddings (D may be 0).
        track_ids: (N,) int64, -1 where unassigned.
        mask_probs: optional (N, H, W) float32 soft masks in [0, 1] (keyframes only).
        mask_confidence: optional (N,) float32 in [0, 1]: how far each soft mask is from 0.5
            inside its box (mean of |2p - 1|; 1 = every pixel certain), set on tracked
            instances.
        agreement: optional (N,) float32: offline, the mask IoU of the forward and backward
            estimates fused into each instance's mask (NaN where not fused).
    """

    xyxy: np.ndarray
    masks: np.ndarray
    scores: np.ndarray
    class_ids: np.ndarray
    embeddings: np.ndarray | None = None
    track_ids: np.ndarray | None = None
    mask_probs: np.ndarray | None = None
    mask_confidence: np.ndarray | None = None
    agreement: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.xyxy)
        if self.agreement is not None:
            self.agreement = np.asarray(self.agreement, np.float32).reshape(n)
        if self.mask_confidence is not None:
            self.mask_confidence = np.asarray(self.mask_confidence, np.float32).reshape(n)
        self.xyxy = np.asarray(self.xyxy, np.float32).reshape(n, 4)
        self.masks = np.asarray(self.masks, bool)
        self.scores = np.asarray(self.scores, np.float32).reshape(n)
        self.class_ids = np.asarray(self.class_ids, np.int64).reshape(n)
        if self.embeddings is None:
            self.embeddings = np.zeros((n, 0), np.float32)
        emb = np.asarray(self.embeddings, np.float32)
        dim = emb.shape[-1] if emb.ndim == 2 else (emb.size // n if n else 0)
        self.embeddings = emb.reshape(n, dim)
        if self.track_ids is None:
            self.track_ids = np.full(n, -1, np.int64)
        self.track_ids = np.asarray(self.track_ids, np.int64).reshape(n)
        if self.masks.ndim != 3 or len(self.masks) != n:
            raise ValueError(f"masks must be (N={n}, H, W), got {self.masks.shape}")
        if self.mask_probs is not None and self.mask_probs.shape != self.masks.shape:
            raise ValueError(
                f"mask_probs {self.mask_probs.shape} must match masks {self.masks.shape}"
            )

    @classmethod
    def empty(cls, height: int, width: int, embedding_dim: int = 0) -> Detections:
        return cls(
            xyxy=np.zeros((0, 4), np.float32),
            masks=np.zeros((0, height, width), bool),
            scores=np.zeros(0, np.float32),
            class_ids=np.zeros(0, np.int64),
            embeddings=np.zeros((0, embedding_dim), np.float32),
        )

    @classmethod
    def from_instances(
        cls, instances: list[TrackedInstance], height: int, width: int
    ) -> Detections:
        """Tracked instances -> ``Detections`` with full-frame masks, in the given order."""
        if not instances:
            return cls.empty(height, width)
        return cls(
            xyxy=np.stack([i.box for i in instances]),
            masks=np.stack([i.mask.to_full() for i in instances]),
            scores=np.array([i.score for i in instances], np.float32),
            class_ids=np.array([i.class_id for i in instances], np.int64),
            embeddings=np.stack([i.embedding for i in instances]),
            track_ids=np.array([i.track_id for i in instances], np.int64),
            mask_confidence=np.array([i.mask_confidence for i in instances], np.float32),
            agreement=np.array(
                [np.nan if i.agreement is None else i.agreement for i in instances], np.float32
            ),
        )

    def __len__(self) -> int:
        return len(self.xyxy)

    @property
    def image_size(self) -> tuple[int, int]:
        """(H, W) of the masks."""
        return int(self.masks.shape[1]), int(self.masks.shape[2])

    def __getitem__(self, index: Any) -> Detections:
        """Select instances by boolean mask, integer array or slice."""
        if isinstance(index, (int, np.integer)):
            index = [int(index)]
        return Detections(
            xyxy=self.xyxy[index],
            masks=self.masks[index],
            scores=self.scores[index],
            class_ids=self.class_ids[index],
            embeddings=self.embeddings[index],
            track_ids=self.track_ids[index],
            mask_probs=None if self.mask_probs is None else self.mask_probs[index],
            mask_confidence=None if self.mask_confidence is None else self.mask_confidence[index],
            agreement=None if self.agreement is None else self.agreement[index],
        )

    @staticmethod
    def concatenate(parts: list[Detections], height: int, width: int) -> Detections:
        parts = [p for p in parts if len(p)]
        if not parts:
            return Detections.empty(height, width)
        probs = (
            [p.mask_probs for p in parts] if all(p.mask_probs is not None for p in parts) else None
        )
        conf, agree = (
            [getattr(p, k) for p in parts]
            if all(getattr(p, k) is not None for p in parts)
            else None
            for k in ("mask_confidence", "agreement")
        )
        return Detections(
            xyxy=np.concatenate([p.xyxy for p in parts]),
            masks=np.concatenate([p.masks for p in parts]),
            scores=np.concatenate([p.scores for p in parts]),
            class_ids=np.concatenate([p.class_ids for p in parts]),
            embeddings=np.concatenate([p.embeddings for p in parts]),
            track_ids=np.concatenate([p.track_ids for p in parts]),
            mask_probs=None if probs is None else np.concatenate(probs),
            mask_confidence=None if conf is None else np.concatenate(conf),
            agreement=None if agree is None else np.concatenate(agree),
        )


@dataclasses.dataclass(frozen=True)
class TrackedInstance:
    """One tracked object in one frame, its mask kept inside its box (pasted to full frame
    only by ``Detections.from_instances``, where a sink needs it).

    Attributes:
        track_id: the track's id.
        class_id: its class (the track's class vote).
        score: its last detection score.
        box: (4,) float32 x1 y1 x2 y2.
        mask: its soft mask, box-local.
        embedding: (D,) float32 appearance embedding.
        agreement: offline mode, frames between keyframes: mask IoU of the estimate carried
            forward and the one carried back, which were fused (None: not fused).
    """

    track_id: int
    class_id: int
    score: float
    box: np.ndarray
    mask: BoxMask
    embedding: np.ndarray
    agreement: float | None = None  # offline: IoU of the forward and backward masks fused

    @property
    def mask_confidence(self) -> float:
        """Mean of |2p - 1| over the soft mask's box (1: every pixel certain)."""
        p = self.mask.prob
        return float(np.abs(2.0 * p - 1.0).mean()) if p.size else 0.0


@dataclasses.dataclass
class FrameResult:
    """The per-frame output of the pipeline (serialised as ``vis.frame/1``).

    Attributes:
        stream_id, frame_index, timestamp_ms: from the ``Frame``.
        keyframe: True when the detector ran on this frame.
        width, height: frame size in pixels.
        detections: the tracked instances (``track_ids`` all set).
        labels: label of each detector class index.
        propagated_from: on a frame between keyframes, the keyframe indices its masks were
            carried from (one: forward only; two: fused from both sides); empty on keyframes.
    """

    stream_id: str
    frame_index: int
    timestamp_ms: float
    keyframe: bool
    width: int
    height: int
    detections: Detections
    labels: list[str]
    propagated_from: tuple[int, ...] = ()
