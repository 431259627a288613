"""Output file names: the one place that turns a stream id into a path.

Contract: ``safe_name(stream_id)`` is a file-name-safe form of any stream id;
``jsonl_path(output_dir, stream_id)``, ``events_path(output_dir, stream_id)``,
``overlay_path(output_dir, stream_id)`` and
``export_path(output_dir, stream_id, suffix)`` are where the JSONL, overlay-video and export
sinks write that stream (everything else that needs these files,
the resume logic included, calls these functions). ``make_output_folder`` creates an output
folder or refuses it in one line.
"""

from __future__ import annotations

from pathlib import Path


def safe_name(stream_id: str) -> str:
    """A stream id as a file name: anything but letters, digits, ``-_.`` becomes ``_``."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in stream_id)


def jsonl_path(output_dir: str | Path, stream_id: str) -> Path:
    """``<output_dir>/<safe_name(stream_id)>.jsonl``."""
    return Path(output_dir) / f"{safe_name(stream_id)}.jsonl"


def events_path(output_dir: str | Path, stream_id: str) -> Path:
    """``<output_dir>/<safe_name(stream_id)>.events.jsonl``."""
    return Path(output_dir) / f"{safe_name(stream_id)}.events.jsonl"


def overlay_path(output_dir: str | Path, stream_id: str) -> Path:
    """``<output_dir>/<safe_name(stream_id)>.overlay.mp4``."""
    return Path(output_dir) / f"{safe_name(stream_id)}.overlay.mp4"


def export_path(output_dir: str | Path, stream_id: str, suffix: str) -> Path:
    """``<output_dir>/<safe_name(stream_id)><suffix>``, e.g. suffix ``.coco.json``; a suffix
    without a leading dot names a folder: ``<output_dir>/<safe_name(stream_id)>.<suffix>``."""
    sep = "" if suffix.startswith(".") else "."
    return Path(output_dir) / f"{safe_name(stream_id)}{sep}{suffix}"


def make_output_folder(
    folder: str | Path, error: type[Exception], *, named: str | Path | None = None
) -> None:
    """Create ``folder`` (and its parents) for a run's or an export's output.

    Raises:
        error: one line naming the output (``named``, else ``folder``) and ``--output``, when
            a regular file is on the way, permission is missing or a name is too long.
    """
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        shown = folder if named is None else named
        raise error(
            f"output {shown} cannot be a folder ({exc.strerror}): pass another --output"
        ) from None
