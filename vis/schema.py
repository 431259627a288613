"""The per-frame record: encode a ``FrameResult`` to a JSON-ready dict and back.

Two versions, both read everywhere: ``vis.frame/2`` (written by default) stores each mask as
a COCO RLE of its tight crop with the crop's offset (``vis.ops.rle``), ``vis.frame/1`` as a
full-frame COCO RLE; nothing else differs. Contract: ``decode_record(encode_record(r))``
reproduces ``r``'s ids, classes, scores, boxes and binary masks exactly.
``validate_record`` is the one check of a record, shared by every writer and reader: types,
finite numbers, ranges and the limits below (frame pixels, instances, class ids, id lengths,
mask crop pixels), so decoding a valid record allocates a bounded amount of memory;
``decode_record`` raises ``SchemaError`` for anything that is not a valid record. A result is
encoded once per version (``record_of``/``json_of`` cache it on the result) and every sink
shares that encoding. Described for users in docs/schema.md and docs/vis.frame.v*.schema.json.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from vis.ops import rle as rle_ops
from vis.ops.masks import BoxMask
from vis.types import Detections, FrameResult

SCHEMA_V1 = "vis.frame/1"
SCHEMA_V2 = "vis.frame/2"
#: the version written unless a sink is told otherwise (``sinks.record_version``)
SCHEMA = SCHEMA_V2
SCHEMAS = {1: SCHEMA_V1, 2: SCHEMA_V2}


#: limits of a record (docs/limits.md): a record over one is not valid
MAX_PIXELS = 8192 * 4320  # width * height: 8K
MAX_MASK_PIXELS = 2 * MAX_PIXELS  # the instances' mask crops together (decoded as float32)
MAX_INSTANCES = 1000
MAX_CLASS_ID = 65535
MAX_INDEX = 2**53  # frame indices and track ids (exact in every JSON reader)
MAX_ID_CHARS = 200  # stream id (it names files)
MAX_LABEL_CHARS = 200


class SchemaError(ValueError):
    """A record that is not a valid ``vis.frame`` object."""


def encode_masks(masks: np.ndarray) -> list[dict[str, Any]]:
    """(N, H, W) bool -> N full-frame COCO RLE dicts with ``counts`` as str."""
    return rle_ops.encode_full(masks)


@contextlib.contextmanager
def _bad_mask():
    """A malformed mask dict, whatever the error, becomes ``SchemaError``."""
    try:
        yield
    except (ValueError, TypeError, AttributeError) as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise SchemaError(f"bad RLE mask: {first[:200]}") from exc


def decode_mask(rle: dict[str, Any], image_size: tuple[int, int] | None = None) -> np.ndarray:
    """One mask dict (either form; a box-relative one needs ``image_size``) -> (H, W) bool.
    Raises ``SchemaError`` on a malformed mask."""
    with _bad_mask():
        if image_size is None and rle_ops.is_box_relative(rle):
            raise ValueError("a box-relative mask needs the frame size")
        return rle_ops.to_full(rle, image_size)


def instance_mask(rle: dict[str, Any], image_size: tuple[int, int]) -> BoxMask:
    """One mask dict (either form) -> ``BoxMask``; raises ``SchemaError`` when malformed."""
    with _bad_mask():
        return rle_ops.decode_box(rle, image_size)


def full_rle(rle: dict[str, Any], image_size: tuple[int, int]) -> dict[str, Any]:
    """One mask dict (either form) -> the full-frame COCO RLE dict (for COCO-style files)."""
    with _bad_mask():
        return rle_ops.to_full_rle(rle, image_size)


def as_v1(record: dict[str, Any]) -> dict[str, Any]:
    """A valid record of either version -> the same frame as ``vis.frame/1`` (full-frame
    masks; a v1 record is returned as is). For readers that store COCO-style masks."""
    if record["schema"] == SCHEMA_V1:
        return record
    size = (record["height"], record["width"])
    return {
        **record,
        "schema": SCHEMA_V1,
        "instances": [
            {**inst, "mask": full_rle(inst["mask"], size)} for inst in record["instances"]
        ],
    }


class RecordLineError(SchemaError):
    """A line of a record file that is not a valid record (``lineno``: 1-based)."""

    def __init__(self, lineno: int, reason: str) -> None:
        super().__init__(reason)
        self.lineno = lineno


def iter_v1_records(lines: Iterable[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    """The lines of a ``vis.frame`` JSONL file (either version) -> (line number, the valid
    record as ``vis.frame/1``), blank lines skipped. For readers that store COCO-style
    masks. Raises ``RecordLineError`` at the first line that is not a valid record."""
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            yield lineno, as_v1(validate_record(json.loads(line)))
        except (json.JSONDecodeError, SchemaError) as exc:
            raise RecordLineError(lineno, str(exc)) from None


def encode_record(result: FrameResult, *, version: int = 2) -> dict[str, Any]:
    """``FrameResult`` -> ``vis.frame/<version>`` dict (JSON-serialisable)."""
    if version not in SCHEMAS:
        raise ValueError(f"record version {version!r}: choose 1 or 2")
    d = result.detections
    encode = rle_ops.encode_box if version == 2 else rle_ops.encode_box_as_full
    boxes = np.round(d.xyxy.astype(np.float64), 2).tolist()
    scores = np.round(d.scores.astype(np.float64), 4).tolist()
    conf = None if d.mask_confidence is None else np.round(d.mask_confidence.astype(np.float64), 4)
    agree = None if d.agreement is None else np.round(d.agreement.astype(np.float64), 4)
    doubt = None if d.uncertainty is None else np.round(d.uncertainty.astype(np.float64), 4)
    instances = []
    for i, (tid, cid) in enumerate(zip(d.track_ids.tolist(), d.class_ids.tolist())):
        inst = {
            "track_id": tid,
            "class_id": cid,
            "label": result.labels[cid] if 0 <= cid < len(result.labels) else str(cid),
            "score": scores[i],
            "bbox": boxes[i],
            "mask": encode(d.masks[i]),
        }
        if conf is not None:
            inst["mask_confidence"] = float(conf[i])
        if agree is not None and np.isfinite(agree[i]):
            inst["agreement"] = float(agree[i])
        if doubt is not None and np.isfinite(doubt[i]):
            inst["uncertainty"] = float(doubt[i])
        instances.append(inst)
    return {
        "schema": SCHEMAS[version],
        "stream_id": result.stream_id,
        "frame_index": int(result.frame_index),
        "timestamp_ms": round(float(result.timestamp_ms), 3),
        "keyframe": bool(result.keyframe),
        "propagated_from": [int(k) for k in result.propagated_from],
        "width": int(result.width),
        "height": int(result.height),
        "instances": instances,
    }


def record_of(result: FrameResult, *, version: int = 2) -> dict[str, Any]:
    """``encode_record``, computed once per result and version and shared by every caller
    (treat the dict as read-only)."""
    key = ("record", version)
    if key not in result.encodings:
        result.encodings[key] = encode_record(result, version=version)
    return result.encodings[key]


def json_of(result: FrameResult, *, version: int = 2) -> bytes:
    """The record as one compact UTF-8 JSON line (no newline), computed once per result."""
    key = ("json", version)
    if key not in result.encodings:
        result.encodings[key] = dumps_json(record_of(result, version=version))
    return result.encodings[key]


def dumps_json(obj: Any) -> bytes:
    """Compact JSON bytes (the one formatting of every record the product writes)."""
    return json.dumps(obj, separators=(",", ":")).encode("utf-8")


def dumps_record(result: FrameResult, *, version: int = 2) -> str:
    """``FrameResult`` -> one compact JSON line (no newline)."""
    return json_of(result, version=version).decode("utf-8")


def _require(obj: dict, key: str, types: type | tuple[type, ...]) -> Any:
    if key not in obj:
        raise SchemaError(f"missing field {key!r}")
    val = obj[key]
    if isinstance(val, bool) and bool not in (types if isinstance(types, tuple) else (types,)):
        raise SchemaError(f"field {key!r} has type bool")
    if not isinstance(val, types):
        raise SchemaError(f"field {key!r} has type {type(val).__name__}")
    return val


def _short(value: Any) -> str:
    """``repr(value)``, cut to 60 characters (messages stay one short line)."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _int_in(obj: dict, key: str, lo: int, hi: int) -> int:
    """``obj[key]``: an integer (not bool) in ``[lo, hi]``, else ``SchemaError``."""
    val = _require(obj, key, int)
    if not lo <= val <= hi:
        raise SchemaError(f"field {key!r} is out of range [{lo}, {hi}]")
    return val


def finite_number(val: int | float) -> bool:
    """A number finite as a float (an integer past the float range, 10**400, is not)."""
    try:
        return math.isfinite(val)
    except OverflowError:
        return False


def shown(val: Any, limit: int = 40) -> str:
    """``val`` as an error line may quote it: its repr on one line (an array's spans several),
    at most ``limit`` characters."""
    return " ".join(repr(val).split())[:limit]


def _number_in(obj: dict, key: str, lo: float = -math.inf, hi: float = math.inf) -> float:
    """``obj[key]``: a finite number (not bool) in ``[lo, hi]``, else ``SchemaError``."""
    val = _require(obj, key, (int, float))
    if not (finite_number(val) and lo <= val <= hi):
        raise SchemaError(f"field {key!r} must be a finite number in [{lo}, {hi}]")
    return val


def _text(obj: dict, key: str, limit: int) -> str:
    val = _require(obj, key, str)
    if len(val) > limit:
        raise SchemaError(f"field {key!r} is longer than {limit} characters")
    return val


def validate_record(obj: Any) -> dict[str, Any]:
    """Check a decoded JSON object against ``vis.frame/1`` or ``/2`` (types, finite numbers,
    ranges and the limits above); return it or raise ``SchemaError``. Masks are checked for
    form, bounds and total crop size, not decoded. Writers and readers share this check."""
    if not isinstance(obj, dict):
        raise SchemaError(f"record is a {type(obj).__name__}, not an object")
    schema = obj.get("schema")
    if schema not in SCHEMAS.values():
        raise SchemaError(f"schema is {_short(schema)}, expected one of {sorted(SCHEMAS.values())}")
    _text(obj, "stream_id", MAX_ID_CHARS)
    _int_in(obj, "frame_index", 0, MAX_INDEX)
    _number_in(obj, "timestamp_ms")
    _require(obj, "keyframe", bool)
    source = obj.get("propagated_from", [])
    if (
        not isinstance(source, list)
        or len(source) > MAX_INSTANCES
        or not all(
            isinstance(k, int) and not isinstance(k, bool) and 0 <= k <= MAX_INDEX for k in source
        )
    ):
        raise SchemaError("field 'propagated_from' must be a list of frame indices")
    w, h = _int_in(obj, "width", 1, MAX_PIXELS), _int_in(obj, "height", 1, MAX_PIXELS)
    if w * h > MAX_PIXELS:
        raise SchemaError(f"frame {w}x{h} has more than {MAX_PIXELS} pixels")
    instances = _require(obj, "instances", list)
    if len(instances) > MAX_INSTANCES:
        raise SchemaError(f"{len(instances)} instances, more than {MAX_INSTANCES}")
    crop_pixels = 0
    for inst in instances:
        if not isinstance(inst, dict):
            raise SchemaError("instance is not an object")
        _int_in(inst, "class_id", 0, MAX_CLASS_ID)
        if "track_id" in inst:
            _int_in(inst, "track_id", -1, MAX_INDEX)
        if "label" in inst:
            _text(inst, "label", MAX_LABEL_CHARS)
        _number_in(inst, "score", 0.0, 1.0)
        bbox = _require(inst, "bbox", list)
        if len(bbox) != 4 or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and finite_number(v)
            for v in bbox
        ):
            raise SchemaError("bbox must have 4 finite numbers")
        for key in ("mask_confidence", "agreement", "uncertainty"):
            if key in inst:
                _number_in(inst, key, 0.0, 1.0)
        crop_pixels += _check_mask(_require(inst, "mask", dict), schema, w, h)
        if crop_pixels > MAX_MASK_PIXELS:
            raise SchemaError(f"the masks' crops hold more than {MAX_MASK_PIXELS} pixels")
    return obj


def _check_mask(mask: dict[str, Any], schema: str, w: int, h: int) -> int:
    """Check a mask's form and bounds; return the pixels of its crop (v1: 0, not known
    before decoding; ``decode_record`` counts them)."""
    if not isinstance(mask.get("counts"), str):
        raise SchemaError("mask counts must be a string")
    size = mask.get("size", [])
    size = list(size) if isinstance(size, list) else []
    if schema == SCHEMA_V1:
        if size != [h, w]:
            raise SchemaError(f"mask size {_short(mask.get('size'))} != frame [{h}, {w}]")
        return 0
    x, y = mask.get("x"), mask.get("y")
    ok = (
        len(size) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in (x, y, *size))
        and x >= 0
        and y >= 0
        and min(size) >= 0
        and x + size[1] <= w
        and y + size[0] <= h
    )
    if not ok:
        raise SchemaError(
            f"mask crop x={_short(x)} y={_short(y)} size={_short(size)} is not inside the "
            f"{w}x{h} frame"
        )
    return size[0] * size[1]


def instance_masks(
    instances: list[dict[str, Any]], size: tuple[int, int], *, keep: bool = True
) -> list[BoxMask]:
    """The masks of a valid record's instances -> ``BoxMask``es; ``SchemaError`` for a
    malformed one or once the crops hold more than ``MAX_MASK_PIXELS`` (full-frame masks'
    crops are known only once decoded). ``keep=False`` only checks: each mask is dropped
    once decoded and the list is empty."""
    masks, total = [], 0
    for inst in instances:
        mask = instance_mask(inst["mask"], size)
        total += mask.prob.size
        if total > MAX_MASK_PIXELS:
            raise SchemaError(f"the masks' crops hold more than {MAX_MASK_PIXELS} pixels")
        if keep:
            masks.append(mask)
    return masks


def decode_record(obj: dict[str, Any] | str | bytes, *, with_masks: bool = True) -> FrameResult:
    """``vis.frame/1`` or ``/2`` dict (or JSON text) -> ``FrameResult`` (box-local masks).

    Args:
        obj: the record, parsed or as JSON text/bytes.
        with_masks: decode the RLE masks (False leaves every mask empty: cheap summaries).
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
    masks = instance_masks(inst, (h, w)) if with_masks else [BoxMask.empty((h, w))] * n
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
        image_size=(h, w),
        uncertainty=np.array([i.get("uncertainty", np.nan) for i in inst], np.float32)
        if any("uncertainty" in i for i in inst)
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
