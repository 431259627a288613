"""Which streams a run processes: the configured sources expanded into (uri, stream id) pairs.

Contract: ``expand_inputs(cfg)`` turns ``source``/``sources`` into one ``StreamInput`` per
stream (globs and folders of videos expand to one stream per video; a folder of images is
one stream; live URIs and cameras stay as they are) with unique stream ids, plus one error
line per pattern that matched nothing and per special file (``/dev/zero``, a FIFO) that is not
a camera. Missing files are kept: opening them reports the
error with the path.
"""

from __future__ import annotations

import glob
from pathlib import Path
from typing import NamedTuple

import cv2

from streams.live import _live_stream_id, is_live_uri
from streams.sinks.paths import safe_name
from streams.sources import IMAGE_SUFFIXES, stream_id_for
from vis.config import ConfigError
from vis_pipeline.config import PipelineConfig

VIDEO_SUFFIXES = {
    ".mp4",
    ".avi",
    ".mkv",
    ".mov",
    ".webm",
    ".m4v",
    ".mpg",
    ".mpeg",
    ".ts",
    ".wmv",
    ".flv",
}


# A stream id names its files (``<id>.jsonl``, ``.state/<id>.ckpt-<frame>.npz.tmp``): at most
# this many characters, and as many bytes in its file-name form, leaves room for every suffix
# within the 255 bytes a file name may have (the same limit as a job record's stream id).
MAX_STREAM_ID = 200


def stream_id_problem(stream_id: str) -> str | None:
    """Why ``stream_id`` cannot name a stream's files (None: it can)."""
    if not stream_id.strip():
        return "a stream id must not be empty: pass --stream-id NAME"
    if max(len(stream_id), len(safe_name(stream_id).encode("utf-8"))) > MAX_STREAM_ID:
        return (
            f"stream id {stream_id[:40]!r}... ({len(stream_id)} characters) is longer than "
            f"{MAX_STREAM_ID} characters (or bytes as a file name): pass a shorter --stream-id "
            "(or stream_id: in sources:)"
        )
    return None


class StreamInput(NamedTuple):
    """One stream of a run: where it comes from and its id (None: derived from the uri)."""

    uri: str
    stream_id: str | None


def expand_inputs(cfg: PipelineConfig) -> tuple[list[StreamInput], list[str]]:
    """Config sources -> (streams with unique ids, error lines).

    Raises:
        ConfigError: no source is configured, or the one stream's id is unusable (over
            ``MAX_STREAM_ID``); with several streams such a stream is an error line.
    """
    given: list[StreamInput] = []
    if cfg.source:
        given.append(StreamInput(cfg.source, cfg.stream_id))
    for spec in cfg.sources or []:
        given.append(
            StreamInput(spec, None)
            if isinstance(spec, str)
            else StreamInput(spec.uri, spec.stream_id)
        )
    if not given:
        raise ConfigError("source is not set: pass --source PATH or set source: in the config")
    streams: list[StreamInput] = []
    errors: list[str] = []
    for item in given:
        path = Path(item.uri).expanduser()
        if (
            is_live_uri(item.uri)
            or path.is_file()
            or (not path.exists() and not glob.has_magic(item.uri))
        ):
            streams.append(item)  # files (and missing paths: the source reports them)
        elif glob.has_magic(item.uri):
            matches = sorted(m for m in glob.glob(str(path)) if Path(m).is_file())
            if not matches:
                errors.append(
                    f"no file matches {item.uri}: check the pattern (quote it in the shell)"
                )
            streams += [StreamInput(m, None) for m in matches]
        elif path.is_dir():
            streams += _expand_folder(path, item)
        else:  # a device, FIFO or socket that is not a camera: no frames to read
            errors.append(
                f"{item.uri} is not a video file, a folder of images or a camera: pass a "
                "video file, a folder of images or a camera (/dev/videoN)"
            )
    unique = []
    for item in _unique_ids(streams):
        problem = stream_id_problem(item.stream_id or "")
        if problem is None:
            unique.append(item)
        elif len(streams) == 1:
            raise ConfigError(problem)  # the run's one input: nothing else to do
        else:
            errors.append(f"{item.uri}: {problem}")
    return unique, errors


def _expand_folder(folder: Path, item: StreamInput) -> list[StreamInput]:
    """A folder holding only videos is one stream per video; otherwise it is one stream."""
    files = sorted(f for f in folder.iterdir() if f.is_file())
    videos = [f for f in files if f.suffix.lower() in VIDEO_SUFFIXES]
    images = [f for f in files if f.suffix.lower() in IMAGE_SUFFIXES]
    if videos and not images:
        return [StreamInput(str(f), None) for f in videos]
    return [item]


def _unique_ids(items: list[StreamInput]) -> list[StreamInput]:
    """Give every stream an id; repeated ids get ``-2``, ``-3``, ... appended."""
    seen: dict[str, int] = {}
    out = []
    for uri, stream_id in items:
        base = stream_id or (_live_stream_id(uri) if is_live_uri(uri) else stream_id_for(uri))
        count = seen.get(base, 0)
        seen[base] = count + 1
        out.append(StreamInput(uri, base if count == 0 else f"{base}-{count + 1}"))
    return out


def declared_frames(inputs: list[StreamInput]) -> int:
    """Total declared frames of the file inputs (for the overall progress bar's ETA)."""
    total = 0
    for uri, _ in inputs:
        if is_live_uri(uri) or not Path(uri).is_file():
            continue
        cap = cv2.VideoCapture(uri, cv2.CAP_FFMPEG)
        total += int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0) if cap.isOpened() else 0
        cap.release()
    return total
