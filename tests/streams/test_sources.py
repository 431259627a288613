import cv2
import numpy as np
import pytest

from streams.sources import ImageFolderSource, SourceError, VideoFileSource, open_source
from tests.conftest import mjpeg_copy_with_corrupt_frames


def test_video_file_frames_are_ordered_with_timestamps(small_video):
    path, _ = small_video
    src = open_source(str(path))
    frames = list(src)
    assert [f.index for f in frames] == list(range(40))
    assert frames[0].image.shape == (192, 320, 3)
    assert frames[10].timestamp_ms == pytest.approx(400.0)
    assert src.stream_id == "small" and src.stats == {
        "frames": 40,
        "corrupt": 0,
        "truncated": False,
    }


def test_folder_of_frames_natural_order_and_corrupt_files_skipped(tmp_path):
    img = np.full((32, 48, 3), 100, np.uint8)
    for i in (1, 2, 10):
        img[:] = i
        cv2.imwrite(str(tmp_path / f"frame_{i}.png"), img)
    (tmp_path / "frame_3.png").write_bytes(b"\x89PNG garbage")  # corrupt
    (tmp_path / "notes.txt").write_text("not an image")
    src = ImageFolderSource(tmp_path, fps=10)
    frames = list(src)
    assert [int(f.image[0, 0, 0]) for f in frames] == [1, 2, 10]
    assert [f.index for f in frames] == [0, 1, 3]  # the corrupt frame leaves a gap
    assert src.stats["corrupt"] == 1


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p, "not found"),
        (lambda p: (p.write_bytes(b""), p)[1], r"empty \(0 bytes\)"),
        (
            lambda p: (p.write_text("hello, not a video " * 100), p)[1],
            "cannot be opened|no decodable",
        ),
    ],
)
def test_bad_inputs_raise_one_line_errors_naming_the_path(tmp_path, make, message):
    path = make(tmp_path / "input.mp4")
    with pytest.raises(SourceError, match=message) as info:
        VideoFileSource(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_empty_folder_is_an_error(tmp_path):
    with pytest.raises(SourceError, match="has no images"):
        open_source(str(tmp_path))


def test_truncated_video_is_reported(small_video, tmp_path):
    path, _ = small_video
    # an AVI (MJPEG) keeps its frame count in the header; cut its payload in half
    avi = tmp_path / "clip.avi"
    w = cv2.VideoWriter(str(avi), cv2.VideoWriter_fourcc(*"MJPG"), 25, (320, 192))
    for f in VideoFileSource(path):
        w.write(f.image)
    w.release()
    data = avi.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) // 2])
    src = VideoFileSource(cut)
    frames = list(src)
    assert 0 < len(frames) < 40
    assert src.stats["truncated"] is True


def test_corrupt_frames_mid_video_are_skipped_and_the_rest_keeps_its_indices(small_video, tmp_path):
    path, _ = small_video
    clean = [f.image for f in VideoFileSource(path)]
    bad = tmp_path / "bad.avi"
    assert mjpeg_copy_with_corrupt_frames(path, bad, {7, 8, 25}) == 40
    src = VideoFileSource(bad)
    frames = list(src)
    assert [f.index for f in frames] == [i for i in range(40) if i not in (7, 8, 25)]
    # each frame after a gap is the frame of that index (not shifted by the skipped ones)
    for f in frames:
        assert np.abs(f.image.astype(int) - clean[f.index].astype(int)).mean() < 6
    assert src.stats == {"frames": 37, "corrupt": 3, "truncated": False}
