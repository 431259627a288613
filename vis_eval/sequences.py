"""Tracks of one sequence as compressed-RLE instances, and the conversions between the
formats the harness meets: our ``vis.frame/1`` JSONL, our MOTS text, TrackEval's MOTS text.

Contract: ``read_jsonl``/``read_mots`` give a ``TrackSequence`` (0-based frames, masks never
decoded; a line that is not a record raises ``EvaluationError`` naming the file and line);
``format_lines``/``write_mots`` write our MOTS text; ``trackeval_lines(seq)`` gives the
lines TrackEval's ``MOTSChallenge`` reader accepts (1-based frames, one class,
non-overlapping masks); ``parse_trackeval_lines`` reads them back. Conventions:

* our MOTS text (KITTI MOTS / MOTSChallenge layout): one line per object and frame,
  ``frame track_id class_id height width rle``, ``rle`` the COCO compressed RLE string,
  ``track_id = class_id * 1000 + instance`` (KITTI MOTS convention; id 10000 marks ignore
  regions, skipped when read).
* frames: our JSONL and MOTS files count from 0; TrackEval's MOTSChallenge files count
  from 1 (``frame + 1`` on the way out, ``- 1`` on the way back).
* classes: TrackEval's MOTSChallenge knows one class (``2`` = pedestrian, ``10`` = ignore).
  We score class-agnostically: every instance is written as class 2 and our class id is
  dropped (it survives in ``Instance.class_id`` for mask AP and per-class runs, which
  filter by class *before* writing).
* overlaps: MOTS requires that no pixel belongs to two instances of a frame (TrackEval
  raises otherwise). Overlapping predictions are resolved the MOTS way: instances are
  taken in decreasing score (ties: lower track id first) and each keeps only the pixels
  no earlier instance took; instances left empty are dropped. Ground truth from our
  renderer never overlaps.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from pycocotools import mask as mask_utils

from vis.schema import SCHEMA_V1, RecordLineError, encode_masks, iter_v1_records

#: TrackEval MOTSChallenge class id every instance is written with (class-agnostic scoring).
TRACKEVAL_CLASS = 2


class EvaluationError(ValueError):
    """Input the harness cannot score; the message names the file and the problem."""


@dataclasses.dataclass(frozen=True)
class Instance:
    """One instance in one frame.

    Attributes:
        track_id: ground-truth or predicted id (-1 for untracked detections).
        class_id: 1 disk, 2 box, 3 star (our classes).
        score: confidence (1.0 for ground truth and MOTS text).
        rle: pycocotools compressed RLE ``{"size": [H, W], "counts": bytes}``.
    """

    track_id: int
    class_id: int
    score: float
    rle: dict


@dataclasses.dataclass
class TrackSequence:
    """Per-frame instances of one sequence.

    Attributes:
        frames: frame index (0-based) -> instances; frames without instances may be absent.
        keyframes: frames whose record says ``keyframe: true`` (JSONL predictions), else None.
        size: (H, W) of the frames, if known.
        n_records: frames that had a record (JSONL) or line (MOTS).
    """

    frames: dict[int, list[Instance]] = dataclasses.field(default_factory=dict)
    keyframes: set[int] | None = None
    size: tuple[int, int] | None = None
    n_records: int = 0

    @property
    def last_frame(self) -> int:
        """Highest frame index with a record, -1 if none."""
        return max(self.frames, default=-1)

    def instances(self, frame: int) -> list[Instance]:
        return self.frames.get(frame, [])

    def filter_class(self, class_id: int) -> TrackSequence:
        """The instances of one class only."""
        return TrackSequence(
            {f: [i for i in v if i.class_id == class_id] for f, v in self.frames.items()},
            self.keyframes,
            self.size,
            self.n_records,
        )


def _rle(size: list[int], counts: str | bytes) -> dict:
    return {
        "size": [int(size[0]), int(size[1])],
        "counts": counts.encode("ascii") if isinstance(counts, str) else counts,
    }


def encode_rles(masks: np.ndarray) -> list[dict]:
    """(N, H, W) bool masks -> N compressed RLE dicts (bytes counts)."""
    if len(masks) == 0:
        return []
    return list(mask_utils.encode(np.asfortranarray(masks.transpose(1, 2, 0).astype(np.uint8))))


# -- readers ---------------------------------------------------------------------------------
def read_jsonl(path: str | Path) -> TrackSequence:
    """A ``vis.frame`` JSONL file (one record per frame, version 2 or 1) -> ``TrackSequence``.

    Raises:
        EvaluationError: a line that is not a valid record (names the file and line).
    """
    path = Path(path)
    seq = TrackSequence(keyframes=set())
    with open(path, encoding="utf-8") as fh:
        try:
            for _, rec in iter_v1_records(fh):
                f = rec["frame_index"]
                seq.size = (rec["height"], rec["width"])
                seq.n_records += 1
                if rec["keyframe"]:
                    seq.keyframes.add(f)
                seq.frames[f] = [
                    Instance(
                        int(i.get("track_id", -1)),
                        int(i["class_id"]),
                        float(i["score"]),
                        _rle(i["mask"]["size"], i["mask"]["counts"]),
                    )
                    for i in rec["instances"]
                ]
        except RecordLineError as exc:
            raise EvaluationError(
                f"{path} line {exc.lineno}: not a vis.frame record ({exc})"
            ) from None
    return seq


def read_mots(path: str | Path) -> TrackSequence:
    """Our MOTS text (``frame id class h w rle``, 0-based frames) -> ``TrackSequence``.

    Ids 10000 (KITTI MOTS ignore regions) are skipped: our generator writes none.
    """
    path = Path(path)
    seq = TrackSequence()
    with open(path, encoding="ascii") as fh:
        for n, line in enumerate(fh, start=1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 6:
                raise EvaluationError(
                    f"{path} line {n}: expected 6 fields (frame id class h w rle), got {len(parts)}"
                )
            f, t, c, h, w, counts = parts
            seq.n_records += 1
            if int(t) == 10000:
                continue
            seq.size = (int(h), int(w))
            seq.frames.setdefault(int(f), []).append(
                Instance(int(t), int(c), 1.0, _rle([h, w], counts))
            )
    return seq


def read_mots_by_frame(path: str | Path) -> dict[int, list[tuple[int, int, np.ndarray]]]:
    """MOTS text with decoded masks, by frame: {frame: [(track_id, class_id, (H, W) bool
    mask), ...]} (read by ``read_mots``, so as strict)."""
    return {
        f: [(i.track_id, i.class_id, mask_utils.decode(i.rle).astype(bool)) for i in insts]
        for f, insts in sorted(read_mots(path).frames.items())
    }


def read_tracks(path: str | Path) -> TrackSequence:
    """``.jsonl`` -> ``read_jsonl``; anything else -> ``read_mots``."""
    return read_jsonl(path) if str(path).endswith(".jsonl") else read_mots(path)


# -- writers ---------------------------------------------------------------------------------
def format_lines(
    frame: int, track_ids: np.ndarray, class_ids: np.ndarray, masks: np.ndarray
) -> list[str]:
    """MOTS lines of one frame: (N,) ids, (N,) classes, (N, H, W) bool masks."""
    rles = encode_masks(masks)
    return [
        f"{frame} {int(t)} {int(c)} {r['size'][0]} {r['size'][1]} {r['counts']}"
        for t, c, r in zip(track_ids, class_ids, rles)
    ]


def write_mots(path: str | Path, lines: Iterable[str]) -> None:
    """Write MOTS lines (``format_lines``) to ``path``, creating its folder."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="ascii") as fh:
        for line in lines:
            fh.write(line + "\n")


def jsonl_records(
    seq: TrackSequence,
    *,
    stream_id: str,
    n_frames: int,
    fps: float = 25.0,
    labels: dict[int, str] | None = None,
    keyframes: Iterable[int] | None = None,
) -> list[dict]:
    """``TrackSequence`` -> ``n_frames`` ``vis.frame/1`` records (frames without instances
    get an empty record). ``keyframes`` None marks every frame a keyframe."""
    if seq.size is None:
        raise EvaluationError(f"{stream_id}: frame size unknown (no instance and no size)")
    h, w = seq.size
    kf = set(range(n_frames)) if keyframes is None else set(keyframes)
    out = []
    for f in range(n_frames):
        insts = seq.instances(f)
        boxes = mask_utils.toBbox([i.rle for i in insts]) if insts else np.zeros((0, 4))
        out.append(
            {
                "schema": SCHEMA_V1,
                "stream_id": stream_id,
                "frame_index": f,
                "timestamp_ms": round(f * 1000.0 / fps, 3),
                "keyframe": f in kf,
                "width": w,
                "height": h,
                "instances": [
                    {
                        "track_id": int(i.track_id),
                        "class_id": int(i.class_id),
                        "label": (labels or {}).get(i.class_id, str(i.class_id)),
                        "score": round(float(i.score), 4),
                        "bbox": [
                            round(float(b[0]), 2),
                            round(float(b[1]), 2),
                            round(float(b[0] + b[2]), 2),
                            round(float(b[1] + b[3]), 2),
                        ],
                        "mask": {"size": [h, w], "counts": i.rle["counts"].decode("ascii")},
                    }
                    for i, b in zip(insts, boxes)
                ],
            }
        )
    return out


def write_jsonl(path: str | Path, records: Iterable[dict]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        for r in records:
            fh.write(json.dumps(r, separators=(",", ":")) + "\n")
    return path


def resolve_overlaps(instances: list[Instance]) -> list[Instance]:
    """Make the masks of one frame disjoint (MOTS rule, see module docstring).

    Returns the instances in their original order, overlapping pixels given to the
    higher-scoring one; instances left with no pixel are dropped.
    """
    if len(instances) < 2:
        return list(instances)
    rles = [i.rle for i in instances]
    iou = np.asarray(mask_utils.iou(rles, rles, [0] * len(rles)))
    np.fill_diagonal(iou, 0.0)
    if not (iou > 0).any():
        return list(instances)
    order = sorted(
        range(len(instances)), key=lambda k: (-instances[k].score, instances[k].track_id)
    )
    h, w = rles[0]["size"]
    taken = np.zeros((h, w), bool)
    kept: dict[int, Instance] = {}
    for k in order:
        inst = instances[k]
        m = mask_utils.decode(inst.rle).astype(bool)
        if (iou[k] > 0).any():
            m &= ~taken
        if m.any():
            rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
            kept[k] = dataclasses.replace(inst, rle={"size": [h, w], "counts": rle["counts"]})
        taken |= m
    return [kept[k] for k in sorted(kept)]


def trackeval_lines(seq: TrackSequence, *, n_frames: int) -> list[str]:
    """MOTSChallenge lines ``frame id 2 h w rle`` (1-based frames) of frames ``0..n_frames-1``.

    Overlaps are resolved (``resolve_overlaps``); instances without a track id (-1) cannot
    be scored as tracks and raise.
    """
    lines = []
    for f in sorted(seq.frames):
        if f >= n_frames or f < 0:
            raise EvaluationError(f"frame {f} is outside the sequence's {n_frames} frames")
        insts = resolve_overlaps(seq.frames[f])
        ids = [i.track_id for i in insts]
        if any(t < 0 for t in ids):
            raise EvaluationError(
                f"frame {f} has instances without a track id (-1): these are detections, not tracks"
            )
        if len(set(ids)) != len(ids):
            raise EvaluationError(f"frame {f} has the same track id twice: {sorted(ids)}")
        for i in insts:
            h, w = i.rle["size"]
            lines.append(
                f"{f + 1} {i.track_id} {TRACKEVAL_CLASS} {h} {w} {i.rle['counts'].decode('ascii')}"
            )
    return lines


def parse_trackeval_lines(lines: Iterable[str]) -> TrackSequence:
    """Inverse of ``trackeval_lines`` (class ids come back as ``TRACKEVAL_CLASS``)."""
    seq = TrackSequence()
    for line in lines:
        parts = line.split()
        if len(parts) != 6:
            continue
        f, t, c, h, w, counts = parts
        seq.size = (int(h), int(w))
        seq.frames.setdefault(int(f) - 1, []).append(
            Instance(int(t), int(c), 1.0, _rle([h, w], counts))
        )
    return seq
