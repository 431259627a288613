"""Hostile inputs for the readers of untrusted data, and the contract each reader keeps.

Used by the property-based tests (``tests/**/test_*_properties.py``) and by the longer fuzz
run (``python -m bench.fuzz``). Each ``*_inputs()`` is a Hypothesis strategy; each
``check_*`` feeds one generated input to a reader and raises ``ContractBroken`` when the
reader breaks its contract (an exception other than its documented one, a message of more
than one line, a result outside its limits). An allocation the limits should have prevented
shows as ``MemoryError`` under ``address_space_limit``. Needs the ``test`` extra
(``hypothesis``).
"""

from __future__ import annotations

import contextlib
import json
import math
import resource
import struct
import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from hypothesis import strategies as st

#: the frame size the precomputed readers are fed (as the video's)
FRAME_H, FRAME_W = 36, 52
#: ``frame.max_pixels`` in the folder checks: 1 MP keeps a within-limit hostile decode cheap
FOLDER_MAX_PIXELS = 1 << 20


class ContractBroken(AssertionError):
    """A reader broke its contract on a generated input."""


@contextlib.contextmanager
def address_space_limit(extra_bytes: int = 3 << 29) -> Iterator[None]:
    """Cap the process's address space at its current size plus ``extra_bytes`` (default
    1.5 GB) for the block: a reader that allocates by a declared size fails with
    ``MemoryError`` instead of swapping the machine. The previous limit is restored."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/status") as fh:
        vm = int(fh.read().split("VmSize:")[1].split()[0]) * 1024
    cap = vm + extra_bytes if hard == resource.RLIM_INFINITY else min(vm + extra_bytes, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def _one_line(exc: BaseException) -> None:
    msg = str(exc)
    if "\n" in msg or not msg.strip() or len(msg) > 1000:
        raise ContractBroken(f"{type(exc).__name__} message is not one short line: {msg!r}")


# -- numbers ------------------------------------------------------------------------------------
HOSTILE_INTS = st.one_of(
    st.integers(-3, 20),
    st.sampled_from([0, -1, 2**31 - 1, 2**31, 2**32, 2**53 + 1, 2**63, 2_000_000_000, 10**30]),
    st.sampled_from([10**400, -(10**400)]),  # past the float range: float() overflows
    st.integers(-(2**70), 2**70),
)
HOSTILE_FLOATS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 1e30, -1e30, 1e-300, float("nan"), float("inf"), 0.5, 60000.0]),
)
ANY_SCALAR = st.one_of(
    HOSTILE_INTS,
    HOSTILE_FLOATS,
    st.text(max_size=12),
    st.none(),
    st.booleans(),
    st.lists(st.integers(-5, 5), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


# -- image headers ------------------------------------------------------------------------------
def _png(w: int, h: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 32)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _jpeg(w: int, h: int, app_len: int) -> bytes:
    app = b"\xff\xe0" + struct.pack(">H", app_len + 2) + b"\x00" * app_len
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, h, w, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + app + sof + b"\xff\xda\x00\x08\x01\x01\x00\x00\x3f\x00" + b"\x00" * 16


def _bmp(w: int, h: int) -> bytes:
    info = struct.pack("<IiiHHIIiiII", 40, w, h, 1, 24, 0, 0, 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 14 + len(info) + 16, 0, 0, 54) + info + b"\x00" * 16


def _real(w: int, h: int, ext: str) -> bytes:
    ok, buf = cv2.imencode(ext, np.full((h, w, 3), 90, np.uint8))
    assert ok
    return buf.tobytes()


@st.composite
def image_files(draw: st.DrawFn) -> tuple[str, bytes, tuple[int, int] | None]:
    """(suffix, bytes, declared size or None when the bytes were mangled)."""
    kind = draw(st.sampled_from(["png", "jpeg", "bmp", "real", "garbage"]))
    big = st.one_of(st.integers(0, 70000), st.sampled_from([20000, 100000, 65535, 1, 0]))
    if kind == "png":
        w, h = draw(st.one_of(big, st.integers(0, 2**32 - 1))), draw(big)
        data, suffix, size = _png(w, h), ".png", (w, h)
    elif kind == "jpeg":
        w, h = draw(st.integers(0, 65535)), draw(st.integers(0, 65535))
        data, suffix, size = _jpeg(w, h, draw(st.integers(0, 300))), ".jpg", (w, h)
    elif kind == "bmp":
        w = draw(st.integers(-(2**31), 2**31 - 1))
        h = draw(st.integers(-(2**31), 2**31 - 1))
        data, suffix, size = _bmp(w, h), ".bmp", (abs(w), abs(h))
    elif kind == "real":
        w, h = draw(st.sampled_from([(8, 6), (6, 8), (16, 16)]))
        suffix = draw(st.sampled_from([".png", ".jpg", ".bmp", ".tif", ".webp"]))
        data, size = _real(w, h, suffix), (w, h)
    else:
        data = draw(st.binary(max_size=200))
        suffix, size = draw(st.sampled_from([".png", ".jpg", ".bmp", ".tif", ".ppm"])), None
    if draw(st.booleans()) and data:  # truncate or flip a byte: the reader sees a broken file
        cut = draw(st.integers(0, len(data)))
        data = data[:cut] + bytes([draw(st.integers(0, 255))]) + data[cut + 1 :]
        size = None
    if size is not None and 0 in size:
        size = None
    return suffix, data, size


def check_image_header(suffix: str, data: bytes, declared: tuple[int, int] | None) -> None:
    """``header_size`` never raises, returns positive ints, and the declared size when the
    file is intact."""
    from streams.image_header import header_size

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"i{suffix}"
        path.write_bytes(data)
        got = header_size(path)
    if got is not None and not (isinstance(got[0], int) and got[0] > 0 and got[1] > 0):
        raise ContractBroken(f"header_size returned {got!r}")
    if declared is not None and got != declared:
        raise ContractBroken(f"header_size {got} != declared {declared}")


def check_image_folder(files: list[tuple[str, bytes, Any]]) -> None:
    """An image folder of hostile files: ``SourceError`` (one line) or frames all of the
    stream's size within ``FOLDER_MAX_PIXELS``, every file yielded or counted once."""
    from streams.sources import ImageFolderSource, SourceError

    with tempfile.TemporaryDirectory() as tmp:
        for k, (suffix, data, _) in enumerate(files):
            (Path(tmp) / f"{k:03d}{suffix}").write_bytes(data)
        try:
            src = ImageFolderSource(tmp, max_pixels=FOLDER_MAX_PIXELS)
        except SourceError as exc:
            _one_line(exc)
            return
        if src.width * src.height > FOLDER_MAX_PIXELS:
            raise ContractBroken(f"stream size {src.width}x{src.height} over the limit")
        frames = list(src)
    for f in frames:
        if f.image.shape[:2] != (src.height, src.width):
            raise ContractBroken(f"frame {f.index} is {f.image.shape}, not the stream's size")
    if src.stats["frames"] + src.stats["corrupt"] != len(files):
        raise ContractBroken(f"{len(files)} files but counts {src.stats}")


# -- precomputed detections ---------------------------------------------------------------------
# strategies built once (building them inside a composite on every draw is most of the cost)
_MASK_SIZE = st.one_of(
    st.just([FRAME_H, FRAME_W]),
    st.lists(st.one_of(st.integers(0, 40), HOSTILE_INTS), min_size=0, max_size=3),
    st.just([100000, 100000]),
    ANY_SCALAR,
)
_MASK_COUNTS = st.one_of(
    st.just([FRAME_H * FRAME_W]),
    st.lists(st.one_of(st.integers(0, 3000), HOSTILE_INTS), max_size=6),
    st.text(alphabet="0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcd", max_size=20),
    ANY_SCALAR,
)
_MASK_X = st.one_of(st.integers(-5, 60), HOSTILE_INTS)
_MASK_Y = st.one_of(st.integers(-5, 40), HOSTILE_INTS)
_COORD = st.one_of(st.floats(-10, 80), HOSTILE_FLOATS, HOSTILE_INTS, st.text(max_size=3))
_BBOX = st.one_of(
    st.lists(st.floats(-10, 80), min_size=4, max_size=4),
    st.lists(_COORD, min_size=0, max_size=5),
    ANY_SCALAR,
)
_CLASS_ID = st.one_of(st.integers(0, 3), HOSTILE_INTS, ANY_SCALAR)
_SCORE = st.one_of(st.floats(0, 1), HOSTILE_FLOATS, ANY_SCALAR)
_LABEL = st.one_of(st.just("person"), ANY_SCALAR)


@st.composite
def masks(draw: st.DrawFn) -> Any:
    mask: dict[str, Any] = {"size": draw(_MASK_SIZE), "counts": draw(_MASK_COUNTS)}
    if draw(st.booleans()):
        mask["x"], mask["y"] = draw(_MASK_X), draw(_MASK_Y)
    return mask if draw(st.integers(0, 5)) else draw(ANY_SCALAR)


_MASKS = masks()


@st.composite
def instances(draw: st.DrawFn) -> Any:
    inst: dict[str, Any] = {
        "class_id": draw(_CLASS_ID),
        "score": draw(_SCORE),
        "bbox": draw(_BBOX),
        "label": draw(_LABEL),
    }
    if draw(st.booleans()):
        inst["mask"] = draw(_MASKS)
    for key in draw(st.lists(st.sampled_from(list(inst)), max_size=2)):
        inst.pop(key, None)
    return draw(ANY_SCALAR) if draw(st.integers(0, 19)) == 0 else inst


_INSTANCES = st.lists(instances(), max_size=4)


@st.composite
def jsonl_files(draw: st.DrawFn) -> list[str]:
    """Lines of a precomputed JSONL file: records (mostly in frame order) and garbage."""
    n = draw(st.integers(0, 6))
    frames = sorted(draw(st.lists(st.integers(0, 8), min_size=n, max_size=n)))
    if draw(st.integers(0, 4)) == 0:
        frames = draw(st.permutations(frames))
    lines = []
    for frame in frames:
        rec: dict[str, Any] = {
            "schema": draw(st.sampled_from(["vis.frame/1", "vis.frame/2", "vis.frame/9"])),
            "stream_id": "s",
            "frame_index": draw(st.one_of(st.just(frame), ANY_SCALAR))
            if draw(st.integers(0, 9)) == 0
            else frame,
            "timestamp_ms": draw(st.one_of(st.just(0.0), HOSTILE_FLOATS)),
            "keyframe": True,
            "width": draw(st.one_of(st.just(FRAME_W), HOSTILE_INTS, ANY_SCALAR))
            if draw(st.integers(0, 5)) == 0
            else FRAME_W,
            "height": FRAME_H
            if draw(st.integers(0, 5))
            else draw(st.one_of(st.just(100000), HOSTILE_INTS)),
            "instances": draw(_INSTANCES),
        }
        if draw(st.integers(0, 19)) == 0:
            rec["instances"] = [rec["instances"][0]] * 1001 if rec["instances"] else "x"
        text = json.dumps(rec, allow_nan=True)
        lines.append(text)
    for _ in range(draw(st.integers(0, 2))):
        pos = draw(st.integers(0, len(lines)))
        junk = draw(st.one_of(st.text(max_size=40), st.just("[" * 5000), st.just("{}")))
        lines.insert(pos, junk.replace("\n", " "))
    return lines


@st.composite
def det_txt_files(draw: st.DrawFn) -> list[str]:
    """Rows of a MOTChallenge det.txt: mostly sorted frames, hostile numbers and garbage."""
    n = draw(st.integers(0, 8))
    frames = sorted(draw(st.lists(st.integers(1, 6), min_size=n, max_size=n)))
    if draw(st.integers(0, 4)) == 0:
        frames = draw(st.permutations(frames))
    field = st.one_of(
        st.floats(-20, 80).map(lambda v: f"{v:.2f}"),
        HOSTILE_FLOATS.map(repr),
        HOSTILE_INTS.map(str),
        st.sampled_from(["nan", "inf", "-inf", "1e30", "60000", "", "x", "1e999"]),
    )
    rows = []
    for frame in frames:
        head = str(frame) if draw(st.integers(0, 9)) else draw(field)
        rest = draw(st.lists(field, min_size=0, max_size=9))
        rows.append(",".join([head, "-1", *rest]))
    if draw(st.integers(0, 19)) == 0:
        rows = ["1,-1,1,1,5,5,0.9"] * 1001 + rows
    return rows


def check_precomputed(lines: list[str], *, mot: bool, model_labels: bool) -> None:
    """``PrecomputedDetector`` over a generated file: only ``PrecomputedError`` (one line),
    and every frame's detections within the limits."""
    from vis.detection.detector import HistogramEmbedder
    from vis.detection.precomputed import MAX_INSTANCES, PrecomputedDetector, PrecomputedError

    image = np.random.default_rng(0).integers(0, 255, (FRAME_H, FRAME_W, 3), dtype=np.uint8)
    labels = ["__background__", "person", "car"] if model_labels else None
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / ("det.txt" if mot else "d.jsonl")
        path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        try:
            det = PrecomputedDetector(path=path, embedder=HistogramEmbedder(), labels=labels)
        except PrecomputedError as exc:
            _one_line(exc)
            return
        if len(det.labels) > 10001:
            raise ContractBroken(f"{len(det.labels)} labels read from the file")
        try:
            for frame in range(10):
                d = det.detect_frame(frame, image)
                _check_detections(d, len(det.labels), det.dim, MAX_INSTANCES)
        except PrecomputedError as exc:
            _one_line(exc)
        finally:
            det.close()


def _check_detections(d: Any, n_labels: int, dim: int, max_instances: int) -> None:
    n = len(d)
    if n > max_instances:
        raise ContractBroken(f"{n} detections in a frame")
    if d.xyxy.shape != (n, 4) or not np.isfinite(d.xyxy).all():
        raise ContractBroken(f"boxes {d.xyxy!r}")
    if n and not (0 <= d.class_ids.min() and d.class_ids.max() < n_labels):
        raise ContractBroken(f"class ids {d.class_ids} outside {n_labels} labels")
    if d.embeddings.shape != (n, dim) or not np.isfinite(d.embeddings).all():
        raise ContractBroken(f"embeddings {d.embeddings.shape}")
    for m in d.masks:
        if tuple(m.image_size) != (FRAME_H, FRAME_W):
            raise ContractBroken(f"a mask of a {m.image_size} frame")
    if n and not np.isfinite(d.scores).all():
        raise ContractBroken(f"scores {d.scores}")


# -- configuration ------------------------------------------------------------------------------
def _config_keys() -> list[tuple[tuple[str, ...], Any]]:
    """(key path, annotated type) of every configuration key."""
    import dataclasses
    import typing

    from vis_pipeline.config import PipelineConfig

    keys: list[tuple[tuple[str, ...], Any]] = []

    def walk(cls: type, prefix: tuple[str, ...]) -> None:
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if dataclasses.is_dataclass(f.default):
                walk(type(f.default), (*prefix, f.name))
            else:
                keys.append(((*prefix, f.name), hints[f.name]))

    walk(PipelineConfig, ())
    return keys


def _value_for(tp: Any) -> st.SearchStrategy:
    """Mostly hostile values of the key's own type (so that range checks are reached)."""
    import typing

    args = set(typing.get_args(tp)) | {tp}
    if int in args:
        return st.one_of(HOSTILE_INTS, HOSTILE_INTS, ANY_SCALAR)
    if float in args:
        nonfinite = st.sampled_from([math.nan, math.inf, -math.inf])
        return st.one_of(nonfinite, HOSTILE_FLOATS, HOSTILE_INTS, ANY_SCALAR)
    return ANY_SCALAR


_KEYS = _config_keys()
_KEY_LISTS = st.lists(st.sampled_from(_KEYS), min_size=1, max_size=2)
_VALUES = {key: _value_for(tp) for key, tp in _KEYS}


@st.composite
def config_mappings(draw: st.DrawFn) -> dict[str, Any]:
    """A configuration mapping: a few known keys (and sometimes an unknown one) set to
    hostile values, mostly of the key's own type."""
    data: dict[str, Any] = {}
    for key, _tp in draw(_KEY_LISTS):
        value = draw(_VALUES[key])
        cur = data
        for part in key[:-1]:
            cur = cur.setdefault(part, {})
        cur[key[-1]] = value
    if draw(st.integers(0, 9)) == 0:
        data[draw(st.text(max_size=8))] = draw(ANY_SCALAR)
    return data


def check_config(data: dict[str, Any]) -> None:
    """``from_mapping`` returns a config whose every number is finite, or raises
    ``ConfigError`` in one line; nothing else."""
    import dataclasses

    from vis.config import ConfigError, from_mapping
    from vis_pipeline.config import PipelineConfig

    try:
        cfg = from_mapping(PipelineConfig, data)
    except ConfigError as exc:
        _one_line(exc)
        return

    def walk(obj: Any, path: str) -> None:
        if dataclasses.is_dataclass(obj):
            for f in dataclasses.fields(obj):
                walk(getattr(obj, f.name), f"{path}.{f.name}")
        elif isinstance(obj, float) and not math.isfinite(obj):
            raise ContractBroken(f"{path}={obj} accepted")

    walk(cfg, "config")
    if not (1 <= cfg.detector.threads <= 256 and 1 <= cfg.detector.batch_size <= 64):
        raise ContractBroken(f"detector {cfg.detector} accepted")
    if not 1 <= cfg.detector.max_detections <= 1000:
        raise ContractBroken(f"detector.max_detections={cfg.detector.max_detections}")


set_overrides = st.tuples(
    st.sampled_from([".".join(k) for k, _ in _KEYS] + ["x.y", "", "detector"]),
    st.one_of(
        st.text(max_size=30),
        HOSTILE_FLOATS.map(lambda v: {math.inf: ".inf", -math.inf: "-.inf"}.get(v, repr(v))),
        HOSTILE_INTS.map(str),
        st.sampled_from(
            [".nan", "9" * 5000, "[", "{a: [", "!!python/object:os.system x", "&a [*a]"]
        ),
    ),
).map(lambda kv: f"{kv[0]}={kv[1]}")


def check_override(item: str) -> None:
    """``load_config(None, [item])``: a config or one-line ``ConfigError``."""
    from vis.config import ConfigError
    from vis_pipeline.config import load_config

    try:
        load_config(None, [item])
    except ConfigError as exc:
        _one_line(exc)


# -- records of the other formats (their readers' one validation each) -------------------------
_FIELD_NAMES = [
    "schema", "stream_id", "frame_index", "timestamp_ms", "keyframe", "width", "height",
    "instances", "class_id", "bbox", "mask", "score", "track_id", "label", "event", "line",
    "zone", "direction", "count", "dwell_ms", "reason", "track_ids", "occupancy", "job_id",
    "source", "overrides", "submitted_at", "run", "decisions", "reviewer", "created", "action",
    "frames", "propagated_from", "mask_confidence", "agreement", "x", "y", "size", "counts",
]  # fmt: skip
_SCHEMAS = st.sampled_from(
    ["vis.frame/1", "vis.frame/2", "vis.event/1", "vis.job/1", "vis.corrections/1", "x"]
)
_LEAVES = st.one_of(ANY_SCALAR, _SCHEMAS)
_JSON_VALUES = st.one_of(
    _LEAVES,
    st.lists(_LEAVES, max_size=4),
    st.dictionaries(st.sampled_from(_FIELD_NAMES), _LEAVES, max_size=5),
    st.lists(st.dictionaries(st.sampled_from(_FIELD_NAMES), _LEAVES, max_size=5), max_size=3),
)
_DOCS = st.dictionaries(st.sampled_from(_FIELD_NAMES), _JSON_VALUES, max_size=10)


@st.composite
def json_documents(draw: st.DrawFn, schema: str) -> Any:
    """A JSON document claiming ``schema`` (mostly) with known field names, hostile values."""
    doc = draw(_DOCS)
    if draw(st.integers(0, 9)):
        doc["schema"] = schema
    return doc


def extra_readers() -> dict[str, tuple[st.SearchStrategy, Any]]:
    """The record readers of the other formats that exist in this tree, each with its one
    documented exception: vis.frame (``SchemaError``), vis.event (``EventError``), vis.job
    (``JobError``), vis.corrections (``CorrectionsError``), checkpoints (``ResumeError``)."""
    out: dict[str, tuple[st.SearchStrategy, Any]] = {}

    def reader(name: str, schema: str, call: Any, error: type[BaseException]) -> None:
        def check(doc: Any) -> None:
            try:
                call(doc)
            except error as exc:
                _one_line(exc)

        out[name] = (json_documents(schema), check)

    try:
        from vis.schema import SchemaError, decode_record

        reader("vis.frame record (vis.schema.decode_record)", "vis.frame/2", decode_record,
               SchemaError)  # fmt: skip
    except ImportError:
        pass
    try:
        from streams.kafka.events import EventError, parse_event

        reader("vis.event record (streams.kafka.events.parse_event)", "vis.event/1",
               lambda d: parse_event(json.dumps(d)), EventError)  # fmt: skip
    except ImportError:
        pass
    try:
        from vis_pipeline.worker.jobs import JobError, validate_job

        reader("vis.job record (vis_pipeline.worker.jobs.validate_job)", "vis.job/1",
               validate_job, JobError)  # fmt: skip
    except ImportError:
        pass
    try:
        from streams.review.corrections import CorrectionsError, parse_corrections

        reader("vis.corrections document (streams.review.corrections.parse_corrections)",
               "vis.corrections/1", parse_corrections, CorrectionsError)  # fmt: skip
    except ImportError:
        pass
    try:
        from vis_pipeline.resume import ResumeError, check_checkpoint, load_npz

        def checkpoint(document: Any) -> None:
            try:
                index = check_checkpoint(document, "cam", "cam.ckpt.json")
            except ResumeError as exc:
                _one_line(exc)
                return
            if not 0 <= index <= 2**53:
                raise ContractBroken(f"checkpoint accepted with frame_index {index}")

        def arrays(data: bytes) -> None:
            try:
                loaded = load_npz(data, "cam.ckpt-3.npz")
            except ResumeError as exc:
                _one_line(exc)
                return
            if sum(a.nbytes for a in loaded.values()) > len(data) * 1100:
                raise ContractBroken("arrays far larger than their file were loaded")

        out["checkpoint document (vis_pipeline.resume.check_checkpoint)"] = (
            checkpoint_documents(),
            checkpoint,
        )
        out["checkpoint arrays (vis_pipeline.resume.load_npz)"] = (npz_files(), arrays)
    except ImportError:
        pass
    return out


_CHECKPOINT_VALUES = {
    "checkpoint_format": st.one_of(st.just(1), HOSTILE_INTS, ANY_SCALAR),
    "stream_id": st.one_of(st.just("cam"), ANY_SCALAR),
    "frame_index": st.one_of(st.integers(-3, 400), HOSTILE_INTS, ANY_SCALAR),
    "state": st.one_of(st.just({"arrays": "cam.ckpt-3.npz"}), _JSON_VALUES),
    "config": st.one_of(st.just("0123456789abcdef"), ANY_SCALAR),
}


@st.composite
def checkpoint_documents(draw: st.DrawFn) -> Any:
    """A checkpoint document: each field valid, hostile or missing, or not a mapping at all."""
    if not draw(st.integers(0, 19)):
        return draw(_JSON_VALUES)
    doc = {}
    for key, values in _CHECKPOINT_VALUES.items():
        if draw(st.integers(0, 5)):
            doc[key] = draw(values)
    return doc


@st.composite
def npz_files(draw: st.DrawFn) -> bytes:
    """An ``.npz`` of small arrays, then perhaps a forged ``.npy`` header (a huge declared
    shape), a pickled object array, flipped bytes or a cut."""
    import io
    import zipfile

    import numpy as np

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for k in range(draw(st.integers(0, 3))):
            kind = draw(st.integers(0, 3))
            header = io.BytesIO()
            if kind == 0:  # forged: declares far more than it holds
                shape = tuple(draw(st.lists(st.integers(0, 2**40), min_size=1, max_size=3)))
                np.lib.format.write_array_header_1_0(
                    header, {"descr": "<f8", "fortran_order": False, "shape": shape}
                )
                archive.writestr(f"a{k}.npy", header.getvalue() + bytes(draw(st.integers(0, 64))))
            elif kind == 1:  # objects: a pickle
                array = np.array([draw(ANY_SCALAR), None], dtype=object)
                np.lib.format.write_array(header, array, allow_pickle=True)
                archive.writestr(f"a{k}.npy", header.getvalue())
            else:
                shape = tuple(draw(st.lists(st.integers(0, 30), max_size=3)))
                np.lib.format.write_array(header, np.zeros(shape, np.uint8))
                archive.writestr(f"a{k}.npy", header.getvalue())
    data = bytearray(buf.getvalue())
    for _ in range(draw(st.integers(0, 3))):
        if data:
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    return bytes(data)
