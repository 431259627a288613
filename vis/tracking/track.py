"""One tracked object (``Track``), its lifecycle (``TrackState`` and the one table of allowed
transitions) and its state as data for checkpoints (``track_state``/``track_from_state``:
JSON scalars and numpy arrays only)."""

from __future__ import annotations

import dataclasses
import enum

import numpy as np

from vis.ops.masks import BoxMask
from vis.tracking import kalman


class TrackState(enum.Enum):
    TENTATIVE = "tentative"
    CONFIRMED = "confirmed"
    LOST = "lost"
    REMOVED = "removed"


_ALLOWED = {
    TrackState.TENTATIVE: {TrackState.CONFIRMED, TrackState.REMOVED},
    TrackState.CONFIRMED: {TrackState.LOST, TrackState.REMOVED},
    TrackState.LOST: {TrackState.CONFIRMED, TrackState.REMOVED},
    TrackState.REMOVED: set(),
}


@dataclasses.dataclass
class Track:
    """One tracked object. ``mask`` is its soft mask in the current frame (None when LOST)."""

    track_id: int
    class_id: int
    state: TrackState
    kf: object
    mask: BoxMask | None
    embedding: np.ndarray
    score: float
    hits: int
    first_frame: int
    last_seen: int  # last frame with a keyframe match or a live propagated mask
    last_seen_ms: float  # stream time of the last keyframe match
    last_box: np.ndarray
    class_votes: dict[int, float] = dataclasses.field(default_factory=dict)
    mask_trust: float = 0.5  # learned weight of the propagated mask vs the Kalman box
    missed_ms: float = 0.0  # stream time since the last keyframe match, outages not counted
    confirm_at: int = 0  # matched keyframes that confirm it (0: the tracker's confirm_hits)

    def vote(self, class_id: int, score: float) -> None:
        self.class_votes[class_id] = self.class_votes.get(class_id, 0.0) + score
        self.class_id = max(self.class_votes, key=self.class_votes.get)

    def transition(self, new: TrackState) -> None:
        if new is self.state:
            return
        if new not in _ALLOWED[self.state]:
            raise RuntimeError(
                f"track {self.track_id}: {self.state.value} -> {new.value} not allowed"
            )
        self.state = new


def track_state(t: Track) -> dict:
    m = t.mask
    return {
        "track_id": t.track_id,
        "class_id": t.class_id,
        "state": t.state.value,
        "kf_x": np.asarray(t.kf.x, np.float64),
        "kf_P": np.asarray(t.kf.P, np.float64),
        "mask": None
        if m is None
        else {
            "x0": m.x0,
            "y0": m.y0,
            "prob": m.prob,
            "image_size": list(m.image_size),
            "velocity": [float(v) for v in m.velocity],
        },
        "embedding": t.embedding,
        "score": t.score,
        "hits": t.hits,
        "first_frame": t.first_frame,
        "last_seen": t.last_seen,
        "last_seen_ms": t.last_seen_ms,
        "last_box": np.asarray(t.last_box, np.float32),
        "class_votes": [[int(k), float(v)] for k, v in t.class_votes.items()],
        "mask_trust": t.mask_trust,
        "missed_ms": t.missed_ms,
        "confirm_at": t.confirm_at,
    }


def track_from_state(d: dict) -> Track:
    kf = kalman.make_box_filter(np.asarray(d["last_box"], np.float32))
    kf.x = np.asarray(d["kf_x"], np.float64).reshape(kf.x.shape)
    kf.P = np.asarray(d["kf_P"], np.float64).reshape(kf.P.shape)
    m = d["mask"]
    mask = (
        None
        if m is None
        else BoxMask(
            int(m["x0"]),
            int(m["y0"]),
            np.asarray(m["prob"], np.float32),
            (int(m["image_size"][0]), int(m["image_size"][1])),
            (float(m["velocity"][0]), float(m["velocity"][1])),
        )
    )
    return Track(
        track_id=int(d["track_id"]),
        class_id=int(d["class_id"]),
        state=TrackState(d["state"]),
        kf=kf,
        mask=mask,
        embedding=np.asarray(d["embedding"], np.float32),
        score=float(d["score"]),
        hits=int(d["hits"]),
        first_frame=int(d["first_frame"]),
        last_seen=int(d["last_seen"]),
        last_seen_ms=float(d["last_seen_ms"]),
        last_box=np.asarray(d["last_box"], np.float32),
        class_votes={int(k): float(v) for k, v in d["class_votes"]},
        mask_trust=float(d["mask_trust"]),
        missed_ms=float(d.get("missed_ms", 0.0)),
        confirm_at=int(d.get("confirm_at", 0)),
    )
