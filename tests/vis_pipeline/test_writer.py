"""The writer thread: typed messages reach the sinks in order; a failing sink stops the run
without blocking the processing loop."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from streams.sinks import MemorySink, Sink, SinkError
from tests.streams.test_sinks import result
from vis_pipeline.messages import CheckpointMsg, RedrawMsg, ResultMsg, StreamDoneMsg
from vis_pipeline.resume import ResumeStore, encode_state
from vis_pipeline.writer import Writer


class RecordingSink(Sink):
    def __init__(self, log: list, fail_on_write: int | None = None) -> None:
        self.log = log
        self.fail_on_write = fail_on_write
        self.writes = 0

    def write(self, result, image=None):
        self.writes += 1
        if self.writes == self.fail_on_write:
            raise SinkError("disk full")
        self.log.append(("write", result.frame_index, image is not None))

    def end_stream(self, stream_id):
        self.log.append(("end_stream", stream_id))

    def flush(self):
        self.log.append(("flush",))

    def close(self):
        self.log.append(("close",))

    def stats(self):
        return {"writes": self.writes}


def test_messages_reach_every_sink_in_order(tmp_path):
    log: list = []
    memory = MemorySink()
    store = ResumeStore(tmp_path, "d")
    writer = Writer([RecordingSink(log), memory], stop=threading.Event(), queue_size=2, store=store)
    writer.start()
    image = np.zeros((48, 64, 3), np.uint8)
    for i in range(3):
        assert writer.put(ResultMsg(result(i), image))
    writer.put(CheckpointMsg("cam/1", 2, encode_state({"x": np.ones(2)})))
    writer.put(StreamDoneMsg("cam/1", {"frames": 3}))
    writer.put(StreamDoneMsg("other"))  # no summary: the stream gets no finished marker
    writer.finish()
    writer.close_sinks()
    assert log == [
        ("write", 0, True),
        ("write", 1, True),
        ("write", 2, True),
        ("flush",),
        ("end_stream", "cam/1"),
        ("end_stream", "other"),
        ("close",),
    ]
    assert [r.frame_index for r in memory.results] == [0, 1, 2]
    assert memory.ended == ["cam/1", "other"] and memory.closed
    assert store.resume_point("cam/1").complete  # done marker written, checkpoint removed
    assert not store.resume_point("other").complete
    assert not writer.errors and writer.timer.calls["sink"] == 6


def test_a_failing_sink_stops_the_run_and_the_rest_is_drained():
    log: list = []
    stop = threading.Event()
    writer = Writer([RecordingSink(log, fail_on_write=2)], stop=stop, queue_size=1)
    writer.start()
    for i in range(5):  # never blocks: later messages are taken off the queue unhandled
        writer.put(ResultMsg(result(i), None))
    writer.finish()
    assert stop.is_set()
    assert [str(e) for e in writer.errors] == ["disk full"]
    assert log == [("write", 0, False)]
    writer.close_sinks()
    assert log[-1] == ("close",)


def test_put_gives_up_once_the_run_stopped():
    stop = threading.Event()
    writer = Writer([MemorySink()], stop=stop, queue_size=1)  # not started: nobody drains
    assert writer.put(ResultMsg(result(0), None))
    stop.set()
    assert not writer.put(ResultMsg(result(1), None))


def test_redraw_without_an_overlay_is_ignored_and_unknown_messages_fail():
    writer = Writer([MemorySink()], stop=threading.Event(), queue_size=4)
    writer._handle(RedrawMsg("s", np.zeros((4, 4, 3), np.uint8)))
    with pytest.raises(TypeError, match="unknown message"):
        writer._handle(("result", None, None))
