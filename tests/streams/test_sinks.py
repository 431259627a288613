import json

import cv2
import numpy as np
import pytest

from streams.sinks import JsonlSink, OverlayVideoSink, SinkError, track_colour
from tests.conftest import disk_mask
from vis.schema import decode_record
from vis.types import Detections, FrameResult


def result(i: int) -> FrameResult:
    m = disk_mask(48, 64, 20 + i, 20, 6)[None]
    d = Detections(
        xyxy=[[14 + i, 14, 27 + i, 27]], masks=m, scores=[0.9], class_ids=[1], track_ids=[3]
    )
    return FrameResult("cam/1", i, i * 40.0, i % 2 == 0, 64, 48, d, ["__background__", "disk"])


def test_jsonl_lines_are_visible_before_close(tmp_path):
    sink = JsonlSink(tmp_path)
    for i in range(3):
        sink.write(result(i))
    path = sink.path_for("cam/1")
    assert path.name == "cam_1.jsonl"
    lines = path.read_text().splitlines()  # not closed yet: already flushed
    assert len(lines) == 3
    assert [decode_record(json.loads(x)).frame_index for x in lines] == [0, 1, 2]
    sink.close()
    sink.close()  # idempotent


def test_overlay_video_is_readable_and_coloured_by_track(tmp_path):
    sink = OverlayVideoSink(tmp_path, fps=10)
    img = np.zeros((48, 64, 3), np.uint8)
    for i in range(5):
        sink.write(result(i), img)
    sink.close()
    cap = cv2.VideoCapture(str(sink.path_for("cam/1")))
    ok, frame = cap.read()
    assert ok and frame.shape == (48, 64, 3)
    assert frame[20, 20].astype(int).sum() > 60  # the mask was painted
    assert track_colour(3) == track_colour(3) != track_colour(4)
    assert sink.failures == {}  # read back whole


@pytest.mark.parametrize("case", ["folder_in_the_way", "codec_that_cannot_open"])
def test_an_overlay_that_cannot_be_written_is_given_up_in_one_line(tmp_path, case):
    """No exception (the run goes on with the other sinks): the failure is kept, one line
    naming the file and the fix."""
    sink = OverlayVideoSink(
        tmp_path, fps=10, fourcc="XXXX" if case == "codec_that_cannot_open" else "mp4v"
    )
    path = sink.path_for("cam/1")
    if case == "folder_in_the_way":
        path.mkdir()
    img = np.zeros((48, 64, 3), np.uint8)
    for i in range(3):
        sink.write(result(i), img)
    sink.end_stream("cam/1")
    sink.close()
    (failure,) = sink.failures.values()
    msg = str(failure)
    assert isinstance(failure, SinkError) and "\n" not in msg
    assert msg.startswith(f"cannot write the overlay video {path}: ")
    if case == "folder_in_the_way":
        assert "a folder is in the way" in msg and "--restart" in msg
    else:
        assert "XXXX" in msg and "sinks.overlay=false" in msg
        assert not path.exists()
