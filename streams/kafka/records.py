"""The wire format of frame records, both ways.

Contract: ``fit_record(record, budget)`` turns one ``vis.frame`` dict into values of at
most ``budget`` bytes (one value if it fits; else the instances split over ``part``/``parts``
records; an instance too large even alone gets a coarsened mask, ``mask_coarsened``);
``FrameAssembler.add(value)`` reads values back: parses and validates them, joins the parts
of a split frame into exactly the original record, drops repeated (stream_id, frame_index)
pairs and counts what is malformed, never raising: a record, and a split frame once joined,
must pass ``vis.schema.validate_record`` (its limits included); split frames waiting for
parts and the streams counted one by one are bounded. Pure logic, no I/O.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from typing import Any

import numpy as np

from streams.kafka.tracks import tracked_instances
from vis.ops.masks import BoxMask
from vis.ops.rle import encode_box, encode_box_as_full, is_box_relative
from vis.schema import (
    MAX_INSTANCES,
    SchemaError,
    dumps_json,
    instance_mask,
    instance_masks,
    validate_record,
)

log = logging.getLogger(__name__)

CONTENT_TYPE = "application/json"
#: bytes kept free below ``max_request_size`` for the key, headers and batch framing.
RECORD_OVERHEAD = 1024
#: the stream id counted for a malformed record without a readable key.
UNKNOWN_STREAM = "?"
#: split frames waiting for their other parts; past it the oldest is dropped (malformed)
MAX_PENDING_SPLITS = 256
#: streams counted one by one; malformed records of further keys count under ``UNKNOWN_STREAM``
MAX_COUNTED_STREAMS = 10_000


def headers(schema: str) -> list[tuple[str, bytes]]:
    """Kafka headers of a record of ``schema`` (``vis.frame/2``, ``/1`` or ``vis.track/1``)."""
    return [("schema", schema.encode()), ("content-type", CONTENT_TYPE.encode())]


# -- writing: the oversize policy ---------------------------------------------------------------
def coarsen_mask(mask: np.ndarray, block: int) -> np.ndarray:
    """(H, W) bool -> (H, W) bool made of ``block`` x ``block`` cells (majority vote)."""
    h, w = mask.shape
    hp, wp = -(-h // block) * block, -(-w // block) * block
    ones = np.zeros((2, hp, wp), np.float32)  # pixel values and which pixels exist
    ones[0, :h, :w] = mask
    ones[1, :h, :w] = 1.0
    sums = ones.reshape(2, hp // block, block, wp // block, block).sum(axis=(2, 4))
    cells = sums[0] * 2 >= sums[1]
    return np.repeat(np.repeat(cells, block, axis=0), block, axis=1)[:h, :w]


def _encode_like(mask: BoxMask, like: dict[str, Any]) -> dict[str, Any]:
    """``mask`` in the form (box-relative or full-frame) of the mask dict ``like``."""
    return encode_box(mask) if is_box_relative(like) else encode_box_as_full(mask)


def _coarsen_instance(inst: dict[str, Any], room: int, size: tuple[int, int]) -> dict[str, Any]:
    """Re-encode one instance's mask at ever coarser blocks until its JSON fits ``room``
    (blocks aligned on the mask's crop; the mask keeps its form)."""
    mask = instance_mask(inst["mask"], size)
    block = 2
    while block <= max(mask.prob.shape, default=0):
        cells = coarsen_mask(mask.bits, block).astype(np.float32)
        new = {
            **inst,
            "mask": _encode_like(dataclasses.replace(mask, prob=cells), inst["mask"]),
            "mask_coarsened": block,
        }
        if len(dumps_json(new)) <= room:
            return new
        block *= 2
    # last resort: the filled box (always a few bytes)
    x1, y1, x2, y2 = (round(float(v)) for v in inst["bbox"])
    x1, y1 = max(0, min(x1, size[1])), max(0, min(y1, size[0]))
    x2, y2 = max(x1, min(x2, size[1])), max(y1, min(y2, size[0]))
    box = BoxMask(x1, y1, np.ones((y2 - y1, x2 - x1), np.float32), size)
    return {**inst, "mask": _encode_like(box, inst["mask"]), "mask_coarsened": -1}


def fit_record(record: dict[str, Any], budget: int) -> tuple[list[bytes], int]:
    """Serialise a ``vis.frame`` dict into values of at most ``budget`` bytes each.

    Policy: a record that fits is one value (``dumps_record`` bytes). Otherwise its
    instances are split, in order, over several records that repeat the frame fields and
    add ``part`` (0-based) and ``parts``; consumers concatenate the parts' instances. An
    instance too large for a record on its own gets its mask coarsened (``mask_coarsened``:
    block size in pixels, -1 for the filled box).

    Returns:
        (values, number of coarsened instances).
    """
    whole = dumps_json(record)
    if len(whole) <= budget:
        return [whole], 0
    head = {k: v for k, v in record.items() if k != "instances"}
    base = len(dumps_json({**head, "part": 99999, "parts": 99999, "instances": []}))
    room = budget - base - 1  # one comma per instance
    if room < 256:
        raise ValueError(f"budget {budget} bytes leaves no room for an instance")
    coarsened = 0
    items: list[tuple[dict[str, Any], int]] = []
    for inst in record["instances"]:
        size = len(dumps_json(inst))
        if size > room:
            inst = _coarsen_instance(inst, room, (record["height"], record["width"]))
            size = len(dumps_json(inst))
            coarsened += 1
        items.append((inst, size + 1))
    groups: list[list[dict[str, Any]]] = [[]]
    used = 0
    for inst, size in items:
        if groups[-1] and used + size > room:
            groups.append([])
            used = 0
        groups[-1].append(inst)
        used += size
    n = len(groups)
    values = [
        dumps_json({**head, "part": i, "parts": n, "instances": g}) for i, g in enumerate(groups)
    ]
    return values, coarsened


# -- reading: parse, validate, join parts, de-duplicate ------------------------------------------
@dataclasses.dataclass
class StreamCounts:
    """Per-stream counters of what was read."""

    frames: int = 0
    duplicates: int = 0
    malformed: int = 0
    first_frame: int | None = None
    last_frame: int | None = None
    track_ids: set[int] = dataclasses.field(default_factory=set)

    @property
    def missing(self) -> int:
        """Frame indices between first and last that were not read."""
        if self.first_frame is None or self.last_frame is None:
            return 0
        return self.last_frame - self.first_frame + 1 - self.frames


class FrameAssembler:
    """Raw record values -> complete ``vis.frame`` dicts, counting what is wrong.

    Args:
        dedup: drop frames whose (stream_id, frame_index) was already returned.
        validate_masks: decode every RLE once to reject bad ones (costs ~1 ms per 720p mask).
    """

    def __init__(self, *, dedup: bool = True, validate_masks: bool = True) -> None:
        self.dedup = dedup
        self.validate_masks = validate_masks
        self.records = 0
        self.malformed = 0
        self.duplicates = 0
        self.streams: dict[str, StreamCounts] = {}
        self._seen: dict[str, set[int]] = {}
        self._parts: dict[tuple[str, int], dict[int, dict[str, Any]]] = {}
        self.last_error = ""

    @property
    def incomplete(self) -> int:
        """Split frames still missing parts."""
        return len(self._parts)

    def _counts(self, stream_id: str) -> StreamCounts:
        c = self.streams.get(stream_id)
        if c is None:
            c = self.streams[stream_id] = StreamCounts()
        return c

    def _malformed(self, exc: BaseException, key: bytes | None) -> None:
        self.malformed += 1
        self.last_error = str(exc)
        sid = key.decode("utf-8", "replace")[:200] if key else UNKNOWN_STREAM
        if sid not in self.streams and len(self.streams) >= MAX_COUNTED_STREAMS:
            sid = UNKNOWN_STREAM  # a flood of made-up keys does not grow the counts
        self._counts(sid).malformed += 1
        log.debug("malformed record (key %r): %s", sid, exc)

    def add(self, value: bytes | str | None, key: bytes | None = None) -> dict[str, Any] | None:
        """One record value -> the complete frame dict it finishes, or None."""
        self.records += 1
        try:
            rec = self._parse(value)
        except Exception as exc:  # noqa: BLE001 - any unreadable record is counted, not fatal
            self._malformed(exc, key)
            return None
        sid, fi = rec["stream_id"], rec["frame_index"]
        if self.dedup and fi in self._seen.get(sid, ()):
            self.duplicates += 1
            self._counts(sid).duplicates += 1
            return None
        if "parts" in rec:
            try:
                rec = self._join(rec)
            except SchemaError as exc:  # the joined frame is over a limit
                self._malformed(exc, key)
                return None
            if rec is None:
                return None
        if self.dedup:
            self._seen.setdefault(sid, set()).add(fi)
        c = self._counts(sid)
        c.frames += 1
        c.first_frame = fi if c.first_frame is None else min(c.first_frame, fi)
        c.last_frame = fi if c.last_frame is None else max(c.last_frame, fi)
        c.track_ids.update(tracked_instances(rec))
        return rec

    def _parse(self, value: bytes | str | None) -> dict[str, Any]:
        if value is None:
            raise SchemaError("empty record")
        try:
            obj = json.loads(value)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise SchemaError(f"not JSON: {exc}") from exc
        rec = validate_record(obj)
        if "parts" in rec or "part" in rec:
            part, parts = rec.get("part"), rec.get("parts")
            if (
                not isinstance(part, int)
                or not isinstance(parts, int)
                or isinstance(part, bool)
                or not 0 <= part < parts <= MAX_INSTANCES
            ):
                raise SchemaError(f"bad part {part!r} of {parts!r}")
        if self.validate_masks:  # decoded once to reject bad ones, then dropped
            instance_masks(rec["instances"], (rec["height"], rec["width"]), keep=False)
        return rec

    def _join(self, rec: dict[str, Any]) -> dict[str, Any] | None:
        key = (rec["stream_id"], rec["frame_index"])
        got = self._parts.get(key)
        if got is None:
            if len(self._parts) >= MAX_PENDING_SPLITS:  # the oldest will not be completed
                del self._parts[next(iter(self._parts))]
                self._malformed(SchemaError("split frame never completed"), None)
            got = self._parts[key] = {}
        got[rec["part"]] = rec
        if len(got) < rec["parts"]:
            return None
        del self._parts[key]
        ordered = [got.get(i) for i in range(rec["parts"])]
        if any(p is None or p["parts"] != rec["parts"] for p in ordered):
            raise SchemaError("the parts of a split frame disagree on their number")
        head = {k: v for k, v in ordered[0].items() if k not in ("part", "parts", "instances")}
        head["instances"] = [inst for p in ordered for inst in p["instances"]]
        return validate_record(head)
