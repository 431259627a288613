"""What the processing loop sends the writer thread: one frozen dataclass per kind.

Contract: the writer handles, in queue order, ``ResultMsg`` (its events, then its result,
to every sink), ``RedrawMsg`` (a resumed stream's frame whose result is already written: redraw the
overlay), ``CheckpointMsg`` (flush the sinks, then save the state), ``StreamDoneMsg`` (the
stream delivered its last frame: ``end_stream`` on every sink, then the finished marker),
and ends on ``STOP``.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from vis.analytics import Event
from vis.types import FrameResult
from vis_pipeline.resume import EncodedState


@dataclasses.dataclass(frozen=True)
class ResultMsg:
    """A processed frame: its result, the decoded image ((H, W, 3) uint8 BGR) and the
    analytics events it caused (handed to the sinks just before the result)."""

    result: FrameResult
    image: np.ndarray
    events: tuple[Event, ...] = ()


@dataclasses.dataclass(frozen=True)
class RedrawMsg:
    """A frame of a resumed stream at or before the resume point (its result is kept)."""

    stream_id: str
    image: np.ndarray


@dataclasses.dataclass(frozen=True)
class CheckpointMsg:
    """The stream's state after ``frame_index``, saved once everything before is delivered."""

    stream_id: str
    frame_index: int
    state: EncodedState


@dataclasses.dataclass(frozen=True)
class StreamDoneMsg:
    """The stream delivered its last frame; ``events`` (its analytics' closing events) go to
    the sinks before ``end_stream``; ``summary`` (None: no finished marker, e.g. a failed,
    truncated or live stream) is recorded as complete."""

    stream_id: str
    summary: dict | None = None
    events: tuple = ()


@dataclasses.dataclass(frozen=True)
class StopMsg:
    """The sentinel: nothing follows."""


STOP = StopMsg()

WriterMsg = ResultMsg | RedrawMsg | CheckpointMsg | StreamDoneMsg | StopMsg
