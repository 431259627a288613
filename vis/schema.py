"""The ``vis.frame/1`` per-frame record: encode a ``FrameResult`` to a JSON-ready dict and back.

Contract: ``decode_record(encode_record(r))`` reproduces ``r``'s ids, classes, scores, boxes
and masks exactly (masks are COCO compressed RLE). ``decode_record`` raises
``SchemaError`` for anything that is not a valid ``vis.frame/1`` record. Described for
users in docs/schema.md and docs/vis.frame.v1.schema.json.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from vis.types import Detections, FrameResult

SCHEMA = "vis.frame/1"


class SchemaError(ValueError):
    """A record that is not a valid ``vis.frame/1`` object."""


def encode_masks(masks: np.ndarray) -> list[dict[str, Any]]:
    """(N, H, W) bool -> N COCO RLE dicts with ``counts`` as str."""
    if len(masks) == 0:
        return []
    rles = mask_utils.encode(np.asfortranarray(masks.transpose(1, 2, 0).astype(np.uint8)))
    return [
        {"size": [int(r["size"][0]), int(r["size"][1])], "counts": r["counts"].decode("ascii")}
        for r in rles
    ]


def decode_mask(rle: dict[str, Any]) -> np.ndarray:
    """One COCO RLE dict -> (H, W) bool. Raises ``SchemaError`` on a malformed RLE."""
    try:
        h, w = (int(v) for v in rle["size"])
        counts = rle["counts"]
        if not isinstance(counts, str):
            raise TypeError("counts must be a string")
        m = mask_utils.decode({"size": [h, w], "counts": counts.encode("ascii")})
    except Exception as exc:  # noqa: BLE001 - pycocotools raises many types
        raise SchemaError(f"bad RLE mask: {exc}") from exc
    if m.shape != (h, w) or int(
        mask_utils.area({"size": [h, w], "counts": counts.encode()})
    ) != int(m.sum()):
        raise SchemaError("bad RLE mask: decoded size does not match")
    return m.astype(bool)


def encode_record(result: FrameResult) -> dict[str, Any]:
    """``FrameResult`` -> ``vis.frame/1`` dict (JSON-serialisable)."""
    d = result.detections
    rles = encode_masks(d.masks)
    instances = []
    for i in range(len(d)):
        cid = int(d.class_ids[i])
        instances.append(
            {
                "track_id": int(d.track_ids[i]),
                "class_id": cid,
                "label": result.labels[cid] if 0 <= cid < len(result.labels) else str(cid),
                "score": round(float(d.scores[i]), 4),
                "bbox": [round(float(v), 2) for v in d.xyxy[i]],
                "mask": rles[i],
            }
        )
        if d.mask_confidence is not None:
            instances[-1]["mask_confidence"] = round(float(d.mask_confidence[i]), 4)
        if d.agreement is not None and np.isfinite(d.agreement[i]):
            instances[-1]["agreement"] = round(float(d.agreement[i]), 4)
    return {
        "schema": SCHEMA,
        "stream_id": result.stream_id,
        "frame_index": int(result.frame_index),
        "timestamp_ms": round(float(result.timestamp_ms), 3),
        "keyframe": bool(result.keyframe),
        "propagated_from": [int(k) for k in result.propagated_from],
        "width": int(result.width),
        "height": int(result.height),
        "instances": instances,
    }


def dumps_record(result: FrameResult) -> str:
    """``FrameResult`` -> one compact JSON line (no newline)."""
    return json.dumps(encode_record(result), separators=(",", ":"))


def _require(obj: dict, key: str, types: type | tuple[type, ...]) -> Any:
    if key not in obj:
        raise SchemaError(f"missing field {key!r}")
    val = obj[key]
    if isinstance(val, bool) and bool not in (types if isinstance(types, tuple) else (types,)):
        raise SchemaError(f"field {key!r} has type bool")
    if not isinstance(val, types):
        raise SchemaError(f"field {key!r} has type {type(val).__name__}")
    return val


def validate_record(obj: Any) -> dict[str, Any]:
    """Check the structure of a decoded JSON object; return it or raise ``SchemaError``."""
    if not isinstance(obj, dict):
        raise SchemaError(f"record is a {type(obj).__name__}, not an object")
    schema = obj.get("schema")
    if schema != SCHEMA:
        raise SchemaError(f"schema is {schema!r}, expected {SCHEMA!r}")
    _require(obj, "stream_id", str)
    _require(obj, "frame_index", int)
    _require(obj, "timestamp_ms", (int, float))
    _require(obj, "keyframe", bool)
    source = obj.get("propagated_from", [])
    if not isinstance(source, list) or not all(
        isinstance(k, int) and not isinstance(k, bool) for k in source
    ):
        raise SchemaError("field 'propagated_from' must be a list of frame indices")
    w, h = _require(obj, "width", int), _require(obj, "height", int)
    for inst in _require(obj, "instances", list):
        if not isinstance(inst, dict):
            raise SchemaError("instance is not an object")
        _require(inst, "class_id", int)
        _require(inst, "score", (int, float))
        bbox = _require(inst, "bbox", list)
        if len(bbox) != 4:
            raise SchemaError("bbox must have 4 numbers")
        for key in ("mask_confidence", "agreement"):
            v = inst.get(key, 0.0)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 1:
                raise SchemaError(f"field {key!r} must be a number in [0, 1]")
        mask = _require(inst, "mask", dict)
        if list(mask.get("size", [])) != [h, w]:
            raise SchemaError(f"mask size {mask.get('size')} != frame [{h}, {w}]")
    return obj


def decode_record(obj: dict[str, Any] | str | bytes, *, with_masks: bool = True) -> FrameResult:
    """``vis.frame/1`` dict (or JSON text) -> ``FrameResult``.

    Args:
        obj: the record, parsed or as JSON text/bytes.
        with_masks: decode the RLE masks (False leaves (N, 0, 0) masks: cheap summaries).
    """
    if isinstance(obj, (str, bytes)):
        try:
            obj = json.loads(obj)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise SchemaError(f"not JSON: {exc}") from exc
    rec = validate_record(obj)
    h, w = rec["height"], rec["width"]
    inst = rec["instances"]
    n = len(inst)
    labels_by_id: dict[int, str] = {i["class_id"]: str(i.get("label", i["class_id"])) for i in inst}
    n_labels = max(labels_by_id, default=0) + 1
    labels = [labels_by_id.get(i, str(i)) for i in range(n_labels)]
    masks = (
        np.stack([decode_mask(i["mask"]) for i in inst])
        if with_masks and n
        else np.zeros((n, h, w) if with_masks else (n, 0, 0), bool)
    )
    dets = Detections(
        xyxy=np.array([i["bbox"] for i in inst], np.float32).reshape(n, 4),
        masks=masks,
        scores=np.array([i["score"] for i in inst], np.float32),
        class_ids=np.array([i["class_id"] for i in inst], np.int64),
        track_ids=np.array([i.get("track_id", -1) for i in inst], np.int64),
        mask_confidence=np.array([i["mask_confidence"] for i in inst], np.float32)
        if n and all(isinstance(i.get("mask_confidence"), (int, float)) for i in inst)
        else None,
        agreement=np.array([i.get("agreement", np.nan) for i in inst], np.float32)
        if any("agreement" in i for i in inst)
        else None,
    )
    return FrameResult(
        stream_id=rec["stream_id"],
        frame_index=rec["frame_index"],
        timestamp_ms=float(rec["timestamp_ms"]),
        keyframe=rec["keyframe"],
        propagated_from=tuple(int(k) for k in rec.get("propagated_from") or ()),
        width=w,
        height=h,
        detections=dets,
        labels=labels,
    )
