"""The types that cross every stage boundary: ``Frame``, ``Detections`` and ``FrameResult``.

Contract: every stage takes and returns these; arrays are numpy, N (instances) first, and
lengths are validated once in ``Detections.__post_init__``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from vis.ops.boxes import mask_to_box
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
    """A set of N instances in one frame, each mask kept inside its box.

    Attributes:
        xyxy: (N, 4) float32 boxes, pixels, x1 y1 x2 y2.
        masks: N ``BoxMask`` soft masks (a crop and its offset; the binary mask is
            ``prob >= 0.5``). A (N, H, W) bool or float array is accepted too and cropped
            on construction (around its non-zero pixels). Full-frame masks exist only where
            asked: ``full_masks()``.
        scores: (N,) float32.
        class_ids: (N,) int64, the detector's label index (0 = background, never present).
        embeddings: (N, D) float32 L2-normalised appearance embeddings (D may be 0).
        track_ids: (N,) int64, -1 where unassigned.
        mask_confidence: optional (N,) float32 in [0, 1]: how far each soft mask is from 0.5
            inside its box (``mask_confidence``: mean of |2p - 1|; 1 = every pixel certain),
            set on tracked instances.
        agreement: optional (N,) float32: offline, the mask IoU of the forward and backward
            estimates fused into each instance's mask (NaN where not fused).
        image_size: (H, W) of the frame; taken from the masks when not given (required for
            an empty list).
        uncertainty: optional (N,) float32 in [0, 1]: on a keyframe run with test-time
            augmentation, how much the passes disagreed on each instance (``detector.tta``;
            0 = every pass found the same mask at the same score; NaN where not measured).
    """

    xyxy: np.ndarray
    masks: list[BoxMask]
    scores: np.ndarray
    class_ids: np.ndarray
    embeddings: np.ndarray | None = None
    track_ids: np.ndarray | None = None
    mask_confidence: np.ndarray | None = None
    agreement: np.ndarray | None = None
    image_size: tuple[int, int] | None = None
    uncertainty: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.xyxy)
        if self.uncertainty is not None:
            self.uncertainty = np.asarray(self.uncertainty, np.float32).reshape(n)
        if self.agreement is not None:
            self.agreement = np.asarray(self.agreement, np.float32).reshape(n)
        if self.mask_confidence is not None:
            self.mask_confidence = np.asarray(self.mask_confidence, np.float32).reshape(n)
        self.xyxy = np.asarray(self.xyxy, np.float32).reshape(n, 4)
        self.masks = self._box_masks(self.masks, n)
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

    def _box_masks(self, masks: Any, n: int) -> list[BoxMask]:
        """Validate ``masks`` (BoxMasks or an (N, H, W) array) and set ``image_size``."""
        if isinstance(masks, np.ndarray):
            if masks.ndim != 3 or len(masks) != n:
                raise ValueError(f"masks must be (N={n}, H, W), got {masks.shape}")
            self.image_size = (int(masks.shape[1]), int(masks.shape[2]))
            return [_crop_nonzero(m) for m in masks]
        masks = list(masks)
        if len(masks) != n:
            raise ValueError(f"{len(masks)} masks for {n} boxes")
        if self.image_size is None:
            if not masks:
                raise ValueError("an empty Detections needs image_size")
            self.image_size = masks[0].image_size
        self.image_size = (int(self.image_size[0]), int(self.image_size[1]))
        for m in masks:
            if tuple(m.image_size) != self.image_size:
                raise ValueError(f"mask of a {m.image_size} image in a {self.image_size} frame")
        return masks

    @classmethod
    def empty(cls, height: int, width: int, embedding_dim: int = 0) -> Detections:
        return cls(
            xyxy=np.zeros((0, 4), np.float32),
            masks=[],
            scores=np.zeros(0, np.float32),
            class_ids=np.zeros(0, np.int64),
            embeddings=np.zeros((0, embedding_dim), np.float32),
            image_size=(height, width),
        )

    def __len__(self) -> int:
        return len(self.xyxy)

    def full_masks(self) -> np.ndarray:
        """(N, H, W) bool full-frame masks (costs N frames of memory: for sinks that draw or
        score pixels, never on the processing path)."""
        out = np.zeros((len(self), *self.image_size), bool)
        for i, m in enumerate(self.masks):
            out[i, m.y0 : m.y1, m.x0 : m.x1] = m.bits
        return out

    def __getitem__(self, index: Any) -> Detections:
        """Select instances by boolean mask, integer array or slice."""
        if isinstance(index, (int, np.integer)):
            index = [int(index)]
        rows = np.arange(len(self))[index]
        return Detections(
            xyxy=self.xyxy[index],
            masks=[self.masks[int(i)] for i in rows],
            scores=self.scores[index],
            class_ids=self.class_ids[index],
            embeddings=self.embeddings[index],
            track_ids=self.track_ids[index],
            mask_confidence=None if self.mask_confidence is None else self.mask_confidence[index],
            agreement=None if self.agreement is None else self.agreement[index],
            image_size=self.image_size,
            uncertainty=None if self.uncertainty is None else self.uncertainty[index],
        )

    @staticmethod
    def concatenate(parts: list[Detections], height: int, width: int) -> Detections:
        parts = [p for p in parts if len(p)]
        if not parts:
            return Detections.empty(height, width)
        conf, agree, doubt = (
            [getattr(p, k) for p in parts]
            if all(getattr(p, k) is not None for p in parts)
            else None
            for k in ("mask_confidence", "agreement", "uncertainty")
        )
        return Detections(
            xyxy=np.concatenate([p.xyxy for p in parts]),
            masks=[m for p in parts for m in p.masks],
            scores=np.concatenate([p.scores for p in parts]),
            class_ids=np.concatenate([p.class_ids for p in parts]),
            embeddings=np.concatenate([p.embeddings for p in parts]),
            track_ids=np.concatenate([p.track_ids for p in parts]),
            mask_confidence=None if conf is None else np.concatenate(conf),
            agreement=None if agree is None else np.concatenate(agree),
            image_size=(height, width),
            uncertainty=None if doubt is None else np.concatenate(doubt),
        )


def _crop_nonzero(full: np.ndarray) -> BoxMask:
    """(H, W) bool or soft mask -> ``BoxMask`` around its non-zero pixels (soft values below
    0.5 are kept: they count when a keyframe blends masks)."""
    box = mask_to_box(full != 0)
    if box is None:
        return BoxMask.empty(full.shape)
    x0, y0, x1, y1 = (int(v) for v in box)
    return BoxMask(x0, y0, full[y0:y1, x0:x1].astype(np.float32), full.shape)


def mask_confidence(mask: BoxMask) -> float:
    """How far a soft mask is from 0.5 inside its box: mean of |2p - 1| (1: every pixel
    certain; 0 for an empty mask), as ``Detections.mask_confidence`` holds it."""
    p = mask.prob
    return float(np.abs(2.0 * p - 1.0).mean()) if p.size else 0.0


@dataclasses.dataclass
class FrameResult:
    """The per-frame output of the pipeline (serialised as ``vis.frame/2`` or ``/1``).

    Attributes:
        stream_id, frame_index, timestamp_ms: from the ``Frame``.
        keyframe: True when the detector ran on this frame.
        width, height: frame size in pixels.
        detections: the tracked instances (``track_ids`` all set).
        labels: label of each detector class index.
        propagated_from: on a frame between keyframes, the keyframe indices its masks were
            carried from (one: forward only; two: fused from both sides); empty on keyframes.
        encodings: cache of the serialised record (see ``vis.schema``).
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
    #: serialised forms (``vis.schema.record_of``/``json_of``), made once and shared by every
    #: sink; a result is not changed after it is emitted
    encodings: dict = dataclasses.field(default_factory=dict, repr=False, compare=False)
