"""Resumable offline jobs: everything about checkpoints, finished markers and resuming.

Contract: a stream's checkpoint is its ``StreamProcessor.state_dict()`` stored as data, in
``<output>/.state``: ``<stream>.ckpt.json`` (the state with every numpy array replaced by a
reference ``{"__array__": "a12"}``) and the ``.npz`` file it names (the arrays). Both are
written atomically (temp file + rename; the JSON, written last, is the commit point) and
read with ``json`` and ``np.load(allow_pickle=False)`` only, so loading never runs code: a
pickle anywhere (an old ``.ckpt`` file, object arrays) is refused with one line naming the
file and ``--restart``. The writer saves a checkpoint only after every result up to its
frame is in the sinks, so a job killed at any moment (SIGKILL included) resumes from the
last one: ``prepare_jsonl`` cuts the JSONL back to that frame and ``OverlayRedraw`` redraws
the overlay video of the kept frames. Checkpoints and ``.done.json`` markers record a digest
of the settings that can change a stream's results; another digest is refused, not mixed.
A checkpoint is checked before anything is used or changed (``check_checkpoint``, shared with
the workers' Kafka store): its format, a frame index in range and, for a folder, within the
results the JSONL holds, array references that exist, an arrays file named as the writer
names it inside ``.state``, plain-data arrays of bounded size; anything else is refused
(``ResumeError``: one line naming the file and ``--restart``). Each stream's source is
recorded (``<stream>.source.json``: stream id, path, ``source_identity``), so another source
or another stream id that sanitises to the same file name is refused, not taken as done.
With the JSONL sink, a checkpoint needs the JSONL's lines up to its frame in order, one per
frame its state processed, and a ``.done.json`` marker records the JSONL's lines and bytes,
checked before the stream is skipped as complete. A restored state's arrays are checked
against the frame (``_sizes_check`` before loading, ``check_state_arrays`` in ``restore``).
A ``.state`` that is not a usable folder is refused in one line naming the output folder.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import logging
import os
import re
import zipfile
from pathlib import Path
from collections.abc import Callable
from typing import Any, Protocol, TextIO

import numpy as np

from streams.sinks import Sink, jsonl_path, safe_name
from vis.config import to_mapping
from vis.pipeline import STATE_FORMAT, StreamProcessor
from vis.schema import decode_record
from vis.tracking.repair import RepairConfig
from vis_pipeline.config import PipelineConfig

log = logging.getLogger(__name__)

#: top-level settings that cannot change a stream's results (left out of the digest)
SETTINGS_THAT_CANNOT_CHANGE_RESULTS = (
    "source",
    "sources",
    "stream_id",
    "output",
    "resume",
    "queue_size",
    "parallel_streams",
    "checkpoint_every",
    "live",
    "sinks",
    "metrics",
    # limits decide which inputs are refused, not the results of the frames processed; an
    # output made before a limit existed resumes under it
    "frame",
)
#: keys added to a section after output folders were made, each with the default that gives
#: the results from before it: left out of the digest at that default, so those folders resume
ADDED_AT_DEFAULT = {
    "detector": {
        "nms": "hard",
        "soft_nms_sigma": 0.5,
        "soft_nms_min_score": None,
        "tta": None,
        "tiles": None,
    },
    "keyframes": {
        "interaction_margin": 0.25,
        "interaction_lookahead": 2,
        "interaction_at": "begins",
    },
    "propagation": {"finest_scale": "auto", "boxes": "interpolate"},
    # a section added whole: left out while every key is at its default. Identity repair is on
    # by default: an output folder made before it resumes with repaired ids from then on
    "repair": dataclasses.asdict(RepairConfig()),
}
ADDED_SECTIONS = ("repair",)
#: version of the checkpoint files (the JSON + npz layout, not the tracker state inside)
CHECKPOINT_FORMAT = 1
_ARRAY, _SCALAR = "__array__", "__scalar__"
#: limits of a checkpoint (docs/limits.md)
MAX_CHECKPOINT_FRAME = 2**53
MAX_CHECKPOINT_JSON_BYTES = 64 << 20  # the JSON document (its arrays are in the .npz)
MAX_STATE_BYTES = 1 << 30  # the arrays, uncompressed
#: a restored state's arrays, against the stream's frame (W x H): each at most a float32 frame
#: (or ``MIN_ARRAY_BYTES``), all together at most ``MAX_STATE_FRAMES`` such frames
MAX_STATE_FRAMES = 64
MIN_ARRAY_BYTES = 1 << 16
_INT64 = 2**63
#: bytes of a source file hashed for its fingerprint (at its start and at its end)
FINGERPRINT_BYTES = 1 << 20


class ResumeError(RuntimeError):
    """The output folder holds state that cannot be resumed with this configuration."""


def config_digest(cfg: PipelineConfig) -> str:
    """Digest of the settings that can change a stream's results (and the state format)."""
    settings = to_mapping(cfg)
    for key in SETTINGS_THAT_CANNOT_CHANGE_RESULTS:
        settings.pop(key, None)
    for section, added in ADDED_AT_DEFAULT.items():
        part = settings.get(section)
        for key, default in added.items():
            if isinstance(part, dict) and key in part and part[key] == default:
                del part[key]
        if part == {} and section in ADDED_SECTIONS:
            del settings[section]
    settings["state_format"] = STATE_FORMAT  # checkpoints of another tracker version are refused
    text = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:16]


# -- state as data ------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class EncodedState:
    """A state dict split into a JSON document and the arrays it references by name."""

    document: Any
    arrays: dict[str, np.ndarray]


def encode_state(state: Any) -> EncodedState:
    """Nested dicts/lists of JSON scalars, None and numpy arrays/scalars -> ``EncodedState``.

    The arrays are copied: the caller may go on changing its own.

    Raises:
        TypeError: a value that is not data (an object, a non-string key, an object array).
    """
    arrays: dict[str, np.ndarray] = {}

    def stash(tag: str, value: np.ndarray) -> dict[str, str]:
        if value.dtype.hasobject:
            raise TypeError("object arrays are not data: they would need pickle")
        name = f"a{len(arrays)}"
        arrays[name] = np.array(value, copy=True)
        return {tag: name}

    def encode(value: Any) -> Any:
        if isinstance(value, np.ndarray):
            return stash(_ARRAY, value)
        if isinstance(value, np.generic):  # keeps the dtype (np.float32 stays np.float32)
            return stash(_SCALAR, np.asarray(value))
        if isinstance(value, dict):
            if not all(isinstance(k, str) for k in value):
                raise TypeError(f"state keys must be strings, got {list(value)[:5]}")
            if set(value) & {_ARRAY, _SCALAR}:
                raise TypeError(f"state keys {_ARRAY}/{_SCALAR} are reserved")
            return {k: encode(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [encode(v) for v in value]
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        raise TypeError(f"{type(value).__name__} is not data (state holds {value!r:.60})")

    return EncodedState(encode(state), arrays)


def decode_state(document: Any, arrays: dict[str, np.ndarray]) -> Any:
    """Inverse of ``encode_state``.

    Raises:
        ValueError: a reference to an array that is not there, or an integer that does not
            fit in 64 bits (what a state holds is checked, never trusted).
    """
    if isinstance(document, dict):
        if set(document) in ({_ARRAY}, {_SCALAR}):
            ((tag, name),) = document.items()
            if not isinstance(name, str) or name not in arrays:
                raise ValueError(f"{tag} {str(name)[:40]!r} names no array of the checkpoint")
            return arrays[name] if tag == _ARRAY else arrays[name][()]
        return {k: decode_state(v, arrays) for k, v in document.items()}
    if isinstance(document, list):
        return [decode_state(v, arrays) for v in document]
    if isinstance(document, int) and not isinstance(document, bool):
        if not -_INT64 <= document < _INT64:
            raise ValueError("an integer of the state does not fit in 64 bits")
    return document


def restore_state(document: dict, arrays: dict[str, np.ndarray], where: str, fix: str) -> Any:
    """``decode_state`` of a checked checkpoint document's ``state``, refused in one line.

    Raises:
        ResumeError: ``checkpoint <where> cannot be restored (<why>): <fix>``.
    """
    try:
        return decode_state(document["state"], arrays)
    except (ValueError, RecursionError) as exc:
        raise ResumeError(f"checkpoint {where} cannot be restored ({exc}): {fix}") from None


def arrays_name(stream_id: str, frame_index: int) -> str:
    """The name of a folder checkpoint's arrays file (inside ``.state``)."""
    return f"{safe_name(stream_id)}.ckpt-{frame_index}.npz"


def check_checkpoint(document: Any, stream_id: str, where: str) -> int:
    """The one check of a checkpoint document (folder or Kafka), before anything of it is
    used: format, stream, ``frame_index`` in ``[0, MAX_CHECKPOINT_FRAME]``, a ``state``
    mapping. Returns the frame index.

    Raises:
        ResumeError: one line naming ``where`` and what to do.
    """

    def refuse(why: str) -> ResumeError:
        return ResumeError(f"checkpoint {where} {why}: pass --restart to redo the stream")

    if not isinstance(document, dict) or not isinstance(document.get("state"), dict):
        raise refuse("has no state")
    if document.get("checkpoint_format") != CHECKPOINT_FORMAT:
        raise refuse(f"is not of checkpoint format {CHECKPOINT_FORMAT}")
    if document.get("stream_id") != stream_id:
        raise refuse(f"belongs to stream {str(document.get('stream_id'))[:80]!r}")
    index = document.get("frame_index")
    if (
        not isinstance(index, int)
        or isinstance(index, bool)
        or not 0 <= index <= MAX_CHECKPOINT_FRAME
    ):
        raise refuse(f"has frame_index {repr(index)[:40]}, not a frame index")
    return index


def load_npz(
    data: Path | bytes, where: str, sizes: Callable[[dict[str, int]], None] | None = None
) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` file or value, refusing pickled content and archives whose
    arrays hold more than ``MAX_STATE_BYTES`` (checked before any is read). ``sizes``, given,
    gets the bytes each array declares (by member name) before any is read and raises
    ``ValueError`` to refuse them.

    Raises:
        ResumeError: naming ``where`` and ``--restart``.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data) if isinstance(data, bytes) else data) as archive:
            declared = {
                info.filename: _declared_bytes(archive, info) for info in archive.infolist()
            }
        total = sum(declared.values())
        if sizes is not None:
            sizes(declared)
        if total > MAX_STATE_BYTES:
            raise ValueError(f"{total} bytes of arrays, more than {MAX_STATE_BYTES}")
        loaded = np.load(io.BytesIO(data) if isinstance(data, bytes) else data, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise ValueError("not an npz archive")
        with loaded:
            return {name: loaded[name] for name in loaded.files}
    except Exception as exc:  # noqa: BLE001 - untrusted bytes: whatever breaks, it is refused
        # zipfile and numpy name many failures (a corrupt directory, an unsupported zip
        # version, a bad header); the message quotes the file's bytes, so it is cut to one line
        why = " ".join(f"{type(exc).__name__}: {exc}".split())[:160]
        raise ResumeError(
            f"checkpoint arrays {where} cannot be loaded as plain data ({why}): "
            "pass --restart to redo the stream"
        ) from None


def _declared_bytes(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> int:
    """Bytes of the array an ``.npz`` member declares in its ``.npy`` header (what loading it
    would allocate), read before any of it is: an array larger than the member's own data
    is refused, so a forged header cannot make a small file allocate a huge array.

    Raises:
        ValueError: the member is not a plain ``.npy`` array or declares more than it holds.
    """
    with archive.open(info) as member:
        version = np.lib.format.read_magic(member)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(member)
        elif version == (2, 0):
            shape, _, dtype = np.lib.format.read_array_header_2_0(member)
        else:
            raise ValueError(f"{info.filename}: .npy version {version}")
    if dtype.hasobject:
        raise ValueError(f"{info.filename}: objects, not plain data")
    declared = dtype.itemsize
    for n in shape:
        declared *= int(n)
    if declared > info.file_size:
        raise ValueError(f"{info.filename} declares {declared} bytes and holds {info.file_size}")
    return declared


# -- what a stream was made from ------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class SourceIdentity:
    """What a stream's output was made from.

    Attributes:
        path: the source, absolute (informative: a moved file is the same source).
        fingerprint: ``file:<bytes>:<sha256 of the first and last MiB, 16 hex>`` for a
            file, ``folder:<files>:<sha256 of the names and sizes, 16 hex>`` for a folder.
    """

    path: str
    fingerprint: str


def source_identity(uri: str) -> SourceIdentity | None:
    """The identity of a file or folder source (None for a live source or a missing path,
    which the source itself reports). Reads at most 2 MiB: cheap on any file."""
    path = Path(uri)
    try:
        if path.is_file():
            size = path.stat().st_size
            digest = hashlib.sha256()
            with open(path, "rb") as fh:
                digest.update(fh.read(FINGERPRINT_BYTES))
                if size > 2 * FINGERPRINT_BYTES:
                    fh.seek(size - FINGERPRINT_BYTES)
                digest.update(fh.read(FINGERPRINT_BYTES))
            return SourceIdentity(str(path.resolve()), f"file:{size}:{digest.hexdigest()[:16]}")
        if path.is_dir():
            digest = hashlib.sha256()
            files = sorted(p for p in path.iterdir() if p.is_file())
            for item in files:
                digest.update(f"{item.name}\0{item.stat().st_size}\n".encode("utf-8", "replace"))
            fingerprint = f"folder:{len(files)}:{digest.hexdigest()[:16]}"
            return SourceIdentity(str(path.resolve()), fingerprint)
    except OSError:
        return None
    return None


_FRAME_INDEX = re.compile(rb'"frame_index":(\d+)[,}]')


def check_jsonl_frames(path: Path, frame_index: int, frames: int | None, where: str) -> None:
    """Check that the JSONL file ``path`` holds the results a checkpoint after ``frame_index``
    promises: complete lines (read as ``cut_jsonl`` reads) with strictly increasing frame
    indices up to one at or past ``frame_index`` and, given ``frames`` (the frames the
    checkpointed processor has processed), exactly that many lines up to ``frame_index``
    (a video's or a folder's skipped frames have no line; a hole or a disorder is refused).

    Raises:
        ResumeError: one line naming ``path``, ``where`` and ``--restart``.
    """

    def refuse(why: str) -> ResumeError:
        return ResumeError(
            f"checkpoint {where} is after frame {frame_index}, but {path} {why}: "
            "pass --restart to redo the stream"
        )

    lines, last, reached = 0, -1, False
    if path.is_file():
        with open(path, "rb") as fh:
            for number, line in enumerate(fh, 1):
                if not line.endswith(b"\n"):
                    break  # torn last line: cut when resuming
                found = _FRAME_INDEX.search(line, 0, 4096)  # the record's head
                try:
                    index = int(found.group(1)) if found else json.loads(line)["frame_index"]
                except (ValueError, KeyError, TypeError, RecursionError):
                    break  # what cut_jsonl stops at
                if not isinstance(index, int) or isinstance(index, bool):
                    break
                if index <= last:
                    raise refuse(f"has frame {index} after frame {last} (line {number})")
                if index > frame_index:
                    reached = True
                    break
                lines, last = lines + 1, index
                if index == frame_index:
                    reached = True
                    break
    if not reached:
        raise refuse("does not hold the results up to it")
    if frames is not None and lines != frames:
        raise refuse(
            f"holds {lines} results up to it, not the {frames} frames processed (lines removed?)"
        )


def _count_lines(path: Path) -> int:
    """Newlines of a file, read in 1 MiB blocks."""
    count = 0
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            count += block.count(b"\n")
    return count


# -- files ----------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Checkpoint:
    """A stream's saved state: resume after ``frame_index``."""

    frame_index: int
    state: dict


@dataclasses.dataclass(frozen=True)
class ResumePoint:
    """Where a stream starts: ``complete`` (skip it), or after ``frame_index`` (-1: fresh)."""

    complete: bool = False
    frame_index: int = -1
    state: dict | None = None


def _write_atomically(path: Path, write: Any) -> None:
    """``write(binary file)`` into ``path.tmp``, fsync, then rename over ``path``."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)  # a failed write (disk full) leaves no temporary


class CheckpointStore(Protocol):
    """Where a run keeps checkpoints and finished markers (``ResumeStore``: a folder; the
    workers' Kafka topic: ``vis_pipeline/worker/checkpoints.py``)."""

    def save(self, stream_id: str, frame_index: int, state: EncodedState) -> None: ...

    def resume_point(self, stream_id: str, source: SourceIdentity | None = None) -> ResumePoint: ...

    def mark_done(self, stream_id: str, summary: dict) -> None: ...


class ResumeStore:
    """Checkpoints and finished markers of the streams of one output folder.

    Args:
        output_dir: the run's ``output``; state lives in ``<output_dir>/.state``.
        digest: ``config_digest`` of the run.
        jsonl: the run writes ``<output>/<stream>.jsonl``: a checkpoint must lie within
            the results it holds.
    """

    def __init__(self, output_dir: str | Path, digest: str, *, jsonl: bool = False) -> None:
        self.output_dir = Path(output_dir)
        self.dir = self.output_dir / ".state"
        self.digest = digest
        self.jsonl = jsonl

    def source_path(self, stream_id: str) -> Path:
        return self.dir / f"{safe_name(stream_id)}.source.json"

    def checkpoint_path(self, stream_id: str) -> Path:
        return self.dir / f"{safe_name(stream_id)}.ckpt.json"

    def done_path(self, stream_id: str) -> Path:
        return self.dir / f"{safe_name(stream_id)}.done.json"

    def _legacy_path(self, stream_id: str) -> Path:
        """Where versions before the data format kept a pickled checkpoint."""
        return self.dir / f"{safe_name(stream_id)}.ckpt"

    def _arrays_files(self, stream_id: str) -> list[Path]:
        return sorted(self.dir.glob(f"{safe_name(stream_id)}.ckpt-*.npz"))

    def save(self, stream_id: str, frame_index: int, state: EncodedState) -> None:
        """Store a stream's state after ``frame_index`` (its results are all delivered)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        arrays_path = self.dir / arrays_name(stream_id, frame_index)
        _write_atomically(arrays_path, lambda fh: np.savez(fh, **state.arrays))
        document = {
            "checkpoint_format": CHECKPOINT_FORMAT,
            "config": self.digest,
            "stream_id": stream_id,
            "frame_index": frame_index,
            "arrays": arrays_path.name,
            "state": state.document,
        }
        text = json.dumps(document, allow_nan=True).encode("utf-8")
        _write_atomically(self.checkpoint_path(stream_id), lambda fh: fh.write(text))
        for old in self._arrays_files(stream_id):
            if old != arrays_path:
                old.unlink(missing_ok=True)

    def resume_point(self, stream_id: str, source: SourceIdentity | None = None) -> ResumePoint:
        """Where ``stream_id`` starts: complete, after its checkpoint, or from the start.
        Given ``source``, the output must have been made from it (a fresh start records it).
        Nothing is changed unless the stream can start.

        Raises:
            ResumeError: state of another configuration, another source or another stream
                id with the same file name, a checkpoint that is not valid, a finished
                stream whose JSONL no longer holds what was delivered, or a ``.state`` that
                is not a usable folder.
        """
        try:
            return self._resume_point(stream_id, source)
        except OSError as exc:
            raise self._unusable(exc) from None

    def _unusable(self, exc: OSError) -> ResumeError:
        """The one line for a ``.state`` that cannot be read or made (a regular file, a
        dangling link, a folder where nothing can be created)."""
        if self.dir.is_symlink() and not self.dir.exists():
            what, fix = "is a link to nothing", f"remove {self.dir} or pass another --output"
        elif self.dir.exists() and not self.dir.is_dir():
            what, fix = "is a file, not a folder", f"remove {self.dir} or pass another --output"
        else:
            what = f"cannot be used ({exc.strerror or type(exc).__name__})"
            fix = "pass another --output, a folder where files can be made"
        return ResumeError(
            f"output folder {self.output_dir}: its resume state folder {self.dir} {what}: {fix}"
        )

    def _resume_point(self, stream_id: str, source: SourceIdentity | None) -> ResumePoint:
        recorded = self._recorded_source(stream_id)
        if recorded is not None and recorded.get("stream_id") != stream_id:
            other = str(recorded.get("stream_id"))[:80]
            raise ResumeError(
                f"stream ids {other!r} and {stream_id!r} both write "
                f"{self.output_dir / safe_name(stream_id)}.*: give one of them another "
                "--stream-id (or pass --restart to replace the other's results)"
            )
        if self.is_done(stream_id):
            self._check_source(stream_id, recorded, source)
            self._check_delivered(stream_id)
            return ResumePoint(complete=True)
        found = self.load(stream_id)
        if found is None:
            if source is not None:
                self._record_source(stream_id, source)
            return ResumePoint()
        self._check_source(stream_id, recorded, source)
        return ResumePoint(frame_index=found.frame_index, state=found.state)

    def _recorded_source(self, stream_id: str) -> dict | None:
        path = self.source_path(stream_id)
        if not path.is_file():
            return None
        try:
            recorded = json.loads(path.read_bytes().decode("utf-8"))
        except (ValueError, RecursionError):
            recorded = None
        if not isinstance(recorded, dict):
            raise ResumeError(
                f"{path} is not a source record of this program: pass --restart to redo the stream"
            )
        return recorded

    def _check_source(
        self, stream_id: str, recorded: dict | None, source: SourceIdentity | None
    ) -> None:
        if source is None or recorded is None:  # older outputs did not record it
            return
        if recorded.get("fingerprint") != source.fingerprint:
            if recorded.get("path") == source.path:
                raise ResumeError(
                    f"{self.output_dir} holds results of stream {stream_id!r} made from "
                    f"{source.path!r}, whose content has changed since: pass --restart to "
                    "redo it from the source as it is now"
                )
            raise ResumeError(
                f"{self.output_dir} holds results of stream {stream_id!r} made from "
                f"{str(recorded.get('path'))[:200]!r}, not {source.path!r}: pass --restart to "
                "redo it from this source, or another --stream-id"
            )

    def _record_source(self, stream_id: str, source: SourceIdentity) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        doc = {"stream_id": stream_id, **dataclasses.asdict(source)}
        text = json.dumps(doc).encode("utf-8")
        _write_atomically(self.source_path(stream_id), lambda fh: fh.write(text))

    def load(self, stream_id: str) -> Checkpoint | None:
        """The stream's checkpoint, or None.

        Raises:
            ResumeError: another configuration, or the files are not plain data.
        """
        path = self.checkpoint_path(stream_id)
        if not path.is_file():
            legacy = self._legacy_path(stream_id)
            if legacy.is_file():
                raise ResumeError(
                    f"checkpoint {legacy} is a pickle (written by an older version) "
                    "and is never loaded: pass --restart to redo the stream"
                )
            return None
        with open(path, "rb") as fh:
            text = fh.read(MAX_CHECKPOINT_JSON_BYTES + 1)
        if len(text) > MAX_CHECKPOINT_JSON_BYTES:
            raise ResumeError(
                f"checkpoint {path} is larger than {MAX_CHECKPOINT_JSON_BYTES} bytes, more than "
                "any state this program writes: pass --restart to redo the stream"
            )
        try:
            document = json.loads(text.decode("utf-8"))
            if not isinstance(document, dict) or "state" not in document:
                raise ValueError("no state")
        except (ValueError, RecursionError):
            raise ResumeError(
                f"checkpoint {path} is not a JSON checkpoint of this program (a "
                "pickle?) and is not loaded: pass --restart to redo the stream"
            ) from None
        if document.get("config") != self.digest:
            raise ResumeError(
                f"{self.dir.parent} holds a partial run of {stream_id} made with a "
                "different config: pass --restart or another --output"
            )
        frame_index = check_checkpoint(document, stream_id, str(path))
        name = arrays_name(stream_id, frame_index)
        if document.get("arrays") != name:
            raise ResumeError(
                f"checkpoint {path} names arrays {str(document.get('arrays'))[:80]!r}, not "
                f"{name!r} in {self.dir}: pass --restart to redo the stream"
            )
        if self.jsonl:
            frames = document["state"].get("frames")
            if frames is not None and (not isinstance(frames, int) or isinstance(frames, bool)):
                raise ResumeError(
                    f"checkpoint {path} has frames {repr(frames)[:40]}, not a count: pass "
                    "--restart to redo the stream"
                )
            check_jsonl_frames(
                jsonl_path(self.output_dir, stream_id), frame_index, frames, str(path)
            )
        arrays = load_npz(self.dir / name, str(self.dir / name), _sizes_check(document["state"]))
        state = restore_state(document, arrays, str(path), "pass --restart to redo the stream")
        return Checkpoint(frame_index, state)

    def mark_done(self, stream_id: str, summary: dict) -> None:
        """Record that the stream is complete (its checkpoint is no longer needed) and, with
        the JSONL sink, what its JSONL holds (``lines``, ``bytes``: checked before the stream
        is skipped as complete)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        marker = {"config": self.digest, **summary}
        jsonl = jsonl_path(self.output_dir, stream_id)
        if self.jsonl and jsonl.is_file():
            marker["jsonl"] = {"lines": _count_lines(jsonl), "bytes": jsonl.stat().st_size}
        text = json.dumps(marker, default=str).encode("utf-8")
        _write_atomically(self.done_path(stream_id), lambda fh: fh.write(text))
        self._remove_checkpoint(stream_id)

    def is_done(self, stream_id: str) -> bool:
        """Whether the stream is complete with this configuration.

        Raises:
            ResumeError: it was completed with another configuration.
        """
        path = self.done_path(stream_id)
        if not path.is_file():
            return False
        try:
            digest = json.loads(path.read_text(encoding="utf-8")).get("config")
        except (ValueError, AttributeError):
            digest = None
        if digest != self.digest:
            raise ResumeError(
                f"{self.dir.parent} holds finished results of {stream_id} made "
                "with a different config: pass --restart or another --output"
            )
        return True

    def _check_delivered(self, stream_id: str) -> None:
        """A finished stream's JSONL still holds what its marker says was delivered (markers
        of older versions, or of a run without the JSONL sink, record nothing to check)."""
        if not self.jsonl:
            return
        try:
            delivered = json.loads(self.done_path(stream_id).read_text(encoding="utf-8"))
            lines, size = delivered["jsonl"]["lines"], delivered["jsonl"]["bytes"]
        except (ValueError, KeyError, TypeError):
            return
        jsonl = jsonl_path(self.output_dir, stream_id)
        if jsonl.is_file():
            held = jsonl.stat().st_size
            if held == size and _count_lines(jsonl) == lines:
                return
            now = f"holds {held} bytes"
        else:
            now = "is missing"
        raise ResumeError(
            f"{jsonl} {now}, but the finished stream {stream_id!r} delivered {lines} lines "
            f"({size} bytes) to it: pass --restart to redo the stream"
        )

    def clear(self, stream_id: str) -> None:
        """Forget the stream's checkpoint, finished marker and source (``--restart``).

        Raises:
            ResumeError: ``.state`` is not a usable folder.
        """
        try:
            self._remove_checkpoint(stream_id)
            self.done_path(stream_id).unlink(missing_ok=True)
            self.source_path(stream_id).unlink(missing_ok=True)
        except OSError as exc:
            raise self._unusable(exc) from None

    def _remove_checkpoint(self, stream_id: str) -> None:
        self.checkpoint_path(stream_id).unlink(missing_ok=True)
        self._legacy_path(stream_id).unlink(missing_ok=True)
        for path in self._arrays_files(stream_id):
            path.unlink(missing_ok=True)


def check_file_names(stream_ids: list[str]) -> None:
    """``ResumeError`` if two of a run's stream ids name the same files (``cam/a/b`` and
    ``cam_a_b`` both write ``cam_a_b.*``): one would overwrite the other's results."""
    seen: dict[str, str] = {}
    for stream_id in stream_ids:
        other = seen.setdefault(safe_name(stream_id), stream_id)
        if other != stream_id:
            raise ResumeError(
                f"stream ids {other!r} and {stream_id!r} both write "
                f"{safe_name(stream_id)}.*: give one of them another --stream-id"
            )


def open_store(cfg: PipelineConfig, stream_ids: list[str], *, restart: bool) -> ResumeStore | None:
    """The run's ``ResumeStore`` (None when ``resume`` is off); ``restart`` clears the
    state of ``stream_ids`` first."""
    if not cfg.resume:
        return None
    store = ResumeStore(cfg.output, config_digest(cfg), jsonl=cfg.sinks.jsonl)
    if restart:
        for stream_id in stream_ids:
            store.clear(stream_id)
    return store


def _oversized(sizes: list[int], frame_bytes: int) -> str | None:
    """Why arrays of ``sizes`` bytes are too big for a state of frames of ``frame_bytes``
    (a float32 frame's bytes, ``MIN_ARRAY_BYTES`` at least), or None."""
    frame_bytes = max(frame_bytes, MIN_ARRAY_BYTES)
    largest = max(sizes, default=0)
    if largest > frame_bytes:
        return f"an array of {largest} bytes, more than a frame's"
    if sum(sizes) > MAX_STATE_FRAMES * frame_bytes:
        return f"{sum(sizes)} bytes of arrays, more than {MAX_STATE_FRAMES} frames'"
    return None


def check_state_arrays(state: Any, frame_size: tuple[int, int], stream_id: str) -> None:
    """A restored state's arrays against the stream's frames (``frame_size``: W x H):
    ``prev_gray`` (H, W), each array at most a float32 frame (``MIN_ARRAY_BYTES`` at least),
    all of them at most ``MAX_STATE_FRAMES`` such frames.

    Raises:
        ResumeError: one line naming the stream and ``--restart``.
    """
    width, height = frame_size

    def refuse(why: str) -> ResumeError:
        return ResumeError(
            f"the checkpoint of {stream_id} does not fit its {width}x{height} frames ({why}): "
            "pass --restart to redo the stream"
        )

    gray = state.get("prev_gray") if isinstance(state, dict) else None
    if isinstance(gray, np.ndarray) and gray.shape != (height, width):
        raise refuse(f"prev_gray is {'x'.join(map(str, gray.shape))[:40]}")
    sizes, pending = [], [state]
    while pending:
        value = pending.pop()
        if isinstance(value, dict):
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
        elif isinstance(value, np.ndarray):
            sizes.append(value.nbytes)
    why = _oversized(sizes, width * height * 4)
    if why is not None:
        raise refuse(why)


def restore(
    processor: StreamProcessor,
    point: ResumePoint,
    stream_id: str,
    frame_size: tuple[int, int] | None = None,
) -> None:
    """Load the checkpointed state into a fresh processor (nothing to do on a fresh start),
    its arrays first checked against ``frame_size`` (W x H) when the source knows it.

    Raises:
        ResumeError: the state does not fit the stream's frames or this version of the
            tracker.
    """
    if point.state is None:
        return
    if frame_size is not None:
        check_state_arrays(point.state, frame_size, stream_id)
    restore_part(processor, point.state, stream_id)


def restore_part(part: Any, state: Any, stream_id: str) -> None:
    """``part.load_state_dict(state)``: the processor, or a part checkpointed beside it (the
    stream's analytics), refused in one line.

    Raises:
        ResumeError: ``the checkpoint of <stream> cannot be restored (<why>): pass --restart``.
    """
    try:
        part.load_state_dict(state)
    except (ValueError, KeyError, TypeError, IndexError, OverflowError, AttributeError) as exc:
        raise ResumeError(
            f"the checkpoint of {stream_id} cannot be restored ({exc}): pass "
            "--restart to redo the stream"
        ) from None


def _sizes_check(state: Any) -> Callable[[dict[str, int]], None]:
    """Before a checkpoint's arrays are read: each at most a float32 frame of the size its
    ``prev_gray`` declares (the frame; checked against the source's in ``restore``), all of
    them at most ``MAX_STATE_FRAMES`` such frames (without ``prev_gray``: no bound here)."""
    gray = state.get("prev_gray") if isinstance(state, dict) else None
    name = gray.get(_ARRAY) if isinstance(gray, dict) else None

    def check(declared: dict[str, int]) -> None:
        gray_bytes = declared.get(f"{name}.npy") if isinstance(name, str) else None
        if gray_bytes is None:
            return
        why = _oversized(list(declared.values()), 4 * gray_bytes)  # uint8 frame -> float32
        if why is not None:
            raise ValueError(f"{why} of {gray_bytes} pixels")

    return check


# -- outputs of a resumed stream -------------------------------------------------------------------
def cut_jsonl(path: Path, last_frame: int) -> list[str]:
    """Keep only complete lines with ``frame_index <= last_frame``; return the kept lines."""
    if not path.is_file():
        return []
    kept = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if not line.endswith("\n"):
                break  # torn last line
            try:
                index = json.loads(line)["frame_index"]
            except (ValueError, KeyError, TypeError):
                break
            if index > last_frame:
                break
            kept.append(line)
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text("".join(kept), encoding="utf-8")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return kept


def prepare_jsonl(output_dir: str | Path, stream_id: str, after_frame: int) -> None:
    """Before a stream's first result: keep the JSONL lines up to ``after_frame`` (-1: a
    fresh start empties the file), so the sink appends exactly after them."""
    kept = cut_jsonl(jsonl_path(output_dir, stream_id), after_frame)
    if after_frame >= 0:
        log.info("%s: resuming after frame %d (%d results kept)", stream_id, after_frame, len(kept))


class OverlayRedraw:
    """Redraws the overlay video of a resumed stream: the frames up to the resume point are
    decoded again and drawn with the results kept in the stream's JSONL file, in order.

    Args:
        output_dir: the run's output folder (where the JSONL files are).
        overlay: the overlay sink to draw with.
    """

    def __init__(self, output_dir: str | Path, overlay: Sink) -> None:
        self.output_dir = Path(output_dir)
        self.overlay = overlay
        self._files: dict[str, TextIO] = {}

    def redraw(self, stream_id: str, image: np.ndarray) -> None:
        """Draw the next kept result of ``stream_id`` on ``image``."""
        fh = self._files.get(stream_id)
        if fh is None:  # open until the stream ends or the run closes
            path = jsonl_path(self.output_dir, stream_id)
            fh = self._files[stream_id] = open(path, encoding="utf-8")  # noqa: SIM115
        line = fh.readline()
        if line:
            self.overlay.write(decode_record(line), image)

    def end_stream(self, stream_id: str) -> None:
        fh = self._files.pop(stream_id, None)
        if fh is not None:
            fh.close()

    def close(self) -> None:
        for fh in self._files.values():
            fh.close()
        self._files.clear()
