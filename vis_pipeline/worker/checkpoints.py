"""A job's checkpoints and finished markers in the compacted checkpoints topic.

Contract: ``KafkaCheckpointStore`` is the ``CheckpointStore`` of ``vis_pipeline/resume.py``
for one job: ``save`` writes a stream's state (``encode_state``: a JSON document plus numpy
arrays) as one record keyed ``<job id>/<stream id>`` and returns once the broker has
acknowledged it (the writer calls it only after every result up to that frame was
delivered); ``mark_done`` replaces it with a small finished marker; ``resume_point`` reads
the topic up to its end first (``TopicTable``), so a worker taking over a job resumes after
the last checkpoint that any worker wrote. A record's value is an ``.npz`` archive (the
document as UTF-8 bytes in ``__document__``) read with ``allow_pickle=False``: loading never
runs code. State of another configuration is refused (``ResumeError``), never mixed; a
record is checked by ``check_checkpoint`` (format, stream, frame index in range, array
references that exist, bounded array sizes) before any of it is used.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable
from typing import Any

import numpy as np

from vis_pipeline.resume import (
    CHECKPOINT_FORMAT,
    EncodedState,
    ResumeError,
    ResumePoint,
    SourceIdentity,
    check_checkpoint,
    load_npz,
    restore_state,
)
from vis_pipeline.worker.table import TopicTable

log = logging.getLogger(__name__)
_DOCUMENT = "__document__"


def pack(document: dict[str, Any], arrays: dict[str, np.ndarray]) -> bytes:
    """A document and its arrays -> one ``.npz`` value."""
    if _DOCUMENT in arrays:
        raise ValueError(f"array name {_DOCUMENT} is reserved")
    buf = io.BytesIO()
    text = json.dumps(document, allow_nan=True).encode("utf-8")
    np.savez(buf, **arrays, **{_DOCUMENT: np.frombuffer(text, np.uint8)})
    return buf.getvalue()


def unpack(value: bytes, where: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Inverse of ``pack``; ``ResumeError`` (naming ``where``) for anything but plain data."""
    try:
        arrays = load_npz(value, where)
        document = json.loads(arrays.pop(_DOCUMENT).tobytes().decode("utf-8"))
        if not isinstance(document, dict):
            raise ValueError("the document is not a mapping")
    except ResumeError:
        raise ResumeError(
            f"checkpoint record {where} is not a checkpoint of this program; "
            "submit the job again to redo it"
        ) from None
    except (ValueError, KeyError, AttributeError, RecursionError) as exc:
        raise ResumeError(
            f"checkpoint record {where} is not a checkpoint of this program ({exc}); "
            "submit the job again to redo it"
        ) from None
    return document, arrays


class KafkaCheckpointStore:
    """Checkpoints of one job's streams.

    Args:
        table: the checkpoints topic, mirrored (shared by the worker's jobs).
        send: ``send(key, value)`` writes a record and returns once it is acknowledged.
        job_id: the job.
        digest: ``config_digest`` of the job's configuration.
        on_save: called with ``(stream_id, frame_index)`` after each checkpoint.
    """

    def __init__(
        self,
        table: TopicTable,
        send: Callable[[str, bytes], None],
        job_id: str,
        digest: str,
        on_save: Callable[[str, int], None] | None = None,
    ) -> None:
        self.table = table
        self.send = send
        self.job_id = job_id
        self.digest = digest
        self.on_save = on_save
        #: checkpoints written by this store, and the last frame of each
        self.saved = 0
        self.last_frame: dict[str, int] = {}

    def key(self, stream_id: str) -> str:
        return f"{self.job_id}/{stream_id}"

    def save(self, stream_id: str, frame_index: int, state: EncodedState) -> None:
        document = {
            "checkpoint_format": CHECKPOINT_FORMAT,
            "config": self.digest,
            "job_id": self.job_id,
            "stream_id": stream_id,
            "frame_index": frame_index,
            "state": state.document,
        }
        self.send(self.key(stream_id), pack(document, state.arrays))
        self.saved += 1
        self.last_frame[stream_id] = frame_index
        log.info("job %s: %s checkpoint after frame %d", self.job_id, stream_id, frame_index)
        if self.on_save is not None:
            self.on_save(stream_id, frame_index)

    def mark_done(self, stream_id: str, summary: dict) -> None:
        document = {"config": self.digest, "done": True, "frames": summary.get("frames")}
        self.send(self.key(stream_id), pack(document, {}))

    def resume_point(self, stream_id: str, source: SourceIdentity | None = None) -> ResumePoint:
        """Where ``stream_id`` of this job starts (``source`` is not needed: a job's id is
        new at each submission, so its checkpoints are of its own source).

        Raises:
            ResumeError: another config, or a record that ``check_checkpoint`` refuses.
        """
        self.table.catch_up()
        key = self.key(stream_id)
        value = self.table.get(key)
        if value is None:
            return ResumePoint()
        document, arrays = unpack(value, key)
        if document.get("config") != self.digest:
            raise ResumeError(
                f"job {self.job_id}: the checkpoint of {stream_id} was made with a different "
                "config (workers must share one config): submit the job again to redo it"
            )
        if document.get("done"):
            return ResumePoint(complete=True)
        frame_index = check_checkpoint(document, stream_id, f"record {key}")
        state = restore_state(document, arrays, f"record {key}", "submit the job again")
        log.info("job %s: %s resumes after frame %d", self.job_id, stream_id, frame_index)
        return ResumePoint(frame_index=frame_index, state=state)
